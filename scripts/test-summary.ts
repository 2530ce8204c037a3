/**
 * Adds up the JSON reports vitest wrote under CI (one per package) and
 * prints one closing line, `tests: N passed, N failed`, so a reader of the
 * CI log sees the whole suite's outcome at the end.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workspaceDirs } from '../vitest.shared.ts';

interface VitestJson {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
}

let passed = 0;
let failed = 0;
let skipped = 0;
const missing: string[] = [];
for (const dir of workspaceDirs()) {
  const file = join(dir, '.test-results', 'vitest.json');
  if (!existsSync(file)) {
    missing.push(dir);
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8')) as VitestJson;
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
}
if (missing.length > 0) console.log(`no vitest report in: ${missing.join(', ')}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
