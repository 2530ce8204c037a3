import { execFileSync, spawnSync } from 'node:child_process';

/** The command a Debian package provides, where it differs from the package's name. */
const COMMAND_OF: Record<string, string> = { 'nginx-light': 'nginx', 'nginx-full': 'nginx' };

/** Whether `command` is on PATH. */
export function hasCommand(command: string): boolean {
  return (
    spawnSync('sh', ['-c', `command -v "${command.replace(/"/g, '')}"`], { stdio: 'ignore' })
      .status === 0
  );
}

/** The packages among `packages` whose command is missing. */
export function missingPackages(
  packages: readonly string[],
  has: (command: string) => boolean = hasCommand,
): string[] {
  return [...new Set(packages)].filter((p) => !has(COMMAND_OF[p] ?? p));
}

/**
 * Installs the Debian packages whose command is missing (servers and load
 * tools that peer benchmarks drive: nginx, wrk, ffmpeg), with apt-get, as
 * root or through sudo. Does nothing when all are present.
 */
export function ensureDebianPackages(
  packages: readonly string[],
  log: (line: string) => void,
): void {
  const missing = missingPackages(packages);
  if (missing.length === 0) return;
  log(`installing Debian packages: ${missing.join(' ')}`);
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (args: string[]) => {
    const [cmd, ...rest] = [...sudo, ...args] as [string, ...string[]];
    execFileSync(cmd, rest, {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  };
  run(['apt-get', 'update', '-qq']);
  run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing]);
}
