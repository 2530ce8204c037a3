import type { Benchmark, BenchmarkDefinition } from './types';

const NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Problems in a definition: duplicate or unknown case names, a bad name, an isolated case without a module. */
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
  if (!known(definition.reference)) {
    problems.push(`${where}: reference '${definition.reference}' is not a case`);
  }
  for (const c of definition.cases) {
    if (c.reference !== undefined && !known(c.reference)) {
      problems.push(`${where}: case '${c.name}' has unknown reference '${c.reference}'`);
    }
    if (c.isolate && definition.moduleUrl === undefined) {
      problems.push(`${where}: case '${c.name}' is isolated but the benchmark has no moduleUrl`);
    }
    const unit = c.unit ?? definition.unit;
    const bytes = c.bytesPerOp ?? definition.bytesPerOp;
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
