import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { Channel } from './channel';
import { AbortedError, ClosedError } from './errors';
import {
  fromReadableStream,
  fromWritableStream,
  toReadableStream,
  toWritableStream,
} from './web-streams';

const bytes = (n: number, fill = 0) => new Uint8Array(n).fill(fill);
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const settle = async (n = 20) => {
  for (let i = 0; i < n; i++) await tick();
};

describe('toReadableStream', () => {
  it('pulls while fewer than highWaterMark bytes are queued, where Readable.toWeb counts chunks', async () => {
    // Ours: an endless source of 1000-byte chunks behind a 4096-byte high-water mark.
    let ours = 0;
    const stream = toReadableStream(
      (function* () {
        for (;;) {
          ours++;
          yield bytes(1000);
        }
      })(),
      { highWaterMark: 4096 },
    );
    await settle();
    // 4096 bytes = 4.1 chunks: it stops after the 5th, not after 4096 chunks.
    expect(ours).toBe(5);
    const reader = stream.getReader();
    await reader.read();
    await settle();
    expect(ours).toBe(6);
    await reader.cancel();

    // Node: Readable.toWeb's documented strategy.highWaterMark counts chunks,
    // so the same 4096 queues 4096 chunks (here: all 2000 of them, 2 MB).
    let node = 0;
    const readable = new Readable({
      highWaterMark: 4096,
      read() {
        if (++node > 2000) this.push(null);
        else this.push(bytes(1000));
      },
    });
    const web = Readable.toWeb(readable, { strategy: { highWaterMark: 4096 } });
    await settle(200);
    expect(node).toBeGreaterThan(1000);
    await web.cancel();
  });

  it('a Channel source: cancelling the stream cancels the channel with the reason', async () => {
    const channel = new Channel({ capacity: 100 });
    const stream = toReadableStream(channel);
    const writing = (async () => {
      for (let i = 0; ; i++) await channel.send(bytes(50, i));
    })();
    const reader = stream.getReader();
    expect((await reader.read()).value?.[0]).toBe(0);
    await reader.cancel('viewer left');
    await expect(writing).rejects.toSatisfy(
      (e: unknown) => ClosedError.isInstance(e) && (e as Error).cause === 'viewer left',
    );
    expect(channel.listenerCount('abort')).toBe(0);
  });

  it('aborting the channel errors the stream, even with no read pending', async () => {
    const channel = new Channel({ capacity: 10 });
    const stream = toReadableStream(channel, { highWaterMark: 5 });
    channel.write(bytes(10));
    await settle(3);
    const reason = new Error('producer crashed');
    channel.abort(reason);
    const reader = stream.getReader();
    await expect(reader.read()).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === reason,
    );
    expect(channel.listenerCount('abort')).toBe(0);
  });

  it('an async generator source: cancel runs its finally; the signal errors the stream', async () => {
    let finallyRan = false;
    async function* gen() {
      try {
        for (let i = 0; ; i++) yield bytes(10, i);
      } finally {
        finallyRan = true;
      }
    }
    const stream = toReadableStream(gen());
    const reader = stream.getReader();
    await reader.read();
    await reader.cancel();
    await settle(2);
    expect(finallyRan).toBe(true);

    const controller = new AbortController();
    const channel = new Channel();
    const aborted = toReadableStream(channel, { signal: controller.signal }).getReader();
    controller.abort('timeout');
    await expect(aborted.read()).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === 'timeout',
    );
    expect(channel.closed).toBe(true);
  });

  it("type: 'bytes' serves BYOB readers into their own buffers and never detaches the source's", async () => {
    const chunk = Uint8Array.from({ length: 25 }, (_, i) => i);
    const stream = toReadableStream([chunk], { type: 'bytes' });
    const reader = stream.getReader({ mode: 'byob' });
    const sizes: number[] = [];
    const got: number[] = [];
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(10));
      if (done) break;
      sizes.push(value.byteLength);
      got.push(...value);
    }
    expect(sizes).toEqual([10, 10, 5]);
    expect(got).toEqual([...chunk]);
    expect(chunk.buffer.byteLength).toBe(25);

    const empty = new Uint8Array(0);
    const plain = await new Response(
      toReadableStream([chunk, empty, empty, chunk], { type: 'bytes' }),
    ).bytes();
    expect(plain.byteLength).toBe(50);
  });
});

