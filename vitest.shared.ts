import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { playwright } from '@vitest/browser-playwright';
import { defineConfig, type TestProjectConfiguration, type ViteUserConfig } from 'vitest/config';

/** The export condition under which workspace packages point at their TypeScript sources. */
export const SOURCE_CONDITION = '@streaming-primitives/source';

const ROOT = import.meta.dirname;

/** Where Debian installs Chromium; Playwright's own browser download cannot run here. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Every workspace folder that holds a package.json. */
export function workspaceDirs(): string[] {
  const dirs: string[] = [];
  for (const group of ['packages', 'apps']) {
    const base = join(ROOT, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      if (existsSync(join(base, name, 'package.json'))) dirs.push(join(base, name));
    }
  }
  if (existsSync(join(ROOT, 'bench', 'package.json'))) dirs.push(join(ROOT, 'bench'));
  return dirs;
}

type ExportEntry = string | { [condition: string]: ExportEntry };

/**
 * Aliases every workspace package's public subpaths to their sources, read from
 * the source condition in each exports map, so tests never need a prior build.
 */
export function sourceAliases(): { find: RegExp; replacement: string }[] {
  const aliases: { find: RegExp; replacement: string }[] = [];
  for (const dir of workspaceDirs()) {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      name: string;
      exports?: Record<string, ExportEntry>;
    };
    for (const [subpath, entry] of Object.entries(pkg.exports ?? {})) {
      if (typeof entry !== 'object' || typeof entry[SOURCE_CONDITION] !== 'string') continue;
      const specifier = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
      const escaped = specifier.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      aliases.push({
        find: new RegExp(`^${escaped}$`),
        replacement: resolve(dir, entry[SOURCE_CONDITION] as string),
      });
    }
  }
  return aliases;
}

/** Files that must run in a real browser: `*.browser.test.ts`. */
const BROWSER_TESTS = ['src/**/*.browser.test.ts', 'test/**/*.browser.test.ts'];

/**
 * The test projects of one workspace package: `<name>:node` for everything,
 * and `<name>:browser` in headless Chromium when the package has browser tests.
 */
export function packageProjects(dir: string): TestProjectConfiguration[] {
  const name = basename(dir);
  const alias = sourceAliases();
  const projects: TestProjectConfiguration[] = [
    {
      resolve: { alias },
      test: {
        name: `${name}:node`,
        root: dir,
        include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
        exclude: [...BROWSER_TESTS, '**/node_modules/**', 'test/entries/**'],
        environment: 'node',
        typecheck: { enabled: true, include: ['src/**/*.test-d.ts', 'test/**/*.test-d.ts'] },
        testTimeout: 60_000,
        hookTimeout: 60_000,
      },
    },
  ];
  if (hasBrowserTests(dir)) {
    // Servers a browser test talks to (a tus server, say) start in Node here and
    // hand their URLs to the page through vitest's provide/inject.
    const browserSetup = join(dir, 'test', 'browser-setup.ts');
    projects.push({
      resolve: { alias },
      test: {
        name: `${name}:browser`,
        root: dir,
        include: BROWSER_TESTS,
        ...(existsSync(browserSetup) ? { globalSetup: [browserSetup] } : {}),
        testTimeout: 60_000,
        browser: {
          enabled: true,
          headless: true,
          screenshotFailures: false,
          provider: playwright({
            launchOptions: {
              executablePath: CHROMIUM_PATH,
              // Without these, Chromium tries to reach Google's hosts at start
              // and this machine's closed network refuses it.
              args: [
                '--no-sandbox',
                '--disable-gpu',
                '--disable-quic',
                '--no-first-run',
                '--disable-background-networking',
                '--disable-component-update',
                '--disable-sync',
                '--disable-dev-shm-usage',
              ],
            },
          }),
          instances: [{ browser: 'chromium' }],
        },
      },
    });
  }
  return projects;
}

function hasBrowserTests(dir: string): boolean {
  const walk = (folder: string): boolean => {
    if (!existsSync(folder)) return false;
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'dist') continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory() ? walk(path) : entry.name.endsWith('.browser.test.ts')) return true;
    }
    return false;
  };
  return walk(join(dir, 'src')) || walk(join(dir, 'test'));
}

/**
 * A package's whole vitest config: its projects, plus a JSON report under CI
 * that `scripts/test-summary.ts` adds up into one closing line.
 */
export function packageTestConfig(dir: string): ViteUserConfig {
  return defineConfig({
    test: {
      projects: packageProjects(dir),
      reporters: process.env.CI
        ? ['default', ['json', { outputFile: join(dir, '.test-results', 'vitest.json') }]]
        : ['default'],
    },
  });
}
