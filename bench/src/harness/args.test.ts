import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseArgs, usage } from './args';
import { defineBenchmark } from './define';
import { runCli } from './main';
import type { BenchmarkReport } from './types';

const known = ['view-slice', 'splice', 'bl-compare'];

describe('parseArgs', () => {
  it('runs everything, in registry order, when no name is given', () => {
    expect(parseArgs([], known)).toEqual({
      kind: 'run',
      names: known,
      quick: false,
      timeMs: null,
      outDir: null,
    });
  });

  it('names the chosen benchmarks once each', () => {
    expect(parseArgs(['splice', 'view-slice', 'splice'], known)).toEqual({
      kind: 'run',
      names: ['splice', 'view-slice'],
      quick: false,
      timeMs: null,
      outDir: null,
    });
  });

  it('takes an output directory', () => {
    expect(parseArgs(['--out', '/tmp/r'], known)).toMatchObject({ outDir: '/tmp/r' });
    expect(parseArgs(['--out=/tmp/s', 'splice'], known)).toMatchObject({
      outDir: '/tmp/s',
      names: ['splice'],
    });
    expect(parseArgs(['--out'], known)).toEqual({
      kind: 'error',
      message: '--out needs a directory',
    });
  });

  it('takes --quick and --time anywhere, and ignores a bare --', () => {
    expect(parseArgs(['--', 'splice', '--quick'], known)).toMatchObject({
      names: ['splice'],
      quick: true,
    });
    expect(parseArgs(['--time', '5', 'splice'], known)).toMatchObject({
      names: ['splice'],
      timeMs: 5000,
    });
    expect(parseArgs(['--time=0.5'], known)).toMatchObject({ names: known, timeMs: 500 });
  });

  it('rejects a bad --time', () => {
    for (const argv of [['--time'], ['--time', 'x'], ['--time=0'], ['--time=-1']]) {
      const parsed = parseArgs(argv, known);
      expect(parsed.kind).toBe('error');
      if (parsed.kind === 'error')
        expect(parsed.message).toContain('--time needs a positive number');
    }
  });

  it('lists and helps', () => {
    expect(parseArgs(['--list'], known)).toEqual({ kind: 'list' });
    expect(parseArgs(['splice', '--help'], known)).toEqual({ kind: 'help' });
    expect(parseArgs(['-h'], known)).toEqual({ kind: 'help' });
    expect(usage(known)).toContain('Benchmarks: view-slice, splice, bl-compare');
  });

  it('rejects unknown names, listing the available ones and suggesting close ones', () => {
    const parsed = parseArgs(['view', 'nope'], known);
    expect(parsed.kind).toBe('error');
    if (parsed.kind !== 'error') return;
    expect(parsed.message).toContain(
      "unknown benchmarks 'view' (did you mean 'view-slice'?), 'nope'",
    );
    expect(parsed.message).toContain('Available benchmarks: view-slice, splice, bl-compare');
  });

  it('rejects unknown options', () => {
    const parsed = parseArgs(['--fast'], known);
    expect(parsed).toMatchObject({ kind: 'error' });
    if (parsed.kind === 'error') expect(parsed.message).toContain("unknown option '--fast'");
  });
});

const tiny = (name: string, fail = false) =>
  defineBenchmark<{ xs: number[] }>({
    name,
    summary: `sums ${name}`,
    description: 'Sums a small array.',
    unit: 'ops/s',
    bytesPerOp: 0,
    reference: 'reduce',
    setup: () => ({ xs: Array.from({ length: 64 }, (_, i) => i) }),
    cases: [
      { name: 'reduce', role: 'baseline', run: (s) => s.xs.reduce((a, b) => a + b, 0) },
      {
        name: 'loop',
        role: 'ours',
        run: (s) => {
          if (fail) throw new Error('loop broke');
          let sum = 0;
          for (const x of s.xs) sum += x;
          return sum;
        },
      },
    ],
  });

describe('runCli', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const io = () => {
    dir = mkdtempSync(join(tmpdir(), 'bench-cli-'));
    const out: string[] = [];
    const err: string[] = [];
    return {
      io: { resultsDir: dir, out: (t: string) => out.push(t), err: (t: string) => err.push(t) },
      out,
      err,
    };
  };
  const registry = [tiny('alpha'), tiny('beta')];

  it('exits 1 with the list of names on an unknown name, and writes nothing', async () => {
    const { io: cliIo, err } = io();
    expect(await runCli(['gamma'], registry, cliIo)).toBe(1);
    expect(err.join('\n')).toContain("unknown benchmark 'gamma'");
    expect(err.join('\n')).toContain('Available benchmarks: alpha, beta');
    expect(existsSync(join(cliIo.resultsDir, 'README.md'))).toBe(false);
  });

  it('lists names with their summaries', async () => {
    const { io: cliIo, out } = io();
    expect(await runCli(['--list'], registry, cliIo)).toBe(0);
    expect(out).toEqual([`${'alpha'.padEnd(16)} sums alpha`, `${'beta'.padEnd(16)} sums beta`]);
  });

  it('runs only the named benchmark, writes its results and the index', async () => {
    const { io: cliIo, out } = io();
    const results = join(cliIo.resultsDir, 'elsewhere');
    expect(
      await runCli(['beta', '--quick', '--time', '0.02', '--out', results], registry, cliIo),
    ).toBe(0);
    expect(existsSync(join(cliIo.resultsDir, 'README.md'))).toBe(false);
    expect(existsSync(join(results, 'alpha.json'))).toBe(false);
    for (const f of ['beta.json', 'beta.md', 'beta.svg', 'README.md', 'raw/beta.samples.json']) {
      expect(existsSync(join(results, f))).toBe(true);
    }
    const report = JSON.parse(readFileSync(join(results, 'beta.json'), 'utf8')) as BenchmarkReport;
    expect(report.options).toMatchObject({ quick: true, timeMs: 20 });
    expect(report.cases.map((c) => c.name)).toEqual(['reduce', 'loop']);
    expect(report.cases.every((c) => c.ops > 0 && c.throughput !== null)).toBe(true);
    expect(out.join('\n')).toContain('| Case | Role | Throughput |');
  });

  it('exits 1 when a case fails, still writing the others', async () => {
    const { io: cliIo, err } = io();
    expect(await runCli(['--quick', '--time', '0.02'], [tiny('alpha', true)], cliIo)).toBe(1);
    expect(err.join('\n')).toContain('1 case failed');
    const report = JSON.parse(
      readFileSync(join(cliIo.resultsDir, 'alpha.json'), 'utf8'),
    ) as BenchmarkReport;
    expect(report.cases.find((c) => c.name === 'loop')?.error).toBe('loop broke');
    expect(report.cases.find((c) => c.name === 'reduce')?.throughput).toBeGreaterThan(0);
  });
});
