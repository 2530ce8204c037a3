import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CaseRunner, SliceResult } from './case-runner';
import { TEARDOWN_TIMEOUT_MS, withTimeout } from './timeout';
import type { Benchmark, ChildRuntime, RunOptions } from './types';

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

/**
 * Node flags for a child: for `'sources'` tsx's loader, gc and the source
 * condition; for `'built'` (a plain-ESM bundle, packages from their builds)
 * only gc.
 */
export function childExecArgv(runtime: ChildRuntime = 'sources'): string[] {
  if (runtime === 'built') return ['--expose-gc'];
  const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return ['--import', tsxLoader, '--expose-gc', `--conditions=${SOURCE_CONDITION}`];
}

/** What a `'built'` child runs: the bundled child entry, and the bundled benchmark module's URL. */
export interface ChildBundle {
  entry: string;
  moduleUrl: string;
}

/** The part of esbuild's API used here. */
interface Esbuild {
  build(options: Record<string, unknown>): Promise<{ errors: unknown[] }>;
}

/**
 * Where bundles are written: inside bench/, so that the packages they import
 * by name resolve through bench/node_modules like any code of this package.
 */
const BUNDLE_DIR = fileURLToPath(
  new URL('../../node_modules/.cache/bench-children/', import.meta.url),
);

const bundles = new Map<string, Promise<ChildBundle>>();
let cleanupRegistered = false;

/**
 * Compiles the child entry and the benchmark module at `moduleUrl` to plain
 * ESM (once per module and process) for a `'built'` child. Everything from
 * packages, workspace or npm, stays an import by name (esbuild's `packages:
 * 'external'`), so the child loads them as published: workspace packages
 * through their `exports` to `dist`. esbuild is tsx's own (the bench runs on
 * tsx, so it is always there), found through tsx's dependencies.
 */
export function bundleForChild(moduleUrl: string): Promise<ChildBundle> {
  let bundle = bundles.get(moduleUrl);
  if (bundle === undefined) {
    bundle = buildBundle(moduleUrl);
    bundles.set(moduleUrl, bundle);
    // A failed build may be retried (after fixing what it reported).
    bundle.catch(() => bundles.delete(moduleUrl));
  }
  return bundle;
}

/** Removes the bundles of runs that ended without cleaning up (killed test workers, say). */
function removeOrphans(): void {
  let entries: string[];
  try {
    entries = readdirSync(BUNDLE_DIR);
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    rmSync(join(BUNDLE_DIR, entry), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is just not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function buildBundle(moduleUrl: string): Promise<ChildBundle> {
  const fromTsx = createRequire(createRequire(import.meta.url).resolve('tsx'));
  const esbuild = fromTsx('esbuild') as Esbuild;
  const modulePath = fileURLToPath(moduleUrl);
  const name = basename(modulePath).replace(/\.[cm]?[jt]s$/, '');
  const outdir = join(BUNDLE_DIR, `${process.pid}`);
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    process.once('exit', () => rmSync(outdir, { recursive: true, force: true }));
    removeOrphans();
  }
  await esbuild.build({
    entryPoints: {
      'child-entry': fileURLToPath(new URL('./child-entry.ts', import.meta.url)),
      [`benchmark-${name}`]: modulePath,
    },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'silent',
  });
  return {
    entry: join(outdir, 'child-entry.mjs'),
    moduleUrl: pathToFileURL(join(outdir, `benchmark-${name}.mjs`)).href,
  };
}

/**
 * Runs one case in its own child process (own heap, own RSS), driven over IPC
 * one request at a time so it still alternates with the other cases. The
 * child loads the benchmark from its `moduleUrl` (or, for the `'built'`
 * runtime, from a bundle of it) and runs the benchmark's setup itself.
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
  const runtime = benchmark.cases.find((c) => c.name === caseName)?.runtime ?? 'sources';
  const built = runtime === 'built' ? await bundleForChild(benchmark.moduleUrl) : undefined;
  const args: ChildArgs = {
    moduleUrl: built?.moduleUrl ?? benchmark.moduleUrl,
    benchmark: benchmark.name,
    case: caseName,
    options,
  };
  const entry = built?.entry ?? fileURLToPath(new URL('./child-entry.ts', import.meta.url));
  const child = fork(entry, [JSON.stringify(args)], {
    execArgv: childExecArgv(runtime),
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
