import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { indexMarkdown, markdownReport } from './report-markdown';
import { svgChart } from './report-svg';
import type { RunOutcome } from './runner';
import type { BenchmarkReport } from './types';

/**
 * Writes `<name>.json`, `<name>.md`, `<name>.svg` and `raw/<name>.samples.json`
 * into `dir`; returns the paths written.
 */
export function writeBenchmarkResults(dir: string, outcome: RunOutcome): string[] {
  const { report } = outcome;
  mkdirSync(join(dir, 'raw'), { recursive: true });
  const files: [string, string][] = [
    [join(dir, `${report.name}.json`), `${JSON.stringify(report, null, 2)}\n`],
    [join(dir, `${report.name}.md`), markdownReport(report, { level: 1, chart: true })],
    [join(dir, `${report.name}.svg`), svgChart(report)],
    [join(dir, 'raw', `${report.name}.samples.json`), `${JSON.stringify(outcome.samples)}\n`],
  ];
  for (const [path, text] of files) writeFileSync(path, text);
  return files.map(([path]) => path);
}

function isReport(value: unknown): value is BenchmarkReport {
  const v = value as Partial<BenchmarkReport> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.schema === 1 &&
    typeof v.name === 'string' &&
    Array.isArray(v.cases)
  );
}

/** Every report in `dir`, in `order` (registry order) and then by name. */
export function readReports(dir: string, order: readonly string[] = []): BenchmarkReport[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const reports: BenchmarkReport[] = [];
  for (const file of names) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      // Reports written before `summary`, `mode` and baselines existed still index.
      if (isReport(parsed)) {
        reports.push({
          ...parsed,
          summary: parsed.summary ?? '',
          mode: parsed.mode ?? 'timed',
          cases: parsed.cases.map((c) => ({ ...c, baselineRssBytes: c.baselineRssBytes ?? null })),
        });
      }
    } catch {
      // Not one of ours: skip it.
    }
  }
  const rank = (name: string) => {
    const i = order.indexOf(name);
    return i === -1 ? order.length : i;
  };
  return reports.sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
}

/** Rewrites `dir/README.md` from every report in `dir`; returns its path. */
export function writeIndex(dir: string, order: readonly string[] = []): string {
  const path = join(dir, 'README.md');
  writeFileSync(path, indexMarkdown(readReports(dir, order)));
  return path;
}
