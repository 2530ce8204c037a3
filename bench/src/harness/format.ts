import type { Metric, Unit } from './types';

/** `value` with three significant digits, thousands separated, without exponent notation. */
export function sig3(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const abs = Math.abs(value);
  const digits =
    abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : Math.min(6, 2 - Math.floor(Math.log10(abs)));
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Bytes in binary units: `0 B`, `1 KiB`, `20 MiB`, `1.23 GiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : sig3(value)} ${BYTE_UNITS[unit]}`;
}

/** A duration given in nanoseconds: `180 ns`, `1.25 µs`, `12.3 ms`, `1.2 s`. */
export function formatDuration(ns: number): string {
  const abs = Math.abs(ns);
  if (abs < 1e3) return `${sig3(ns)} ns`;
  if (abs < 1e6) return `${sig3(ns / 1e3)} µs`;
  if (abs < 1e9) return `${sig3(ns / 1e6)} ms`;
  return `${sig3(ns / 1e9)} s`;
}

/** Throughput in its unit: `12,345 MiB/s`, `5.23 M ops/s`. */
export function formatThroughput(value: number, unit: Unit): string {
  if (unit === 'MiB/s') return `${sig3(value)} MiB/s`;
  if (value >= 1e9) return `${sig3(value / 1e9)} G ops/s`;
  if (value >= 1e6) return `${sig3(value / 1e6)} M ops/s`;
  if (value >= 1e4) return `${sig3(value / 1e3)} k ops/s`;
  return `${sig3(value)} ops/s`;
}

/** A ratio: `1.25×`, `12,345×`, `0.0123×`. */
export function formatRatio(ratio: number): string {
  return `${sig3(ratio)}×`;
}

/** A metric's value in its natural unit. */
export function formatMetric(metric: Metric, value: number, unit: Unit): string {
  switch (metric) {
    case 'throughput':
      return formatThroughput(value, unit);
    case 'p50Ns':
    case 'p99Ns':
      return formatDuration(value);
    default:
      return formatBytes(value);
  }
}

/** What a metric is called in prose. */
export const METRIC_NAMES: Record<Metric, string> = {
  throughput: 'throughput',
  p50Ns: 'p50',
  p99Ns: 'p99',
  peakRssBytes: 'peak RSS',
  rssGrowthBytes: 'RSS growth',
  rssAboveBaselineBytes: 'peak RSS above baseline',
  bytesCopiedPerOp: 'bytes copied/op',
};
