import type { Benchmark, BenchmarkDefinition } from './types';

const NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Problems in a definition: duplicate or unknown case names, a bad name, an isolated case without a module, a built runtime outside a child, a check outside a single-shot scenario. */
export function validateBenchmark(definition: Benchmark): string[] {
  const problems: string[] = [];
  const where = `benchmark '${definition.name}'`;
  if (!NAME.test(definition.name)) problems.push(`${where}: name must be kebab-case`);
  if (definition.cases.length === 0) problems.push(`${where}: has no cases`);
  if (!definition.summary || /\n/.test(definition.summary) || definition.summary.length > 100) {
    problems.push(`${where}: summary must be one line of at most 100 characters`);
  }
  const names = new Set<string>();
  for (const c of definition.cases) {
    if (names.has(c.name)) problems.push(`${where}: duplicate case '${c.name}'`);
    names.add(c.name);
  }
  const known = (name: string) => names.has(name);
  const isolated = (name: string) => definition.cases.some((c) => c.name === name && c.isolate);
  const runs = definition.singleShot?.runs;
  if (runs !== undefined && !(Number.isInteger(runs) && runs >= 1)) {
    problems.push(`${where}: singleShot.runs must be an integer >= 1, got ${runs}`);
  }
  if (!known(definition.reference)) {
    problems.push(`${where}: reference '${definition.reference}' is not a case`);
  }
  for (const c of definition.cases) {
    if (c.reference !== undefined && !known(c.reference)) {
      problems.push(`${where}: case '${c.name}' has unknown reference '${c.reference}'`);
    }
    if (c.check !== undefined && definition.singleShot === undefined) {
      problems.push(`${where}: case '${c.name}' has a check, which only single-shot scenarios run`);
    }
    if (c.isolate && definition.moduleUrl === undefined) {
      problems.push(`${where}: case '${c.name}' is isolated but the benchmark has no moduleUrl`);
    }
    if (c.runtime !== undefined && c.runtime !== 'sources' && c.runtime !== 'built') {
      problems.push(`${where}: case '${c.name}' has unknown runtime '${String(c.runtime)}'`);
    }
    if (c.runtime === 'built' && !c.isolate) {
      problems.push(
        `${where}: case '${c.name}' has runtime 'built', which only an isolated case's child process can have`,
      );
    }
    const unit = c.unit ?? definition.unit;
    const perOp = definition.bytesPerOp;
    // A per-run figure must be positive for full and quick runs alike.
    const bytes =
      c.bytesPerOp ??
      (typeof perOp === 'function'
        ? Math.min(perOp({ quick: false }), perOp({ quick: true }))
        : perOp);
    if (unit === 'MiB/s' && !(bytes > 0)) {
      problems.push(`${where}: case '${c.name}' is in MiB/s but moves no bytes per op`);
    }
  }
  for (const t of definition.targets ?? []) {
    if (!known(t.case)) problems.push(`${where}: target names unknown case '${t.case}'`);
    if (t.kind === 'ratio' && !known(t.vs))
      problems.push(`${where}: target names unknown case '${t.vs}'`);
    if (t.atLeast === undefined && t.atMost === undefined) {
      problems.push(`${where}: a target on '${t.case}' has neither atLeast nor atMost`);
    }
    if (t.metric === 'rssAboveBaselineBytes') {
      for (const name of t.kind === 'ratio' ? [t.case, t.vs] : [t.case]) {
        if (known(name) && !isolated(name)) {
          problems.push(
            `${where}: a target on the baseline RSS of '${name}' needs that case isolated (only a child has a baseline)`,
          );
        }
      }
    }
  }
  return problems;
}

/**
 * Declares a benchmark. Checks it at once (a broken definition is a
 * programming error) and erases the state type for the registry.
 *
 * @example
 * ```ts
 * export const sum = defineBenchmark({
 *   name: 'sum', description: '…', unit: 'ops/s', bytesPerOp: 0, reference: 'loop',
 *   setup: () => ({ xs: [1, 2, 3] }),
 *   cases: [{ name: 'loop', role: 'baseline', run: (s) => s.xs.reduce((a, b) => a + b) }],
 * });
 * ```
 */
export function defineBenchmark<S>(definition: BenchmarkDefinition<S>): Benchmark {
  const erased = definition as unknown as Benchmark;
  const problems = validateBenchmark(erased);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return erased;
}
