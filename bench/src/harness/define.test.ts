import { describe, expect, it } from 'vitest';
import { benchmarks } from '../benchmarks/index';
import { defineBenchmark, validateBenchmark } from './define';
import type { Benchmark } from './types';

const base: Benchmark = {
  name: 'ok',
  summary: 's',
  description: 'd',
  unit: 'ops/s',
  bytesPerOp: 0,
  reference: 'a',
  cases: [
    { name: 'a', role: 'baseline', run: () => 1 },
    { name: 'b', role: 'ours', run: () => 2 },
  ],
};

describe('validateBenchmark', () => {
  it('accepts a sound definition', () => {
    expect(validateBenchmark(base)).toEqual([]);
  });

  it('finds every kind of mistake', () => {
    const bad: Benchmark = {
      ...base,
      name: 'Not Kebab',
      summary: 'two\nlines',
      unit: 'MiB/s',
      reference: 'zzz',
      cases: [
        { name: 'a', role: 'baseline', run: () => 1 },
        { name: 'a', role: 'ours', reference: 'nope', isolate: true, run: () => 2 },
        { name: 'c', role: 'peer', runtime: 'built', run: () => 3 },
      ],
      targets: [
        { kind: 'ratio', case: 'a', vs: 'ghost', atLeast: 1 },
        { kind: 'limit', case: 'a', metric: 'p50Ns' },
      ],
    };
    const problems = validateBenchmark(bad).join('\n');
    expect(problems).toContain('name must be kebab-case');
    expect(problems).toContain('summary must be one line');
    expect(problems).toContain("duplicate case 'a'");
    expect(problems).toContain("reference 'zzz' is not a case");
    expect(problems).toContain("unknown reference 'nope'");
    expect(problems).toContain('is isolated but the benchmark has no moduleUrl');
    expect(problems).toContain(
      "case 'c' has runtime 'built', which only an isolated case's child process can have",
    );
    expect(problems).toContain('is in MiB/s but moves no bytes per op');
    expect(problems).toContain("target names unknown case 'ghost'");
    expect(problems).toContain('has neither atLeast nor atMost');
  });

  it('checks single-shot runs, per-run byte counts and baseline RSS targets', () => {
    const bad: Benchmark = {
      ...base,
      unit: 'MiB/s',
      bytesPerOp: ({ quick }) => (quick ? 0 : 1024),
      singleShot: { runs: 0 },
      targets: [{ kind: 'limit', case: 'b', metric: 'rssAboveBaselineBytes', atMost: 1 }],
    };
    const problems = validateBenchmark(bad).join('\n');
    expect(problems).toContain('singleShot.runs must be an integer >= 1, got 0');
    expect(problems).toContain("case 'a' is in MiB/s but moves no bytes per op");
    expect(problems).toContain("baseline RSS of 'b' needs that case isolated");
    const timedCheck = validateBenchmark({
      ...base,
      cases: [{ ...(base.cases[0] as Benchmark['cases'][number]), check: () => {} }],
    });
    expect(timedCheck.join('\n')).toContain(
      "case 'a' has a check, which only single-shot scenarios run",
    );
    const good: Benchmark = {
      ...base,
      unit: 'MiB/s',
      bytesPerOp: ({ quick }) => (quick ? 512 : 1024),
      moduleUrl: 'file:///x.ts',
      singleShot: { runs: 1 },
      cases: [base.cases[0], { ...base.cases[1], isolate: true }] as Benchmark['cases'],
      targets: [{ kind: 'limit', case: 'b', metric: 'rssAboveBaselineBytes', atMost: 1 }],
    };
    expect(validateBenchmark(good)).toEqual([]);
  });

  it('makes defineBenchmark throw on a broken definition', () => {
    expect(() => defineBenchmark({ ...base, reference: 'missing' })).toThrow(
      "reference 'missing' is not a case",
    );
  });
});

describe('the registry', () => {
  it('holds the benchmarks the issue asks for, under unique names', () => {
    const names = benchmarks.map((b) => b.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'view-slice',
        'splice',
        'bl-compare',
        'socket-ingest',
        'gather-write',
        'pipeline-3stage',
        'gzip-guide',
        'fan-out',
        'tus-upload',
        's3-upload',
        'adaptive-chunk',
      ]),
    );
    expect(new Set(names).size).toBe(names.length);
  });

  it('holds only valid definitions, each with ours or a baseline and a moduleUrl', () => {
    for (const b of benchmarks) {
      expect(validateBenchmark(b)).toEqual([]);
      expect(b.moduleUrl).toMatch(/^file:/);
      expect(b.cases.some((c) => c.role === 'ours' || c.role === 'baseline')).toBe(true);
    }
  });

  it('labels zero-copy and copying peers apart in bl-compare', () => {
    const bl = benchmarks.find((b) => b.name === 'bl-compare');
    const groupOf = (name: string) => bl?.cases.find((c) => c.name === name)?.group;
    expect(groupOf('bl shallowSlice')).toBe(groupOf('ByteStore#viewAt'));
    expect(groupOf('bl slice')).toBe(groupOf('ByteView#copy'));
    expect(groupOf('bl slice')).not.toBe(groupOf('bl shallowSlice'));
  });
});
