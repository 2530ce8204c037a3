import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterEach, describe, expect, it } from 'vitest';
import { caseResult, report } from './fixtures/report';
import { formatBytes, formatDuration, formatRatio, formatThroughput } from './format';
import { cell, describeRun, indexMarkdown, markdownReport, markdownTable } from './report-markdown';
import { barScale, LOG_SCALE_SPREAD, svgChart } from './report-svg';
import type { BenchmarkReport, CaseResult } from './types';
import { readReports, writeBenchmarkResults, writeIndex } from './write-results';

const sample = report(
  'view-slice',
  [
    caseResult({
      name: 'ByteStore#viewAt',
      role: 'ours',
      group: '20 MiB',
      reference: 'Buffer.concat',
      throughput: 30e6,
      ratio: 100_000,
      perOpNs: { mean: 35, p50: 33, p99: 50, min: 30, max: 900 },
      copies: { source: 'counted', bytesCopiedPerOp: 0, bytesAllocatedPerOp: 0, copiesPerOp: 0 },
      description: 'a zero-copy view',
    }),
    caseResult({
      name: 'Buffer.concat',
      group: '20 MiB',
      throughput: 300,
      ratio: 1,
      copies: { source: 'declared', bytesCopiedPerOp: 20 * 2 ** 20 },
    }),
    caseResult({
      name: 'odd <name> & "quotes" | pipe',
      role: 'baseline',
      group: '1 KiB',
      reference: 'Buffer.concat',
      throughput: null,
      perOpNs: null,
      ratio: null,
      error: 'exploded <here>',
    }),
  ],
  {
    targets: [
      { label: 'view ≤ 1 µs', met: true, actual: 33, detail: '33 ns' },
      { label: 'ours ≥ 2× peer', met: false, actual: 0.5, detail: '0.5×' },
    ],
    allTargetsMet: false,
  },
);

/** Splits a markdown table into rows of cells, honouring `\|` escapes. */
function tableRows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .slice(2, -2)
        .split(/(?<!\\) \| /)
        .map((c) => c.replace(/\\\|/g, '|')),
    );
}

describe('markdownTable', () => {
  it('has a header, an alignment row and one row per case with every column', () => {
    const rows = tableRows(markdownTable(sample));
    expect(rows[0]).toEqual([
      'Group',
      'Case',
      'Role',
      'Throughput',
      'p50',
      'p99',
      'Peak RSS (growth)',
      'Copied / allocated per op',
      'Ratio',
    ]);
    expect(rows).toHaveLength(2 + sample.cases.length);
    for (const row of rows) expect(row).toHaveLength(9);
  });

  it('shows figures in their units, ours in bold, declared copies starred, the reference named', () => {
    const [, , ours, peer] = tableRows(markdownTable(sample));
    expect(ours).toEqual([
      '20 MiB',
      '**ByteStore#viewAt**',
      'ours',
      '30 M ops/s',
      '33 ns',
      '50 ns',
      '100 MiB (+1 MiB)',
      '0 B / 0 B',
      '100,000× vs Buffer.concat',
    ]);
    expect(peer?.[7]).toBe('20 MiB*');
    expect(peer?.[8]).toBe('reference');
  });

  it('shows a failed case with its error and escapes pipes', () => {
    const table = markdownTable(sample);
    expect(table).toContain('odd <name> & "quotes" \\| pipe');
    const failed = tableRows(table)[4];
    expect(failed?.[3]).toBe('failed: exploded <here>');
    expect(failed?.[4]).toBe('—');
  });

  it('drops the group column when no case has a group', () => {
    const flat = report('flat', [
      caseResult({ name: 'a' }),
      caseResult({ name: 'b', reference: 'a' }),
    ]);
    expect(tableRows(markdownTable(flat))[0]?.[0]).toBe('Case');
  });

  it('marks isolated cases, with their baseline RSS', () => {
    const iso = report('iso', [
      caseResult({ name: 'a', isolated: true, role: 'baseline', baselineRssBytes: 80 * 2 ** 20 }),
    ]);
    const row = tableRows(markdownTable(iso))[2];
    expect(row?.[1]).toBe('baseline, own process');
    expect(row?.[5]).toBe('100 MiB (+1 MiB), baseline 80 MiB');
  });
});

