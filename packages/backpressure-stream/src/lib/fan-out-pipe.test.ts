import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { AbortedError, ClosedError, DisconnectedError } from './errors';
import { Broadcast } from './fan-out';
import type { WritableLike } from './fan-out-consumer';
import { chunkOf } from './fan-out-test-support';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A sink whose write callbacks run only when the test says so, like a socket on a slow link. */
class ManualSink implements WritableLike {
  readonly written: Uint8Array[] = [];
  readonly callbacks: ((error?: Error | null) => void)[] = [];
  readonly listeners = new Map<string, Set<(error?: unknown) => void>>();
  highWaterMark = 2;
  ended = 0;
  destroyed: { bytes: Uint8Array[] } | undefined;

  write(chunk: Uint8Array, callback: (error?: Error | null) => void): boolean {
    this.written.push(chunk);
    this.callbacks.push(callback);
    return this.callbacks.length < this.highWaterMark;
  }
  on(event: string, listener: (error?: unknown) => void): void {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event)!.add(listener);
  }
  off(event: string, listener: (error?: unknown) => void): void {
    this.listeners.get(event)?.delete(listener);
  }
  emit(event: string, error?: unknown): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) listener(error);
  }
  end(): void {
    this.ended++;
  }
  destroy(): void {
    // What a socket would still send: snapshot it at the moment of destruction.
    this.destroyed = { bytes: this.written.slice(-this.callbacks.length).map((b) => b.slice()) };
  }
  /** Completes the oldest `n` writes. */
  flush(n = this.callbacks.length, error?: Error): void {
    for (const callback of this.callbacks.splice(0, n)) callback(error);
  }
  get listenerCount(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}

