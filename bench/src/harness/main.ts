import { resolve } from 'node:path';
import { parseArgs, usage } from './args';
import { formatDuration } from './format';
import { markdownTable, markdownTargets } from './report-markdown';
import { DEFAULT_OPTIONS, QUICK_OPTIONS, runBenchmark } from './runner';
import type { Benchmark, RunOptions } from './types';
import { writeBenchmarkResults, writeIndex } from './write-results';

/** Where the CLI writes and speaks. */
export interface CliIo {
  resultsDir: string;
  out: (text: string) => void;
  err: (text: string) => void;
}

/**
 * The `pnpm bench` command: parses `argv`, runs the chosen benchmarks in
 * registry order, writes their results and the results index. Returns the
 * exit code: 0 when every case ran (missed targets are reported, not
 * failures), 1 for a usage error or a case that failed.
 */
export async function runCli(
  argv: readonly string[],
  registry: readonly Benchmark[],
  io: CliIo,
): Promise<number> {
  const known = registry.map((b) => b.name);
  const command = parseArgs(argv, known);
  if (command.kind === 'help') {
    io.out(usage(known));
    return 0;
  }
  if (command.kind === 'error') {
    io.err(`bench: ${command.message}`);
    return 1;
  }
  if (command.kind === 'list') {
    for (const b of registry) io.out(`${b.name.padEnd(16)} ${b.summary}`);
    return 0;
  }
  const base = command.quick ? QUICK_OPTIONS : DEFAULT_OPTIONS;
  const options: RunOptions = command.timeMs === null ? base : { ...base, timeMs: command.timeMs };
  const chosen = registry.filter((b) => command.names.includes(b.name));
  const resultsDir = command.outDir === null ? io.resultsDir : resolve(command.outDir);
  let failures = 0;
  for (const benchmark of chosen) {
    const runs = benchmark.singleShot?.runs;
    const plan =
      runs === undefined
        ? `${options.rounds} rounds`
        : `single-shot, ${runs} run${runs === 1 ? '' : 's'} each`;
    io.out(`\n▶ ${benchmark.name} (${benchmark.cases.length} cases, ${plan})`);
    const outcome = await runBenchmark(benchmark, options, io.out);
    const { report } = outcome;
    writeBenchmarkResults(resultsDir, outcome);
    io.out(`\n${markdownTable(report)}\n`);
    if (report.targets.length > 0) io.out(`${markdownTargets(report)}\n`);
    io.out(`done in ${formatDuration(report.durationMs * 1e6)}`);
    failures += report.cases.filter((c) => c.error !== null).length;
  }
  const index = writeIndex(resultsDir, known);
  io.out(`\nwrote ${resultsDir} (index: ${index})`);
  if (failures > 0) {
    io.err(`bench: ${failures} case${failures === 1 ? '' : 's'} failed`);
    return 1;
  }
  return 0;
}