describe('markdownReport', () => {
  it('holds the description, chart, table, case notes, targets and the machine', () => {
    const md = markdownReport(sample, { level: 2, chart: true });
    expect(md.startsWith('## view-slice\n')).toBe(true);
    expect(md).toContain('What view-slice compares.');
    expect(md).toContain('![view-slice: throughput per case](./view-slice.svg)');
    expect(md).toContain('- **ByteStore#viewAt** (ours): a zero-copy view');
    expect(md).toContain('- ✅ met: view ≤ 1 µs — 33 ns');
    expect(md).toContain('- ❌ missed: ours ≥ 2× peer — 0.5×');
    expect(md).toContain('Node v20.20.2');
    expect(md).toContain(
      'Full run: 300 ms warm-up, then 2000 ms measured per case in 10 alternating rounds',
    );
  });

  it('describes a single-shot scenario run', () => {
    const shot = {
      ...sample,
      mode: 'single-shot' as const,
      options: { ...sample.options, warmupMs: 0, timeMs: 0, rounds: 1 },
    };
    expect(markdownReport(shot)).toContain(
      'Full run, single-shot scenario: no warm-up, 1 measured run per case, each timed alone._',
    );
    expect(describeRun({ ...sample.options, rounds: 3, quick: true }, 'single-shot')).toBe(
      'Quick run (CI smoke: figures are indicative only), single-shot scenario: no warm-up, 3 measured runs per case, each timed alone, cases alternating',
    );
  });

  it('says when a run was quick', () => {
    const quick = { ...sample, options: { ...sample.options, quick: true } };
    expect(markdownReport(quick)).toContain('Quick run');
  });
});

describe('svgChart', () => {
  const svg = svgChart(sample);

  it('is well-formed XML with an svg root', () => {
    expect(XMLValidator.validate(svg)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as {
      svg: Record<string, unknown>;
    };
    expect(doc.svg['@_xmlns']).toBe('http://www.w3.org/2000/svg');
    expect(doc.svg['@_viewBox']).toMatch(/^0 0 920 \d+$/);
  });

  it('draws one bar per case, named by case', () => {
    const bars = [...svg.matchAll(/<rect class="bar" data-case="([^"]*)"/g)].map((m) => m[1]);
    expect(bars).toEqual([
      'ByteStore#viewAt',
      'Buffer.concat',
      'odd &lt;name&gt; &amp; &quot;quotes&quot; | pipe',
    ]);
  });

  it('labels values with units and ratios, groups with their reference and scale', () => {
    expect(svg).toContain('30 M ops/s · 100,000×');
    expect(svg).toContain('300 ops/s · reference');
    expect(svg).toContain('20 MiB · ratios vs Buffer.concat · log scale');
    expect(svg).toContain('failed: exploded &lt;here&gt;');
  });

  it('grows with the number of cases', () => {
    const one = svgChart(report('one', [caseResult({ name: 'a' })]));
    const height = (s: string) => Number(/height="(\d+)"/.exec(s)?.[1]);
    expect(height(svg)).toBeGreaterThan(height(one));
  });
});

describe('barScale', () => {
  it('is linear for close values and keeps every bar visible', () => {
    const scale = barScale([100, 50]);
    expect(scale.log).toBe(false);
    expect(scale.length(100)).toBe(2 * scale.length(50));
    expect(scale.length(0)).toBe(2);
  });

  it('turns logarithmic past the spread, ordered and bounded', () => {
    const scale = barScale([1, 10 * LOG_SCALE_SPREAD, 1e6]);
    expect(scale.log).toBe(true);
    const lengths = [1, 1000, 1e6].map(scale.length);
    expect(lengths[0]).toBeGreaterThan(2);
    expect(lengths[0]).toBeLessThan(lengths[1] as number);
    expect(lengths[2]).toBeCloseTo(380, 6);
  });
});

describe('format', () => {
  it('formats bytes, durations, throughput and ratios', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(6 * 2 ** 30)).toBe('6 GiB');
    expect(formatDuration(999)).toBe('999 ns');
    expect(formatDuration(1250)).toBe('1.25 µs');
    expect(formatDuration(12_345_678)).toBe('12.3 ms');
    expect(formatThroughput(23_423.4, 'MiB/s')).toBe('23,423 MiB/s');
    expect(formatThroughput(12_345, 'ops/s')).toBe('12.3 k ops/s');
    expect(formatRatio(0.01234)).toBe('0.0123×');
  });

  it('escapes table cells', () => {
    expect(cell('a|b\nc')).toBe('a\\|b c');
  });
});