describe('BroadcastConsumer.pipeTo', () => {
  it('writes each chunk as one zero-copy Uint8Array and keeps it in use until its callback', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const consumer = live.subscribe({ policy: 'block', budget: 250 });
    const sink = new ManualSink();
    sink.highWaterMark = 10;
    const piping = consumer.pipeTo(sink);
    live.write(chunkOf(0, 100));
    live.write(chunkOf(1, 100));
    await tick();
    expect(sink.written).toEqual([chunkOf(0, 100), chunkOf(1, 100)]);
    expect(sink.written[0]!.buffer).toBe(sink.written[1]!.buffer); // ring memory, not copies
    expect(consumer.metrics).toMatchObject({ inUseBytes: 200, lag: 0 });
    // Still held: with the chunks in flight the block consumer is at 300 >= 250.
    expect(live.write(chunkOf(2, 100))).toBe(false);
    sink.flush(1);
    await tick();
    expect(consumer.metrics.inUseBytes).toBe(200); // chunk 1 in flight, chunk 2 now written too
    expect(live.writable).toBe(true);
    sink.flush(1);
    expect(consumer.metrics.inUseBytes).toBe(100);
    live.end();
    await tick();
    expect(sink.ended).toBe(0); // not before the last callback
    sink.flush();
    await piping;
    expect(sink.ended).toBe(1);
    expect(sink.listenerCount).toBe(0);
  });

  it("honours the sink's backpressure: nothing more is written until 'drain'", async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const consumer = live.subscribe({ policy: 'drop-oldest', budget: 800 });
    const sink = new ManualSink();
    const piping = consumer.pipeTo(sink, { end: false });
    for (let seq = 0; seq < 5; seq++) live.write(chunkOf(seq, 10));
    await tick();
    expect(sink.written).toHaveLength(2);
    sink.flush();
    await tick();
    expect(sink.written).toHaveLength(2);
    sink.emit('drain');
    await tick();
    expect(sink.written).toHaveLength(4);
    sink.flush();
    sink.emit('drain');
    live.end();
    await tick();
    sink.flush();
    await piping;
    expect(sink.written).toEqual([0, 1, 2, 3, 4].map((seq) => chunkOf(seq, 10)));
    expect(sink.ended).toBe(0);
  });

  it('counts chunks in flight against the budget and drops what waits behind them', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const consumer = live.subscribe({ policy: 'drop-oldest', budget: 300 });
    const sink = new ManualSink();
    sink.highWaterMark = 1;
    const piping = consumer.pipeTo(sink);
    live.write(chunkOf(0, 100));
    await tick();
    for (let seq = 1; seq <= 5; seq++) live.write(chunkOf(seq, 100));
    expect(consumer.metrics).toMatchObject({ inUseBytes: 100, lag: 200, chunksDropped: 3 });
    sink.flush();
    sink.emit('drain');
    await tick();
    expect(sink.written).toEqual([0, 4].map((seq) => chunkOf(seq, 100)));
    live.end();
    sink.flush();
    sink.emit('drain');
    await tick();
    sink.flush();
    sink.emit('drain');
    await piping;
    expect(sink.written).toEqual([0, 4, 5].map((seq) => chunkOf(seq, 100)));
  });

  it('destroys the sink synchronously, before the ring reuses bytes it still has queued', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const consumer = live.subscribe({ policy: 'drop-oldest', budget: 300 });
    const sink = new ManualSink();
    sink.highWaterMark = 1;
    const piping = consumer.pipeTo(sink);
    live.write(chunkOf(0, 100));
    await tick();
    expect(sink.written).toHaveLength(1);
    // The socket never completes the write; the producer runs a whole ring ahead.
    for (let seq = 1; seq <= 10; seq++) {
      live.write(chunkOf(seq, 100));
      if (seq < 10) expect(sink.destroyed).toBeUndefined();
    }
    expect(sink.destroyed?.bytes).toEqual([chunkOf(0, 100)]);
    await expect(piping).rejects.toSatisfy(
      (e: unknown) => DisconnectedError.isInstance(e) && e.reason === 'lapped',
    );
    expect(sink.listenerCount).toBe(0);
  });

  it('leaves when the sink closes or errors, freeing a producer a block consumer held back', async () => {
    for (const how of ['close', 'error', 'callback'] as const) {
      const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
      const consumer = live.subscribe({ policy: 'block', budget: 150 });
      const sink = new ManualSink();
      const piping = consumer.pipeTo(sink);
      live.write(chunkOf(0, 100));
      expect(live.write(chunkOf(1, 100))).toBe(false);
      await tick();
      const drained = vi.fn();
      live.on('drain', drained);
      const failure = new Error('connection reset');
      if (how === 'close') sink.emit('close');
      else if (how === 'error') sink.emit('error', failure);
      else sink.flush(1, failure);
      if (how === 'close') await expect(piping).rejects.toBeInstanceOf(ClosedError);
      else await expect(piping).rejects.toBe(failure);
      expect(consumer.closed).toBe(true);
      expect(drained).toHaveBeenCalledTimes(1);
      expect(live.consumers).toEqual([]);
      expect(sink.listenerCount).toBe(0);
    }
  });

  it('stops on its signal: the consumer leaves and the sink is destroyed', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const consumer = live.subscribe({ policy: 'drop-oldest' });
    const sink = new ManualSink();
    const controller = new AbortController();
    const piping = consumer.pipeTo(sink, { signal: controller.signal });
    live.write(chunkOf(0, 10));
    await tick();
    controller.abort(new Error('viewer quota'));
    await expect(piping).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && /viewer quota/.test(String((e as Error).cause)),
    );
    expect(sink.destroyed).toBeDefined();
    expect(consumer.closed).toBe(true);
    expect(sink.ended).toBe(0);
  });

  it('rejects with producer-aborted when the broadcast aborts', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const consumer = live.subscribe({ policy: 'block' });
    const sink = new ManualSink();
    const piping = consumer.pipeTo(sink);
    live.write(chunkOf(0, 10));
    await tick();
    live.abort(new Error('encoder died'));
    await expect(piping).rejects.toMatchObject({ reason: 'producer-aborted' });
    expect(sink.destroyed).toBeDefined();
  });
});

