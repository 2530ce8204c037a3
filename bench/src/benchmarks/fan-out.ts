import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import {
  Broadcast,
  type BroadcastChunk,
  type BroadcastCoalesceOptions,
  type BroadcastConsumer,
  DisconnectedError,
  type SlowConsumerPolicy,
} from 'backpressure-stream';
import { defineBenchmark } from '../harness/define';
import type { BenchCase, Target } from '../harness/types';
import { KiB, MiB, randomBytes } from './util';

/** What the producer writes per operation: one socket read's worth of a live ingest. */
const CHUNK = 64 * KiB;
/** A marker (keyframe) every 32 chunks: a 2 MiB group of pictures. */
const GOP = 32;
/** Each consumer's budget: two GOPs. */
const BUDGET = 4 * MiB;
/** The ring: the budget plus two chunks, the least `Broadcast` accepts for it. */
const CAPACITY = BUDGET + 2 * CHUNK;
const CONSUMERS = 200;
const SLOW = 20;
/** 100 KB/s. */
const SLOW_RATE = 100_000;
/**
 * Every consumer's wake-up coalescing, as a live-video server would set it: a
 * waiting reader is woken at most every 5 ms (or sooner, when its budget
 * needs it), then takes everything pending as one batch. A few milliseconds
 * are invisible to a video player.
 */
const COALESCE: BroadcastCoalesceOptions = { maxWaitMs: 5 };
/** "Peak RSS ≤ baseline + sum of budgets + 32 MB", MB read strictly as 10^6 bytes. */
const RSS_ALLOWANCE = CONSUMERS * BUDGET + 32e6;

interface Stats {
  fastBytes: number;
  slowBytes: number;
  disconnects: number;
}

/**
 * The clock the slow consumers are paced by: it runs only while an operation
 * of this case runs. A case's process idles between its slices while the
 * other cases run; paced by the wall clock, the slow consumers would read on
 * meanwhile and free room the producer spends at the start of its next
 * slice, so a `'block'` producer would seem faster than its consumers.
 */
interface Gate {
  /** An operation is running since `startedAt`. */
  running: boolean;
  startedAt: number;
  /** Milliseconds of operations before the running one. */
  measuredMs: number;
  /** Consumers waiting for the next operation to start. */
  waiters: (() => void)[];
}

interface State {
  chunks: Uint8Array[];
  broadcast: Broadcast | undefined;
  written: number;
  stats: Stats;
  gate: Gate;
}

function measuredNow(gate: Gate): number {
  return gate.measuredMs + (gate.running ? performance.now() - gate.startedAt : 0);
}

/** Resolves once the measured clock reaches `due`. */
async function until(gate: Gate, due: number): Promise<void> {
  for (;;) {
    const left = due - measuredNow(gate);
    if (left <= 0) return;
    if (gate.running) await sleep(left);
    else await new Promise<void>((resolve) => gate.waiters.push(resolve));
  }
}

/**
 * How the fast consumers read: `'push'` hands each batch to a callback
 * (`forEachBatch`, every consumer a write wakes served from one microtask);
 * `'iterate'` is a `for await` over `batches()` (a promise per consumer per
 * batch). Either way each batch is everything pending when it is woken, and
 * stays in use until the consumer is done with it.
 */
type ReaderKind = 'push' | 'iterate';

/** What a fast consumer does with a batch: looks at every chunk. */
function countBytes(batch: readonly BroadcastChunk[]): number {
  let bytes = 0;
  for (const chunk of batch) bytes += chunk.bytes.length;
  return bytes;
}

/** Reads as fast as it can: looks at every chunk of every batch. */
async function fastReader(
  consumer: BroadcastConsumer,
  stats: Stats,
  kind: ReaderKind,
): Promise<void> {
  if (kind === 'push') {
    await consumer.forEachBatch((batch) => {
      stats.fastBytes += countBytes(batch);
    });
    return;
  }
  for await (const batch of consumer.batches()) stats.fastBytes += countBytes(batch);
}

/**
 * Reads at 100 KB/s of measured time. It releases each chunk as soon as it
 * has it and then waits its turn, so the policy sees it as a consumer falling
 * behind. (One that keeps the chunk in use while it waits, as a `for await`
 * body that awaits does, is cut off with reason 'lapped' under every policy
 * once the full-speed producer laps the ring under it.) A consumer that is
 * cut off subscribes again at once (a player reconnecting), so there are
 * always 20 slow consumers for the policy to act on.
 */
