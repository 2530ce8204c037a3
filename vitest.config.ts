import { defineConfig } from 'vitest/config';
import { packageProjects, workspaceDirs } from './vitest.shared.ts';

// One run over the whole workspace: `vitest run --project 'buffer-view:*'`
// narrows it to one package, `--project '*:node'` to the Node projects.
export default defineConfig({
  test: {
    projects: workspaceDirs().flatMap(packageProjects),
  },
});
