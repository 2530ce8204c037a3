import { join } from 'node:path';
import { build } from 'tsup';
import { webBuild } from '../../tsup.config.ts';
import { PUBLIC_DIR } from '../server.ts';

const APP = join(import.meta.dirname, '..', '..');
let built: Promise<void> | undefined;

/**
 * Builds the web pages into dist/public once per test run, as `pnpm build`
 * would. The config's paths are relative to the app; tests may run from the
 * repository root (the Node 24 run does), so they are made absolute.
 */
export function buildWebPage(): Promise<void> {
  const entries = Object.entries(webBuild.entry as Record<string, string>);
  built ??= build({
    ...webBuild,
    entry: Object.fromEntries(entries.map(([name, path]) => [name, join(APP, path)])),
    publicDir: join(APP, webBuild.publicDir as string),
    outDir: PUBLIC_DIR,
    silent: true,
    config: false,
  });
  return built;
}
