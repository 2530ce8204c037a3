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
  entry: { app: 'src/web/app.ts' },
  outDir: 'dist/public',
  format: ['esm'],
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  minify: true,
  publicDir: 'src/web/public',
};

export default defineConfig([serverBuild, webBuild]);
