/**
 * The `chunked-upload` executable, run as a real process against a real
 * `@tus/server`. It runs from source with Node's own `--import tsx` loader
 * (not the `tsx` CLI, which runs the script in a child process: SIGKILL to
 * the tsx parent would orphan a child that keeps uploading).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CountingTusServer, startCountingTusServer } from '../test/counting-tus-server';

const MiB = 2 ** 20;
const PACKAGE = join(import.meta.dirname, '..');
const CLI = join(import.meta.dirname, 'cli.ts');

let dir: string;
let running: CountingTusServer | undefined;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chunked-upload-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await running?.close();
  running = undefined;
});

async function serve(): Promise<CountingTusServer> {
  running = await startCountingTusServer();
  return running;
}

async function makeFile(name: string, size: number): Promise<{ path: string; sha256: string }> {
  const bytes = randomBytes(size);
  const path = join(dir, name);
  await writeFile(path, bytes);
  return { path, sha256: createHash('sha256').update(bytes).digest('hex') };
}

interface Run {
  child: ChildProcess;
  /** stdout and stderr so far. */
  readonly stdout: string;
  readonly stderr: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(
    process.execPath,
    ['--conditions=@streaming-primitives/source', '--import', 'tsx', CLI, ...args],
    { cwd: PACKAGE, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exit,
  };
}

/** Resolves when the server stalls at its offset, failing if the CLI exits first. */
async function stalled(stall: Promise<void>, proc: Run): Promise<void> {
  await Promise.race([
    stall,
    proc.exit.then(() => {
      throw new Error(`the CLI exited before the server stalled:\n${proc.stderr}`);
    }),
  ]);
}