async function slowReader(
  broadcast: Broadcast,
  subscribe: () => BroadcastConsumer,
  stats: Stats,
  gate: Gate,
): Promise<void> {
  let consumer = subscribe();
  let due = 0;
  for (;;) {
    try {
      for (;;) {
        await until(gate, due);
        const { value: chunk, done } = await consumer.read();
        if (done) return;
        consumer.release(chunk);
        stats.slowBytes += chunk.bytes.length;
        due = Math.max(due, measuredNow(gate)) + (chunk.bytes.length / SLOW_RATE) * 1000;
      }
    } catch (error) {
      if (!DisconnectedError.isInstance(error) || broadcast.closed) return;
      stats.disconnects++;
      consumer = subscribe();
    }
  }
}

interface Shape {
  name: string;
  consumers: number;
  slow: number;
  policy: SlowConsumerPolicy;
  reader?: ReaderKind;
  description: string;
  role?: BenchCase<State>['role'];
}

function fanOutCase(shape: Shape): BenchCase<State> {
  return {
    name: shape.name,
    role: shape.role ?? 'ours',
    description: shape.description,
    reference: 'single consumer',
    // Own process: peak RSS is this case's alone, over its own baseline.
    isolate: true,
    // Plain node on the built package, as users run it: under tsx, the sources'
    // closures are wrapped in `__name()` calls, a cost the published build does not have.
    runtime: 'built',
    setup: (s) => {
      const broadcast = new Broadcast({ capacity: CAPACITY, maxChunk: CHUNK, name: shape.name });
      s.broadcast = broadcast;
      let n = 0;
      const subscribe = () =>
        broadcast.subscribe({
          policy: shape.policy,
          budget: BUDGET,
          coalesce: COALESCE,
          name: `viewer-${++n}`,
        });
      for (let i = 0; i < shape.consumers - shape.slow; i++) {
        void fastReader(subscribe(), s.stats, shape.reader ?? 'push');
      }
      for (let i = 0; i < shape.slow; i++) {
        void slowReader(broadcast, subscribe, s.stats, s.gate);
      }
    },
    teardown: (s) => {
      const m = s.broadcast?.metrics;
      s.broadcast?.end();
      if (m !== undefined && shape.slow > 0) {
        console.log(
          `  ${shape.name}: wrote ${(m.bytesIn / MiB).toFixed(0)} MiB; consumers dropped or skipped ` +
            `${(m.bytesDropped / MiB).toFixed(0)} MiB, slow ones read ${(s.stats.slowBytes / MiB).toFixed(1)} MiB, ` +
            `${s.stats.disconnects} disconnects`,
        );
      }
    },
    // One operation: write one chunk (marking every 32nd), wait if the broadcast says so, then let the
    // event loop turn once, as a producer fed by a socket does between reads; the consumers run in it.
    run: async (s) => {
      const broadcast = s.broadcast as Broadcast;
      const gate = s.gate;
      gate.running = true;
      gate.startedAt = performance.now();
      for (const wake of gate.waiters.splice(0)) wake();
      const k = s.written++;
      const chunk = s.chunks[k % s.chunks.length] as Uint8Array;
      if (!broadcast.write(chunk, { marker: k % GOP === 0 })) await broadcast.ready();
      await nextTurn();
      gate.measuredMs += performance.now() - gate.startedAt;
      gate.running = false;
    },
  };
}

const POLICIES = ['drop-oldest', 'skip-to-marker', 'disconnect'] as const;

