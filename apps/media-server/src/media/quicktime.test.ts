import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { countingReader, ffprobeKeyframes, mediaFixtures } from '../../test/media-fixtures.ts';
import { buildSeekIndex } from './seek-index.ts';

const run = promisify(execFile);
let dir: string;
let mov: string;

beforeAll(async () => {
  const fixtures = await mediaFixtures();
  dir = await mkdtemp(join(tmpdir(), 'quicktime-'));
  mov = join(dir, 'clip.mov');
  // FFmpeg's QuickTime muxer writes Apple user-data tags (udta > ©swr), as phones and cameras do.
  await run('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-i',
    fixtures.moovLast,
    '-c',
    'copy',
    '-metadata',
    'title=Holiday',
    mov,
  ]);
}, 120_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('QuickTime files with Apple user-data tags', () => {
  it('index like any MP4: the tags are skipped, the keyframes match ffprobe', async () => {
    // mp4box misreads QuickTime sound descriptions (it logs an error inside mp4a); that must
    // neither reach the console nor cost the file, since the tables it needs are intact.
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation(() => {}),
    );
    const bytes = new Uint8Array(await readFile(mov));
    expect(Buffer.from(bytes).includes(Buffer.from([0xa9, 0x73, 0x77, 0x72]))).toBe(true); // '©swr'
    const index = await buildSeekIndex(countingReader(bytes).readAt, bytes.length);
    const expected = await ffprobeKeyframes(mov);
    expect(index.keyframes.map((k) => k.time)).toEqual(
      expected.map((k) => expect.closeTo(k.time, 3)),
    );
    expect(index.keyframes.map((k) => k.byteOffset)).toEqual(expected.map((k) => k.pos));
    expect(index.tracks.map((t) => t.kind)).toEqual(['video', 'audio']);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    for (const spy of spies) spy.mockRestore();
  });
});
