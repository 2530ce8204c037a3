import { formatBytes, formatDuration, formatRatio, formatThroughput } from './format';
import type { BenchmarkReport, CaseResult, RunMode, RunOptions } from './types';

/** Escapes text for a markdown table cell. */
export function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function copiesCell(c: CaseResult): string {
  if (c.copies === null) return '—';
  if (c.copies.source === 'declared') return `${formatBytes(c.copies.bytesCopiedPerOp)}*`;
  return `${formatBytes(c.copies.bytesCopiedPerOp)} / ${formatBytes(c.copies.bytesAllocatedPerOp ?? 0)}`;
}

function ratioCell(c: CaseResult): string {
  if (c.name === c.reference) return 'reference';
  if (c.ratio === null) return '—';
  return `${formatRatio(c.ratio)} vs ${c.reference}`;
}

function rssCell(c: CaseResult): string {
  if (c.peakRssBytes === null) return '—';
  const growth = c.rssGrowthBytes === null ? '' : ` (+${formatBytes(c.rssGrowthBytes)})`;
  const baseline = c.baselineRssBytes ?? null;
  const floor = baseline === null ? '' : `, baseline ${formatBytes(baseline)}`;
  return `${formatBytes(c.peakRssBytes)}${growth}${floor}`;
}

/** The results table: one row per case. */
export function markdownTable(report: BenchmarkReport): string {
  const grouped = report.cases.some((c) => c.group !== null);
  const head = [
    ...(grouped ? ['Group'] : []),
    'Case',
    'Role',
    'Throughput',
    'p50',
    'p99',
    'Peak RSS (growth)',
    'Copied / allocated per op',
    'Ratio',
  ];
  const align = [
    ...(grouped ? [':--'] : []),
    ':--',
    ':--',
    '--:',
    '--:',
    '--:',
    '--:',
    '--:',
    ':--',
  ];
  const rows = report.cases.map((c) => {
    const name = c.name;
    const measured = c.throughput !== null && c.perOpNs !== null;
    return [
      ...(grouped ? [c.group ?? ''] : []),
      c.role === 'ours' ? `**${name}**` : name,
      c.isolated
        ? `${c.role}, own process${c.runtime === 'built' ? ' (node, built packages)' : ''}`
        : c.role,
      measured
        ? formatThroughput(c.throughput as number, c.unit)
        : `failed: ${c.error ?? 'no samples'}`,
      measured ? formatDuration(c.perOpNs?.p50 as number) : '—',
      measured ? formatDuration(c.perOpNs?.p99 as number) : '—',
      rssCell(c),
      copiesCell(c),
      ratioCell(c),
    ];
  });
  return [head, align, ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
}

/** One line per target: met or missed, with the measured figure. */
export function markdownTargets(report: BenchmarkReport): string {
  return report.targets
    .map((t) => `- ${t.met ? '✅ met' : '❌ missed'}: ${t.label} — ${t.detail}`)
    .join('\n');
}

/** How the run was configured, in words. */
export function describeRun(options: RunOptions, mode: RunMode = 'timed'): string {
  const kind = options.quick ? 'Quick run (CI smoke: figures are indicative only)' : 'Full run';
  if (mode === 'single-shot') {
    const runs = `${options.rounds} measured run${options.rounds === 1 ? '' : 's'} per case`;
    return `${kind}, single-shot scenario: no warm-up, ${runs}, each timed alone${options.rounds > 1 ? ', cases alternating' : ''}`;
  }
  return `${kind}: ${options.warmupMs} ms warm-up, then ${options.timeMs} ms measured per case in ${options.rounds} alternating rounds`;
}

/** Where and when the run happened, in one line. */
export function describeMachine(report: BenchmarkReport): string {
  const m = report.machine;
  return `Node ${m.node} (V8 ${m.v8}), ${m.platform} ${m.arch}, ${m.cpu} × ${m.cores}, ${formatBytes(m.totalMemoryBytes)} RAM, ${report.date.slice(0, 10)}`;
}

/** The whole section for one benchmark: heading, description, table, notes, targets. */
export function markdownReport(
  report: BenchmarkReport,
  options: { level?: number; chart?: boolean } = {},
): string {
  const hashes = '#'.repeat(options.level ?? 1);
  const parts = [`${hashes} ${report.name}`, report.description];
  if (options.chart) parts.push(`![${report.name}: throughput per case](./${report.name}.svg)`);
  parts.push(markdownTable(report));
  const note =
    'Throughput is total operations over total timed time; p50/p99 are percentiles of the per-operation time (per sample: a batch of operations lasting at least ' +
    `${formatDuration(report.options.minSampleNs)}, or one operation when slower). ` +
    "Peak RSS is the process RSS sampled while the case ran (growth: its rise within a slice); for cases run in their own process it is that process's high-water mark, and baseline is that process's RSS before the case's setup (runtime, loader and modules). " +
    "Copied / allocated per op come from buffer-view's counters for our cases; * marks bytes a peer copies by construction of its API.";
  const described = report.cases.filter((c) => c.description !== null);
  if (described.length > 0) {
    parts.push(described.map((c) => `- **${c.name}** (${c.role}): ${c.description}`).join('\n'));
  }
  parts.push(`_${note}_`);
  if (report.targets.length > 0) parts.push(`Targets:\n\n${markdownTargets(report)}`);
  parts.push(`_${describeMachine(report)}. ${describeRun(report.options, report.mode)}._`);
  return `${parts.join('\n\n')}\n`;
}

/** results/README.md: every benchmark's table and chart, for the docs site. */
export function indexMarkdown(reports: readonly BenchmarkReport[]): string {
  const lines = [
    '# Benchmark results',
    '',
    'Generated by `pnpm bench` (see [bench/README.md](../README.md)); do not edit by hand. ' +
      'Each benchmark runs our packages side by side with the peers users would pick instead, ' +
      'in one process run, alternating between cases after a warm-up. Ratios compare each case ' +
      'with the reference named in its row (higher is faster); figures only compare within one machine.',
    '',
    '| Benchmark | What | Targets | Run |',
    '| :-- | :-- | :-- | :-- |',
    ...reports.map((r) => {
      const met = r.targets.filter((t) => t.met).length;
      const targets = r.targets.length === 0 ? '—' : `${met} of ${r.targets.length} met`;
      return `| [${cell(r.name)}](#${r.name}) | ${cell(r.summary)} | ${targets} | ${r.options.quick ? 'quick' : 'full'}, ${r.date.slice(0, 10)} |`;
    }),
    '',
  ];
  for (const report of reports) {
    lines.push(markdownReport(report, { level: 2, chart: true }));
    lines.push(`Raw figures: [${report.name}.json](./${report.name}.json).`, '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}