const cases: BenchCase<State>[] = [
  fanOutCase({
    name: 'single consumer',
    consumers: 1,
    slow: 0,
    policy: 'drop-oldest',
    description: 'the reference: one fast consumer',
  }),
  fanOutCase({
    name: '200 fast consumers, none slow',
    consumers: CONSUMERS,
    slow: 0,
    policy: 'drop-oldest',
    role: 'baseline',
    description:
      'the same 200 consumers all fast: what 200 readers cost the one thread, with no slow consumer for a policy to act on',
  }),
  ...POLICIES.map((policy) =>
    fanOutCase({
      name: `200 (20 slow), ${policy}`,
      consumers: CONSUMERS,
      slow: SLOW,
      policy,
      description:
        policy === 'disconnect'
          ? '180 fast + 20 slow consumers, each `disconnect`; a slow consumer cut off subscribes again at once'
          : `180 fast + 20 slow consumers, each \`${policy}\``,
    }),
  ),
  fanOutCase({
    name: '200 (20 slow), drop-oldest, for-await readers',
    consumers: CONSUMERS,
    slow: SLOW,
    policy: 'drop-oldest',
    reader: 'iterate',
    role: 'baseline',
    description:
      'the same as `drop-oldest` with the fast consumers reading by `for await` over `batches()`: a promise per consumer per batch instead of `forEachBatch()`',
  }),
  fanOutCase({
    name: '200 (20 slow), block: slow by design',
    consumers: CONSUMERS,
    slow: SLOW,
    policy: 'block',
    description:
      'for contrast: with `block` the slowest consumer sets the pace, so the producer runs at about 100 KB/s',
  }),
];

const targets: Target[] = [
  ...POLICIES.map(
    (policy): Target => ({
      kind: 'ratio',
      case: `200 (20 slow), ${policy}`,
      vs: 'single consumer',
      atLeast: 0.8,
    }),
  ),
  ...POLICIES.map(
    (policy): Target => ({
      kind: 'limit',
      case: `200 (20 slow), ${policy}`,
      metric: 'rssAboveBaselineBytes',
      atMost: RSS_ALLOWANCE,
      label: `200 (20 slow), ${policy}: peak RSS ≤ baseline + 200 × 4 MiB budgets + 32 MB`,
    }),
  ),
];

/**
 * One producer at full speed, 200 consumers of which 20 read at 100 KB/s:
 * producer throughput and peak RSS under each slow-consumer policy.
 */
export const fanOut = defineBenchmark<State>({
  name: 'fan-out',
  summary: 'one producer, 200 consumers (20 at 100 KB/s): producer throughput and RSS per policy',
  description:
    'Live fan-out: one producer writes 64 KiB chunks (every 32nd marked, a 2 MiB group of pictures) into a ' +
    '`Broadcast` as fast as it can; 200 consumers each have a 4 MiB budget and one policy, and all subscribe with ' +
    'the wake-up coalescing a live-video server would use, `coalesce: { maxWaitMs: 5 }`: a waiting reader is woken ' +
    "at the latest 5 ms after data arrived for it (sooner when the next chunk could take it over its budget: at the producer's " +
    'full speed, every 64 chunks) and then takes everything pending as one batch; a few milliseconds are invisible to a ' +
    'video player. 180 read as fast as they can (`forEachBatch()`, adding up the length of every chunk of each batch; ' +
    'one row shows the same with `for await` over `batches()`), 20 read ' +
    'one chunk at a time at 100 KB/s (paced by a clock that runs only while the case is measured, so they do not read on ' +
    'while the other cases run), releasing each chunk as soon as they take it (one that keeps a chunk in use while it ' +
    "waits is cut off with reason 'lapped' under every policy once the full-speed producer laps the ring under it) and " +
    'subscribing again when cut off. The single-consumer reference is the same code with one fast consumer: same ' +
    'options, same reading loop, same producer. The ring is sized for the budgets: 4 MiB + 2 × 64 KiB. One operation ' +
    'writes one chunk, awaits `ready()` if `write()` returned `false`, then lets the event loop turn once (a ' +
    "socket-fed producer gets one chunk per turn), so the consumers run on the producer's thread and their work counts " +
    'against it: most operations wake nobody, and one in about 64 wakes every fast consumer. Each case runs in its own ' +
    "process: peak RSS is that process's high-water mark and baseline its RSS before the broadcast existed; the sum of " +
    'the budgets is 200 × 4 MiB = 800 MiB. MiB/s written by the producer.',
  unit: 'MiB/s',
  bytesPerOp: CHUNK,
  reference: 'single consumer',
  moduleUrl: import.meta.url,
  setup: () => ({
    chunks: Array.from({ length: 8 }, () => randomBytes(CHUNK)),
    broadcast: undefined,
    written: 0,
    stats: { fastBytes: 0, slowBytes: 0, disconnects: 0 },
    gate: { running: false, startedAt: 0, measuredMs: 0, waiters: [] },
  }),
  cases,
  targets,
});
