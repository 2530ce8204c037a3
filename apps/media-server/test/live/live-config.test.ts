import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { BitrateMeter } from '../../src/live/bitrate.ts';

const load = (env: Record<string, string>) => loadConfig([], env, '/srv');

function problems(env: Record<string, string>): string {
  try {
    load(env);
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}

describe('live settings', () => {
  it('defaults to an open server with 32 MiB rings, 4 MiB fragments and skipping viewers', () => {
    expect(load({})).toMatchObject({
      liveStreamKey: undefined,
      liveMaxStreams: 16,
      liveMaxViewers: 100,
      liveRingBytes: 32 * 2 ** 20,
      liveMaxFragmentBytes: 4 * 2 ** 20,
      liveViewerBudgetBytes: 8 * 2 ** 20,
      liveViewerPolicy: 'skip',
      liveViewerMaxLagMs: 30_000,
      liveMaxBitrate: 20e6,
      liveBitrateWindowMs: 5000,
      liveReconnectGraceMs: 5000,
      liveRecord: false,
    });
  });

  it('reads bitrates with SI units and sizes with binary ones', () => {
    expect(load({ LIVE_MAX_BITRATE: '2500k' }).liveMaxBitrate).toBe(2_500_000);
    expect(load({ LIVE_MAX_BITRATE: '1.5M' }).liveMaxBitrate).toBe(1_500_000);
    expect(load({ LIVE_RING_BYTES: '64MiB' }).liveRingBytes).toBe(64 * 2 ** 20);
  });

  it('reports every bad live setting at once', () => {
    const message = problems({
      LIVE_STREAM_KEY: 'short',
      LIVE_VIEWER_POLICY: 'drop',
      LIVE_MAX_BITRATE: 'fast',
      LIVE_MAX_STREAMS: '0',
      LIVE_RING_BYTES: '3MiB',
      LIVE_MAX_FRAGMENT_BYTES: '2MiB',
    });
    expect(message).toContain('LIVE_STREAM_KEY');
    expect(message).toContain('LIVE_VIEWER_POLICY="drop"');
    expect(message).toContain('LIVE_MAX_BITRATE="fast"');
    expect(message).toContain('LIVE_MAX_STREAMS="0"');
    expect(message).toContain('LIVE_MAX_FRAGMENT_BYTES=2097152 is more than a third');
  });

  it('refuses a default viewer budget that does not fit the ring', () => {
    expect(
      problems({
        LIVE_RING_BYTES: '3MiB',
        LIVE_MAX_FRAGMENT_BYTES: '1MiB',
        LIVE_VIEWER_BUDGET_BYTES: '2MiB',
      }),
    ).toContain('LIVE_VIEWER_BUDGET_BYTES=2097152 does not fit');
  });
});

describe('BitrateMeter', () => {
  it('averages over a sliding window and forgets what slid out', () => {
    let now = 0;
    const meter = new BitrateMeter(1000, () => now);
    meter.add(1000);
    now = 500;
    meter.add(1000);
    expect(meter.windowBytes()).toBe(2000);
    expect(meter.bitsPerSecond()).toBe((2000 * 8) / 0.5);
    now = 1050;
    expect(meter.windowBytes()).toBe(1000);
    now = 5000;
    expect(meter.windowBytes()).toBe(0);
    expect(meter.bitsPerSecond()).toBe(0);
  });
});
