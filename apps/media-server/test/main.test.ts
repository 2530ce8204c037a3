import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const APP = join(import.meta.dirname, '..');

/** Runs src/main.ts the way `pnpm dev` does, on workspace sources. */
function runMain(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(
    process.execPath,
    ['--conditions=@streaming-primitives/source', '--import', 'tsx', 'src/main.ts', ...args],
    {
      cwd: APP,
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

function logLines(child: ChildProcess): AsyncIterable<string> {
  if (child.stdout === null) throw new Error('no stdout');
  return createInterface({ input: child.stdout });
}

function exit(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

describe('the media-server process', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'media-main-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('starts on an empty data directory with a generated sample, logs JSON, and stops cleanly on SIGTERM', async () => {
    const child = runMain(['--port', '0', '--data-dir', dir]);
    const exited = exit(child);
    let url = '';
    const records: Record<string, unknown>[] = [];
    for await (const line of logLines(child)) {
      const record = JSON.parse(line) as Record<string, unknown>;
      records.push(record);
      if (record.msg === 'media server listening') {
        url = String(record.url);
        break;
      }
    }
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(records.some((r) => r.msg === 'generated a sample video with ffmpeg')).toBe(true);
    const videos = (await (await fetch(`${url}/api/videos`)).json()) as {
      id: string;
      duration: number;
    }[];
    expect(videos).toHaveLength(1);
    expect(videos[0]?.id).toBe('sample');
    expect(videos[0]?.duration).toBeCloseTo(30, 0);
    const head = await fetch(`${url}/videos/sample`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    child.kill('SIGTERM');
    expect((await exited).code).toBe(0);
  });

  it('lets an in-flight download finish after SIGTERM before exiting', async () => {
    const child = runMain(['--port', '0', '--data-dir', dir, '--no-sample'], {
      READ_CHUNK_BYTES: '16KiB',
    });
    const exited = exit(child);
    let url = '';
    for await (const line of logLines(child)) {
      const record = JSON.parse(line) as { msg: string; url?: string };
      if (record.msg === 'media server listening') {
        url = record.url ?? '';
        break;
      }
    }
    const { port } = new URL(url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write('GET /videos/sample HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    const chunks: Buffer[] = [];
    const ended = new Promise<void>((resolve) => socket.on('end', resolve));
    await new Promise<void>((resolve) =>
      socket.once('data', (chunk: Buffer) => {
        chunks.push(chunk);
        socket.pause();
        resolve();
      }),
    );
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.resume();
    await ended;
    const response = Buffer.concat(chunks).toString('latin1');
    const headEnd = response.indexOf('\r\n\r\n');
    const length = Number(/content-length: (\d+)/i.exec(response.slice(0, headEnd))?.[1]);
    expect(response.startsWith('HTTP/1.1 200')).toBe(true);
    expect(response.length - headEnd - 4).toBe(length);
    expect((await exited).code).toBe(0);
  });

  it('exits with status 2 and names every bad setting', async () => {
    const child = runMain(['--port', 'x'], { CACHE_BYTES: 'huge' });
    const { code, stderr } = await exit(child);
    expect(code).toBe(2);
    expect(stderr).toContain('PORT="x"');
    expect(stderr).toContain('CACHE_BYTES="huge"');
  });

  it('says so clearly when the port is taken', async () => {
    const first = runMain(['--port', '0', '--data-dir', dir, '--no-sample']);
    let url = '';
    for await (const line of logLines(first)) {
      const record = JSON.parse(line) as { msg: string; url?: string };
      if (record.msg === 'media server listening') {
        url = record.url ?? '';
        break;
      }
    }
    const port = new URL(url).port;
    const second = runMain(['--port', port, '--data-dir', dir, '--no-sample']);
    let text = '';
    second.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    const { code } = await exit(second);
    expect(code).toBe(1);
    expect(text).toContain(`cannot listen on 127.0.0.1:${port} (EADDRINUSE)`);
    first.kill('SIGTERM');
    await exit(first);
  });
});