describe('fromReadableStream', () => {
  it('reads only while the channel has room: capacity plus one chunk', async () => {
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulls++;
          controller.enqueue(bytes(1000, pulls));
          if (pulls === 50) controller.close();
        },
      },
      { highWaterMark: 0 },
    );
    const channel = fromReadableStream(stream, { capacity: 4096 });
    await settle();
    expect(channel.buffered).toBe(5000);
    expect(pulls).toBeLessThanOrEqual(6);
    const seen: number[] = [];
    for await (const chunk of channel) seen.push(chunk[0] as number);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(stream.locked).toBe(false);
    expect(channel.metrics.peakBufferedBytes).toBeLessThanOrEqual(4096 + 1000);
  });

  it('a stream error aborts the channel with it as the cause', async () => {
    const boom = new Error('reset');
    let n = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (++n === 3) controller.error(boom);
        else controller.enqueue(bytes(1));
      },
    });
    const channel = fromReadableStream(stream);
    await expect(
      (async () => {
        for await (const _ of channel);
      })(),
    ).rejects.toSatisfy((e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === boom);
    expect(stream.locked).toBe(false);
  });

  it('leaving the loop cancels the stream; aborting the channel cancels it with the reason', async () => {
    const cancel = vi.fn();
    const stream = new ReadableStream<Uint8Array>({
      pull: (controller) => controller.enqueue(bytes(10)),
      cancel,
    });
    for await (const _ of fromReadableStream(stream)) break;
    await settle(2);
    expect(cancel).toHaveBeenCalledWith(undefined);
    expect(stream.locked).toBe(false);

    const cancel2 = vi.fn();
    const stream2 = new ReadableStream<Uint8Array>({
      pull: (controller) => controller.enqueue(bytes(10)),
      cancel: cancel2,
    });
    const channel = fromReadableStream(stream2, { capacity: 10 });
    await settle(2);
    channel.abort('shutdown');
    await settle(2);
    expect(cancel2).toHaveBeenCalledWith('shutdown');
    expect(stream2.locked).toBe(false);
    expect(channel.listenerCount('abort')).toBe(0);
  });
});

describe('toWritableStream', () => {
  it('counts desiredSize in bytes and completes a write only once the channel accepted it', async () => {
    const channel = new Channel({ capacity: 100 });
    channel.write(bytes(100)); // full
    const writer = toWritableStream(channel, { highWaterMark: 1000 }).getWriter();
    expect(writer.desiredSize).toBe(1000);
    const w1 = writer.write(bytes(300));
    expect(writer.desiredSize).toBe(700);
    writer.write(bytes(300));
    writer.write(bytes(500));
    expect(writer.desiredSize).toBe(-100);
    let ready = false;
    writer.ready.then(() => {
      ready = true;
    });
    let w1Done = false;
    w1.then(() => {
      w1Done = true;
    });
    await settle(3);
    expect(w1Done).toBe(false); // the channel is still full
    expect(ready).toBe(false);
    await channel.read(); // room: the first 300 go in
    await settle(3);
    expect(w1Done).toBe(true);
    expect(channel.buffered).toBe(300);
    expect(writer.desiredSize).toBe(200);
    await channel.read();
    await channel.read();
    await settle(3);
    expect(ready).toBe(true);
    writer.close();
    const rest: number[] = [];
    for await (const chunk of channel) rest.push(chunk.byteLength);
    expect(rest).toEqual([500]);
  });

  it('paces pipeTo by the channel: never more than capacity plus one chunk buffered', async () => {
    const channel = new Channel({ capacity: 2048 });
    const source = toReadableStream(
      (function* () {
        for (let i = 0; i < 100; i++) yield bytes(512, i);
      })(),
      { highWaterMark: 0 },
    );
    const piping = source.pipeTo(toWritableStream(channel));
    let n = 0;
    for await (const chunk of channel) {
      expect(chunk[0]).toBe(n++ & 0xff);
      await tick();
    }
    await piping;
    expect(n).toBe(100);
    expect(channel.metrics.peakBufferedBytes).toBeLessThanOrEqual(2048 + 512);
  });

  it('abort() aborts the channel; a cancelled channel errors the stream', async () => {
    const channel = new Channel();
    const stream = toWritableStream(channel);
    await stream.abort('user cancelled');
    await expect(channel.read()).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === 'user cancelled',
    );

    const channel2 = new Channel({ capacity: 10 });
    const writer = toWritableStream(channel2).getWriter();
    await writer.write(bytes(10));
    channel2.cancel('gone');
    await expect(writer.write(bytes(1))).rejects.toBeInstanceOf(ClosedError);
    expect(channel2.listenerCount('abort')).toBe(0);
  });

  it('a function target: close waits for it, and its error errors the stream', async () => {
    const got: number[] = [];
    const stream = toWritableStream<Uint8Array>(async (source) => {
      for await (const chunk of source) {
        await tick();
        got.push(chunk[0] as number);
      }
    });
    const writer = stream.getWriter();
    for (let i = 0; i < 5; i++) await writer.write(bytes(3, i));
    await writer.close();
    expect(got).toEqual([0, 1, 2, 3, 4]);

    const boom = new Error('disk full');
    const failing = toWritableStream<Uint8Array>(async (source) => {
      for await (const _ of source) throw boom;
    }).getWriter();
    await failing.write(bytes(1)).catch(() => {});
    await expect(failing.closed).rejects.toBe(boom);
  });
});