describe('BroadcastConsumer.pipeTo over real sockets', () => {
  /** Frames: [seq u32][length u32][bytes], so the client can check chunk integrity. */
  function frame(seq: number, n: number): Uint8Array {
    const out = chunkOf(seq, n + 8);
    new DataView(out.buffer).setUint32(0, seq);
    new DataView(out.buffer).setUint32(4, n);
    return out;
  }

  async function serve(onSocket: (socket: Socket) => void) {
    const server = createServer(onSocket);
    server.listen(0);
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const client = connect(port);
    await once(client, 'connect');
    return { server, client };
  }

  function parseFrames(bytes: Buffer): { seq: number; ok: boolean }[] {
    const frames = [];
    // A connection cut mid-chunk leaves a partial last frame: only whole frames count.
    for (let at = 0; at + 8 <= bytes.length; ) {
      const seq = bytes.readUInt32BE(at);
      const n = bytes.readUInt32BE(at + 4);
      if (at + 8 + n > bytes.length) break;
      const got = new Uint8Array(bytes.subarray(at, at + n + 8));
      const want = frame(seq, n);
      frames.push({ seq, ok: Buffer.compare(got, want) === 0 });
      at += n + 8;
    }
    return frames;
  }

  it('a block consumer delivers every byte through a socket', async () => {
    const live = new Broadcast({ capacity: 256 * 1024, maxChunk: 16 * 1024 });
    let piping: Promise<void> | undefined;
    const { server, client } = await serve((socket) => {
      piping = live.subscribe({ policy: 'block', budget: 64 * 1024 }).pipeTo(socket);
    });
    const received: Buffer[] = [];
    client.on('data', (b: Buffer) => received.push(b));
    while (live.consumers.length === 0) await tick();
    let expected = 0;
    for (let seq = 0; seq < 400; seq++) {
      const n = 1 + ((seq * 4099) % (16 * 1024 - 8));
      await live.send(frame(seq, n));
      expected += n + 8;
    }
    live.end();
    await piping;
    await once(client, 'end');
    const frames = parseFrames(Buffer.concat(received));
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(frames.every((f) => f.ok)).toBe(true);
    expect(Buffer.concat(received).length).toBe(expected);
    client.destroy();
    server.close();
  });

  it('a viewer whose socket stops draining is cut off before the ring reuses its queued bytes', async () => {
    const live = new Broadcast({ capacity: 1024 * 1024, maxChunk: 16 * 1024 });
    let consumer: ReturnType<Broadcast['subscribe']> | undefined;
    let piping: Promise<void> | undefined;
    const { server, client } = await serve((socket) => {
      consumer = live.subscribe({ policy: 'drop-oldest', budget: 128 * 1024 });
      piping = consumer.pipeTo(socket);
      piping.catch(() => {});
    });
    const received: Buffer[] = [];
    client.on('data', (b: Buffer) => received.push(b));
    client.pause(); // the viewer's link stalls: the kernel buffers fill, then nothing drains
    while (consumer === undefined) await tick();
    let seq = 0;
    // Far more than any socket buffer holds: the queued chunk must end up pinned.
    for (let batch = 0; batch < 200; batch++) {
      for (let i = 0; i < 25; i++, seq++) {
        expect(live.write(frame(seq, 8 * 1024 + (seq % 1000)))).toBe(true);
      }
      await tick();
    }
    await expect(piping).rejects.toMatchObject({ reason: 'lapped' });
    expect(consumer!.metrics.bytesDropped).toBeGreaterThan(0);
    expect(live.metrics.stalls).toBe(0);
    client.resume();
    await once(client, 'close');
    // Whatever reached the viewer is whole chunks, in order, none of them overwritten.
    const frames = parseFrames(Buffer.concat(received));
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.every((f) => f.ok)).toBe(true);
    const seqs = frames.map((f) => f.seq);
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true);
    server.close();
  });
});