describe('results files', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('writes JSON, markdown, SVG and raw samples that read back', () => {
    dir = mkdtempSync(join(tmpdir(), 'bench-results-'));
    const files = writeBenchmarkResults(dir, {
      report: sample,
      samples: { 'ByteStore#viewAt': [1, 2, 3] },
    });
    expect(files.map((f) => f.slice((dir as string).length + 1)).sort()).toEqual([
      'raw/view-slice.samples.json',
      'view-slice.json',
      'view-slice.md',
      'view-slice.svg',
    ]);
    const json = JSON.parse(readFileSync(join(dir, 'view-slice.json'), 'utf8')) as BenchmarkReport;
    expect(json).toEqual(sample);
    expect(Object.keys(json).sort()).toEqual(
      [
        'summary',
        'allTargetsMet',
        'bytesPerOp',
        'cases',
        'date',
        'description',
        'durationMs',
        'machine',
        'mode',
        'name',
        'options',
        'reference',
        'schema',
        'targets',
        'unit',
      ].sort(),
    );
    expect(readFileSync(join(dir, 'view-slice.md'), 'utf8').startsWith('# view-slice\n')).toBe(
      true,
    );
    expect(XMLValidator.validate(readFileSync(join(dir, 'view-slice.svg'), 'utf8'))).toBe(true);
  });

  it('indexes every report in registry order, with tables and charts', () => {
    dir = mkdtempSync(join(tmpdir(), 'bench-results-'));
    writeBenchmarkResults(dir, { report: sample, samples: {} });
    writeBenchmarkResults(dir, {
      report: report('alpha', [caseResult({ name: 'a' })]),
      samples: {},
    });
    writeFileSync(join(dir, 'not-a-report.json'), '{"hello": 1}');
    expect(readReports(dir, ['view-slice', 'alpha']).map((r) => r.name)).toEqual([
      'view-slice',
      'alpha',
    ]);
    expect(readReports(dir).map((r) => r.name)).toEqual(['alpha', 'view-slice']);
    const index = readFileSync(writeIndex(dir, ['view-slice', 'alpha']), 'utf8');
    expect(index.indexOf('## view-slice')).toBeLessThan(index.indexOf('## alpha'));
    expect(index).toContain('![view-slice: throughput per case](./view-slice.svg)');
    expect(index).toContain('![alpha: throughput per case](./alpha.svg)');
    expect(index).toContain(
      '| [view-slice](#view-slice) | view-slice in one line | 1 of 2 met | full, 2026-01-02 |',
    );
    expect(index).toContain(markdownTable(sample));
  });

  it('reads reports written before run modes and baselines existed', () => {
    dir = mkdtempSync(join(tmpdir(), 'bench-results-'));
    const { mode: _mode, ...old } = report('old', [caseResult({ name: 'a' })]);
    const { baselineRssBytes: _baseline, ...oldCase } = old.cases[0] as CaseResult;
    writeFileSync(join(dir, 'old.json'), JSON.stringify({ ...old, cases: [oldCase] }));
    const [read] = readReports(dir);
    expect(read?.mode).toBe('timed');
    expect(read?.cases[0]?.baselineRssBytes).toBeNull();
    expect(markdownTable(read as BenchmarkReport)).toContain('100 MiB (+1 MiB) |');
  });

  it('indexes nothing when there are no results', () => {
    expect(indexMarkdown([])).toContain('# Benchmark results');
    expect(readReports(join(tmpdir(), 'no-such-dir-for-bench'))).toEqual([]);
  });
});
