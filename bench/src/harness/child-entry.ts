/**
 * Entry of a child process that runs one isolated case (see child.ts). Loads
 * the benchmark from its module, runs the benchmark's and the case's setup,
 * then answers the parent's warmup / slice / close requests.
 */
import { createLocalRunner } from './case-runner';
import type { ChildArgs, FromChild, ToChild } from './child';
import { getGc, peakRssBytes } from './memory';
import type { Benchmark } from './types';

function send(message: FromChild, then?: () => void): void {
  process.send?.(message, undefined, undefined, then);
}

function findBenchmark(module: Record<string, unknown>, name: string): Benchmark {
  for (const value of Object.values(module)) {
    if (
      typeof value === 'object' &&
      value !== null &&
      (value as { name?: unknown }).name === name &&
      Array.isArray((value as { cases?: unknown }).cases)
    ) {
      return value as Benchmark;
    }
  }
  throw new Error(`no benchmark named '${name}' is exported by its module`);
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
  const benchmark = findBenchmark(
    (await import(args.moduleUrl)) as Record<string, unknown>,
    args.benchmark,
  );
  const benchCase = benchmark.cases.find((c) => c.name === args.case);
  if (benchCase === undefined)
    throw new Error(`benchmark '${args.benchmark}' has no case '${args.case}'`);
  const state = await benchmark.setup?.({ quick: args.options.quick });
  // The floor the case's own memory comes on top of: this process with the
  // benchmark loaded and set up, before the case's setup, after a full GC.
  getGc()?.();
  const baselineRssBytes = process.memoryUsage.rss();
  const runner = await createLocalRunner(benchCase, state, args.options);
  process.on('message', (message: ToChild) => {
    const handle = async () => {
      if (message.type === 'warmup') {
        await runner.warmup();
        send({ type: 'warmed', batch: runner.batch });
      } else if (message.type === 'slice') {
        send({ type: 'slice', result: await runner.slice(message.ms) });
      } else if (message.type === 'shot') {
        send({ type: 'slice', result: await runner.shot() });
      } else {
        await runner.close();
        await benchmark.teardown?.(state);
        // The kernel's high-water mark of this process's own memory (not maxRSS: see peakRssBytes).
        const maxRssBytes = peakRssBytes();
        send({ type: 'closed', maxRssBytes }, () => process.exit(0));
      }
    };
    handle().catch(fail);
  });
  send({ type: 'ready', baselineRssBytes });
}

function fail(error: unknown): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  send({ type: 'error', message }, () => process.exit(1));
}

main().catch(fail);