describe('chunked-upload', () => {
  it('resumes after SIGKILL without the server receiving any byte twice', async () => {
    const size = 64 * MiB;
    const file = await makeFile('big.mp4', size);
    const server = await serve();
    const stateDir = join(dir, 'state-kill');
    const args = [file.path, server.endpoint, '--chunk-size', '1MiB', '--state-dir', stateDir];
    // In the middle of the ninth chunk's PATCH: the CLI is blocked sending its body.
    const killAt = 8 * MiB + 300 * 1024;
    const stall = server.stallAt(killAt);

    const first = run(args);
    await stalled(stall, first);
    first.child.kill('SIGKILL');
    expect((await first.exit).signal).toBe('SIGKILL');
    await server.idle();
    const storedAtKill = await server.storedSize();
    expect(storedAtKill).toBe(killAt);
    expect(await readdir(stateDir)).toHaveLength(1);
    const firstRunRequests = server.requests.length;

    const second = run(args);
    const { code } = await second.exit;
    expect(second.stderr).toContain(`resuming at`);
    expect(second.stderr).toContain(`(${storedAtKill} of ${size} bytes already on the server)`);
    expect(code).toBe(0);

    // Every byte the store accepted, over both runs and every request: exactly the file.
    expect(server.bytesStored).toBe(size);
    const ids = await server.uploads();
    expect(ids).toHaveLength(1);
    expect(await server.sha256(ids[0] as string)).toBe(file.sha256);
    expect(second.stdout.trim()).toBe(`${server.endpoint}${ids[0]}`);
    // The second run created nothing and sent exactly the missing range, in order.
    const again = server.requests.slice(firstRunRequests);
    expect(again.filter((r) => r.method === 'POST')).toEqual([]);
    expect(server.requests.filter((r) => r.status === 409)).toEqual([]);
    const patches = again.filter((r) => r.method === 'PATCH');
    let at = storedAtKill;
    for (const patch of patches) {
      expect(patch.uploadOffset).toBe(at);
      at += patch.contentLength ?? 0;
    }
    expect(at).toBe(size);
    expect(await readdir(stateDir)).toEqual([]);
    console.info(
      `crash test: killed at ${storedAtKill} of ${size} bytes stored; second run sent ${size - storedAtKill} bytes in ${patches.length} PATCHes; store received ${server.bytesStored} bytes in total`,
    );
  });

  it('exits 130 on SIGINT, keeps the state, says how to resume, and a re-run (--json) does', async () => {
    const size = 16 * MiB;
    const file = await makeFile('interrupted.mov', size);
    const server = await serve();
    const stateDir = join(dir, 'state-int');
    const args = [file.path, server.endpoint, '-c', '512KiB', '--state-dir', stateDir];
    const stall = server.stallAt(2 * MiB + 1000);

    const first = run(args);
    await stalled(stall, first);
    first.child.kill('SIGINT');
    const { code } = await first.exit;
    expect(first.stderr).toContain('interrupted');
    expect(first.stderr).toContain('run the same command again to resume');
    expect(first.stderr).toContain(stateDir);
    expect(code).toBe(130);
    expect(await readdir(stateDir)).toHaveLength(1);
    await server.idle();
    const stored = await server.storedSize();
    expect(stored).toBe(2 * MiB + 1000);

    const second = run([...args, '--json']);
    expect((await second.exit).code).toBe(0);
    const lines = second.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ type: 'start', size, protocol: 'tus' });
    expect(lines.find((l) => l.type === 'resumed')).toEqual({
      type: 'resumed',
      bytes: stored,
      total: size,
    });
    const progress = lines.filter((l) => l.type === 'progress');
    expect(progress.length).toBeGreaterThan(1);
    const acked = progress.map((p) => p.bytesAcknowledged as number);
    expect(acked).toEqual([...acked].sort((a, b) => a - b));
    expect(lines.at(-1)).toMatchObject({ type: 'complete', bytes: size, resumedFrom: stored });
    expect(second.stderr).toBe('');
    expect(server.bytesStored).toBe(size);
    const ids = await server.uploads();
    expect(ids).toHaveLength(1);
    expect(await server.sha256(ids[0] as string)).toBe(file.sha256);
  });

  it('stops the same clean way on SIGTERM, exiting 143', async () => {
    const file = await makeFile('terminated.mp4', 4 * MiB);
    const server = await serve();
    const stateDir = join(dir, 'state-term');
    const stall = server.stallAt(MiB + 1);
    const proc = run([file.path, server.endpoint, '-c', '1MiB', '--state-dir', stateDir]);
    await stalled(stall, proc);
    proc.child.kill('SIGTERM');
    expect((await proc.exit).code).toBe(143);
    expect(proc.stderr).toContain('run the same command again to resume');
    expect(await readdir(stateDir)).toHaveLength(1);
  });

  it('exits 2 with a clear message on bad arguments', async () => {
    const file = await makeFile('small.bin', 1000);
    const none = run([]);
    expect((await none.exit).code).toBe(2);
    expect(none.stderr).toContain('expected <file> and <url>');
    expect(none.stderr).toContain('--help');

    const badSize = run([file.path, 'http://127.0.0.1:1/files/', '--chunk-size', '8XB']);
    expect((await badSize.exit).code).toBe(2);
    expect(badSize.stderr).toContain('--chunk-size "8XB" is not a size');
    expect(badSize.stdout).toBe('');
  });

  it('exits 1 with the typed error code when the server is unreachable', async () => {
    const file = await makeFile('unreachable.bin', 1000);
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/files/`;
    const human = run([file.path, url, '--retries', '0', '--state-dir', join(dir, 'state-u')]);
    expect((await human.exit).code).toBe(1);
    expect(human.stderr).toContain('upload failed [UPLOAD_RETRIES_EXHAUSTED]');
    expect(human.stderr).toContain('caused by [UPLOAD_NETWORK]');

    const json = run([file.path, url, '--retries', '0', '--json', '--state-dir', join(dir, 's')]);
    expect((await json.exit).code).toBe(1);
    const last = JSON.parse(json.stdout.trim().split('\n').at(-1) as string);
    expect(last).toMatchObject({ type: 'error', code: 'UPLOAD_RETRIES_EXHAUSTED' });
    expect(last.causes[0].code).toBe('UPLOAD_NETWORK');
  });
});

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
