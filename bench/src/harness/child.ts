import { type ChildProcess, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CaseRunner, SliceResult } from './case-runner';
import { TEARDOWN_TIMEOUT_MS, withTimeout } from './timeout';
import type { Benchmark, RunOptions } from './types';

/** The export condition that resolves workspace packages to their TypeScript sources. */
export const SOURCE_CONDITION = '@streaming-primitives/source';

/** Parent → child. */
export type ToChild =
  | { type: 'warmup' }
  | { type: 'slice'; ms: number }
  | { type: 'shot' }
  | { type: 'close' };

/** Child → parent. */
export type FromChild =
  | { type: 'ready'; baselineRssBytes: number }
  | { type: 'warmed'; batch: number }
  | { type: 'slice'; result: SliceResult }
  | { type: 'closed'; maxRssBytes: number }
  | { type: 'error'; message: string };

/** What the child is told on its command line. */
export interface ChildArgs {
  moduleUrl: string;
  benchmark: string;
  case: string;
  options: RunOptions;
}

/** Node flags for a child that runs TypeScript sources: tsx's loader, gc, the source condition. */
export function childExecArgv(): string[] {
  const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return ['--import', tsxLoader, '--expose-gc', `--conditions=${SOURCE_CONDITION}`];
}

/**
 * Runs one case in its own child process (own heap, own RSS), driven over IPC
 * one request at a time so it still alternates with the other cases. The
 * child loads the benchmark from its `moduleUrl` and runs the benchmark's
 * setup itself.
 */
export async function createChildRunner(
  benchmark: Benchmark,
  caseName: string,
  options: RunOptions,
): Promise<CaseRunner> {
  if (benchmark.moduleUrl === undefined) {
    throw new Error(
      `benchmark '${benchmark.name}' has no moduleUrl, so '${caseName}' cannot be isolated`,
    );
  }
  const args: ChildArgs = {
    moduleUrl: benchmark.moduleUrl,
    benchmark: benchmark.name,
    case: caseName,
    options,
  };
  const entry = fileURLToPath(new URL('./child-entry.ts', import.meta.url));
  const child = fork(entry, [JSON.stringify(args)], {
    execArgv: childExecArgv(),
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const channel = new ChildChannel(child, `${benchmark.name}/${caseName}`);
  const { baselineRssBytes } = await channel.next('ready');
  let batch = 1;
  let closed = false;
  return {
    get batch() {
      return batch;
    },
    baselineRssBytes,
    async warmup() {
      child.send({ type: 'warmup' } satisfies ToChild);
      batch = (await channel.next('warmed')).batch;
    },
    async slice(ms) {
      child.send({ type: 'slice', ms } satisfies ToChild);
      return (await channel.next('slice')).result;
    },
    async shot() {
      child.send({ type: 'shot' } satisfies ToChild);
      return (await channel.next('slice')).result;
    },
    async close() {
      if (closed) return { maxRssBytes: null };
      closed = true;
      if (child.exitCode !== null || !child.connected) return { maxRssBytes: null };
      try {
        child.send({ type: 'close' } satisfies ToChild);
        const { maxRssBytes } = await withTimeout(
          channel.next('closed'),
          TEARDOWN_TIMEOUT_MS,
          'child teardown',
        );
        await withTimeout(channel.exited, TEARDOWN_TIMEOUT_MS, 'child exit').catch(() => {});
        return { maxRssBytes };
      } finally {
        // Whatever happened (the runner may also give up waiting), leave no child behind.
        if (child.exitCode === null && child.signalCode === null) child.kill();
      }
    },
  };
}

type Reply<K extends FromChild['type']> = Extract<FromChild, { type: K }>;

/** Turns the child's messages into awaited replies; an error or an early exit rejects. */
class ChildChannel {
  readonly exited: Promise<void>;
  #queue: FromChild[] = [];
  #waiter: ((m: FromChild) => void) | undefined;
  #failure: Error | undefined;
  #fail: ((e: Error) => void) | undefined;

  constructor(child: ChildProcess, label: string) {
    child.on('message', (message: FromChild) => {
      if (message.type === 'error') {
        this.#reject(new Error(`isolated case ${label} failed: ${message.message}`));
        return;
      }
      const waiter = this.#waiter;
      this.#waiter = undefined;
      if (waiter) waiter(message);
      else this.#queue.push(message);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#reject(new Error(`isolated case ${label} exited (code ${code}, signal ${signal})`));
        resolve();
      });
    });
    child.once('error', (error) => this.#reject(error));
  }

  #reject(error: Error): void {
    this.#failure ??= error;
    this.#fail?.(error);
    this.#fail = undefined;
    this.#waiter = undefined;
  }

  async next<K extends FromChild['type']>(type: K): Promise<Reply<K>> {
    const queued = this.#queue.shift();
    const message =
      queued ??
      (await new Promise<FromChild>((resolve, reject) => {
        if (this.#failure) {
          reject(this.#failure);
          return;
        }
        this.#waiter = resolve;
        this.#fail = reject;
      }));
    if (message.type !== type)
      throw new Error(`expected '${type}' from child, got '${message.type}'`);
    return message as Reply<K>;
  }
}
