import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let cachedGc: (() => void) | null | undefined;

/**
 * A function that forces a full garbage collection: `globalThis.gc` when
 * node runs with `--expose-gc` (the bench script does), otherwise one
 * obtained by setting the flag at run time. Null if neither works.
 */
export function getGc(): (() => void) | null {
  if (cachedGc !== undefined) return cachedGc;
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') {
    cachedGc = exposed as () => void;
    return cachedGc;
  }
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    cachedGc = typeof fn === 'function' ? (fn as () => void) : null;
  } catch {
    cachedGc = null;
  }
  return cachedGc;
}

/**
 * Tracks the peak resident set size while one case runs.
 *
 * How it is measured: `process.memoryUsage.rss()` (about 7 µs, read from
 * /proc) is sampled at the start of a slice, after a timed batch whenever
 * `intervalMs` has passed since the last sample (outside the timed region,
 * so it never inflates the figures), by a timer every `intervalMs` while an
 * async case yields to the event loop, and at the end of the slice. A
 * synchronous batch cannot be interrupted, so a spike that is freed inside
 * one batch is missed; benchmarks that care run such cases per-op or in a
 * child process, where the kernel's own high-water mark is also reported.
 */
export class RssTracker {
  #peak = 0;
  #baseline = 0;
  #last = 0n;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #intervalNs: bigint;
  readonly #intervalMs: number;

  constructor(intervalMs: number) {
    this.#intervalMs = Math.max(1, intervalMs);
    this.#intervalNs = BigInt(Math.round(this.#intervalMs * 1e6));
  }

  /** Starts a slice: records the baseline, and starts the timer for async cases. */
  start(withTimer: boolean): void {
    this.#baseline = process.memoryUsage.rss();
    this.#peak = this.#baseline;
    this.#last = process.hrtime.bigint();
    if (withTimer) {
      this.#timer = setInterval(() => this.sample(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** Samples now. */
  sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.#peak) this.#peak = rss;
    this.#last = process.hrtime.bigint();
  }

  /** Samples if the interval has passed since the last sample (`now` from `process.hrtime.bigint()`). */
  maybeSample(now: bigint): void {
    if (now - this.#last >= this.#intervalNs) this.sample();
  }

  /** Ends the slice: the peak and the rise above the slice's starting RSS. */
  stop(): { peak: number; growth: number } {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.sample();
    return { peak: this.#peak, growth: Math.max(0, this.#peak - this.#baseline) };
  }
}

/** The `VmHWM` (peak resident set) line of a `/proc/<pid>/status` text, in bytes; null if absent. */
export function parseVmHwm(status: string): number | null {
  const match = /^VmHWM:\s*(\d+)\s*kB$/m.exec(status);
  return match ? Number(match[1]) * 1024 : null;
}

/**
 * This process's own peak RSS, in bytes: the kernel's high-water mark of its
 * address space (`VmHWM` in `/proc/self/status`).
 *
 * Not `process.resourceUsage().maxRSS`: Linux keeps `ru_maxrss` across
 * `execve`, so a child forked from a large parent starts with the parent's
 * RSS at the fork as its "maximum" (a 40 MiB child of a 500 MiB parent
 * reports 500 MiB). `VmHWM` belongs to the address space, which `exec`
 * replaces. Falls back to `maxRSS` where there is no `/proc`.
 */
export function peakRssBytes(): number {
  try {
    const hwm = parseVmHwm(readFileSync('/proc/self/status', 'utf8'));
    if (hwm !== null) return hwm;
  } catch {
    // No procfs: not Linux.
  }
  return process.resourceUsage().maxRSS * 1024;
}
