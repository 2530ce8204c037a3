import { formatRatio, formatThroughput } from './format';
import type { BenchmarkReport, CaseResult, Role } from './types';

/** Escapes text for XML content and attribute values. */
export function xml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

export const ROLE_COLORS: Record<Role, string> = {
  ours: '#2563eb',
  peer: '#ea580c',
  baseline: '#9ca3af',
};

const WIDTH = 920;
const LABEL_RIGHT = 292;
const BAR_X = 300;
const BAR_MAX = 380;
const ROW = 26;
const BAR_H = 16;
const MAX_LABEL = 44;
const FONT = 'font-family="system-ui, -apple-system, \'Segoe UI\', Helvetica, Arial, sans-serif"';

/** Above this max/min spread a group is drawn on a log scale so the slow bars stay visible. */
export const LOG_SCALE_SPREAD = 30;

interface Group {
  name: string | null;
  cases: CaseResult[];
}

function groupsOf(cases: readonly CaseResult[]): Group[] {
  const groups: Group[] = [];
  for (const c of cases) {
    const existing = groups.find((g) => g.name === c.group);
    if (existing) existing.cases.push(c);
    else groups.push({ name: c.group, cases: [c] });
  }
  return groups;
}

/** Bar length for each value: linear, or log when values span more than `LOG_SCALE_SPREAD`×. */
export function barScale(values: readonly number[]): {
  log: boolean;
  length: (v: number) => number;
} {
  const positive = values.filter((v) => v > 0);
  const max = Math.max(...positive, 0);
  const min = Math.min(...positive, max);
  if (max === 0) return { log: false, length: () => 0 };
  if (max / min <= LOG_SCALE_SPREAD) {
    return { log: false, length: (v) => Math.max(2, (BAR_MAX * v) / max) };
  }
  const floor = min / 4;
  const span = Math.log10(max / floor);
  return {
    log: true,
    length: (v) => Math.max(2, (BAR_MAX * Math.log10(Math.max(v, floor) / floor)) / span),
  };
}

function truncate(text: string): string {
  return text.length > MAX_LABEL ? `${text.slice(0, MAX_LABEL - 1)}…` : text;
}

/**
 * A horizontal bar chart of throughput per case, hand-written SVG: one bar
 * per case coloured by role, the value and its ratio to the reference beside
 * it, cases grouped (each group on its own scale, log when values span
 * orders of magnitude).
 */
export function svgChart(report: BenchmarkReport): string {
  const out: string[] = [];
  let y = 30;
  const title = `${report.name}: throughput per case (higher is better)`;
  const sub = `Node ${report.machine.node} on ${report.machine.cpu} × ${report.machine.cores} · ${report.date.slice(0, 10)}${report.options.quick ? ' · quick run, indicative only' : ''}`;
  out.push(
    `<text x="16" y="${y}" font-size="16" font-weight="700" fill="#111827">${xml(title)}</text>`,
  );
  y += 20;
  out.push(`<text x="16" y="${y}" font-size="12" fill="#6b7280">${xml(sub)}</text>`);
  y += 22;
  let lx = 16;
  for (const role of ['ours', 'peer', 'baseline'] as const) {
    out.push(
      `<rect x="${lx}" y="${y - 10}" width="12" height="12" rx="2" fill="${ROLE_COLORS[role]}"/>`,
    );
    out.push(`<text x="${lx + 18}" y="${y}" font-size="12" fill="#374151">${role}</text>`);
    lx += 90;
  }
  y += 22;
  for (const group of groupsOf(report.cases)) {
    const scale = barScale(group.cases.map((c) => c.throughput ?? 0));
    const refs = [...new Set(group.cases.map((c) => c.reference))];
    const head = [
      group.name,
      refs.length === 1 ? `ratios vs ${refs[0]}` : null,
      scale.log ? 'log scale' : null,
    ].filter((s) => s !== null);
    out.push(
      `<text x="16" y="${y + 4}" font-size="12" font-weight="700" fill="#111827">${xml(head.join(' · '))}</text>`,
    );
    out.push(
      `<line x1="${BAR_X}" y1="${y + 8}" x2="${BAR_X}" y2="${y + 8 + group.cases.length * ROW}" stroke="#d1d5db"/>`,
    );
    y += 12;
    for (const c of group.cases) {
      const label = truncate(c.name);
      const weight = c.role === 'ours' ? ' font-weight="600"' : '';
      out.push(
        `<text x="${LABEL_RIGHT}" y="${y + 12}" font-size="12" text-anchor="end" fill="#111827"${weight}>${xml(label)}</text>`,
      );
      if (c.throughput === null) {
        out.push(
          `<rect class="bar" data-case="${xml(c.name)}" x="${BAR_X}" y="${y}" width="0" height="${BAR_H}" fill="none"/>`,
        );
        out.push(
          `<text x="${BAR_X + 8}" y="${y + 12}" font-size="12" fill="#b91c1c">failed: ${xml(truncate(c.error ?? 'no samples'))}</text>`,
        );
        y += ROW;
        continue;
      }
      const len = scale.length(c.throughput).toFixed(1);
      const value = formatThroughput(c.throughput, c.unit);
      const ratio =
        c.name === c.reference
          ? 'reference'
          : c.ratio === null
            ? ''
            : `${formatRatio(c.ratio)}${refs.length === 1 ? '' : ` vs ${c.reference}`}`;
      const text = ratio ? `${value} · ${ratio}` : value;
      out.push(
        `<rect class="bar" data-case="${xml(c.name)}" x="${BAR_X}" y="${y}" width="${len}" height="${BAR_H}" rx="2" fill="${ROLE_COLORS[c.role]}"><title>${xml(`${c.name} (${c.role}): ${text}`)}</title></rect>`,
      );
      out.push(
        `<text x="${(BAR_X + Number(len) + 8).toFixed(1)}" y="${y + 12}" font-size="12" fill="#374151">${xml(text)}</text>`,
      );
      y += ROW;
    }
    y += 14;
  }
  out.push(
    `<text x="16" y="${y}" font-size="11" fill="#6b7280">${xml("Ratio = throughput ÷ the reference case's throughput, measured in the same run. Bars of a group share one scale.")}</text>`,
  );
  y += 16;
  const height = y;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-labelledby="chart-title" ${FONT}>`,
    `<title id="chart-title">${xml(title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
