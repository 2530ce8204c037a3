import { build } from 'tsup';
import { webBuild } from '../../tsup.config.ts';
import { PUBLIC_DIR } from '../server.ts';

let built: Promise<void> | undefined;

/** Builds the web page into dist/public once per test run, as `pnpm build` would. */
export function buildWebPage(): Promise<void> {
  built ??= build({ ...webBuild, outDir: PUBLIC_DIR, silent: true, config: false });
  return built;
}
