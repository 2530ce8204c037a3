import { defineConfig, type Options } from 'tsup';

/** The server: npm and workspace dependencies stay external (tsup's default for dependencies). */
export const serverBuild: Options = {
  entry: { main: 'src/main.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  sourcemap: true,
};

/** The web page: one browser bundle plus the static files next to it. */
export const webBuild: Options = {
  entry: { app: 'src/web/app.ts', upload: 'src/web/upload.ts', live: 'src/web/live.ts' },
  outDir: 'dist/public',
  format: ['esm'],
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  minify: true,
  publicDir: 'src/web/public',
  // A browser cannot import packages: whatever a page uses goes into its one file (the server
  // serves an allowlist of page files, so no shared chunks either). Workspace packages come from
  // their sources, so a page never bundles a stale dist.
  noExternal: [/./],
  splitting: false,
  esbuildOptions(options) {
    options.conditions = ['@streaming-primitives/source'];
  },
};

export default defineConfig([serverBuild, webBuild]);