describe('fromWritableStream', () => {
  it('pumps with backpressure: write() is false at capacity, finished resolves after close', async () => {
    const written: number[] = [];
    let release: (() => void) | undefined;
    const ws = new WritableStream<Uint8Array>(
      {
        write: (chunk) =>
          new Promise<void>((resolve) => {
            written.push(chunk[0] as number);
            release = resolve;
          }),
      },
      { highWaterMark: 1 },
    );
    const out = fromWritableStream(ws, { capacity: 300 });
    expect(out.write(bytes(100, 0))).toBe(true);
    await settle(2);
    // Taken by the stream, whose sink now holds it: the stream is full
    // (desiredSize 0), so the channel keeps the rest.
    expect(written).toEqual([0]);
    expect(out.buffered).toBe(0);
    expect(out.write(bytes(100, 1))).toBe(true);
    await settle(2);
    expect(out.buffered).toBe(100);
    expect(out.write(bytes(200, 2))).toBe(false); // 300 bytes: capacity
    let drained = false;
    out.once('drain', () => {
      drained = true;
    });
    while (written.length < 3) {
      release?.();
      await settle(2);
    }
    expect(drained).toBe(true);
    out.close();
    release?.();
    await out.finished;
    expect(written).toEqual([0, 1, 2]);
    expect(ws.locked).toBe(false);
  });

  it('a stream error aborts the channel and rejects finished', async () => {
    const boom = new Error('EACCES');
    const ws = new WritableStream<Uint8Array>({
      write() {
        throw boom;
      },
    });
    const out = fromWritableStream(ws);
    out.write(bytes(1));
    await expect(out.finished).rejects.toBe(boom);
    await expect(out.send(bytes(1))).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === boom,
    );
    expect(ws.locked).toBe(false);
  });

  it('aborting the channel aborts the stream with the reason', async () => {
    const abort = vi.fn();
    const ws = new WritableStream<Uint8Array>({ write: () => new Promise(() => {}), abort });
    const out = fromWritableStream(ws);
    out.write(bytes(1));
    await settle(2);
    out.abort('cancelled by user');
    // Settles although the sink's write hangs forever (abort() waits for it).
    await expect(out.finished).rejects.toBe('cancelled by user');
    expect(ws.locked).toBe(false);

    const ws2 = new WritableStream<Uint8Array>({ abort });
    const out2 = fromWritableStream(ws2);
    out2.abort('cancelled by user');
    await expect(out2.finished).rejects.toBe('cancelled by user');
    expect(abort).toHaveBeenCalledWith('cancelled by user');
    expect(out.listenerCount('abort')).toBe(0);
  });
});
