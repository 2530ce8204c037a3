import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStateStore } from './file-state-store.node.ts';
import type { UploadState } from './state-store';

const REPO_ROOT = join(import.meta.dirname, '..', '..', '..', '..');
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-state-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function state(fingerprint: string, fill = '', size: number | null = 1000): UploadState {
  const out: UploadState = {
    version: 1,
    fingerprint,
    protocol: 'tus',
    size: size ?? undefined,
    chunkSize: 8 * 2 ** 20,
    session: { v: 1, mode: 'core', url: 'http://127.0.0.1/files/abc', expires: null, fill },
    createdAt: 1,
    updatedAt: 2,
  };
  return out;
}

describe('FileStateStore', () => {
  it('round-trips state, one JSON file per fingerprint, and deletes it', async () => {
    const store = new FileStateStore({ directory: join(dir, 'nested', 'state') });
    expect(await store.get('abc')).toBeUndefined();
    await store.set('abc', state('abc'));
    await store.set('def', state('def', '', null));
    expect(await store.get('abc')).toEqual(state('abc'));
    const noSize = await store.get('def');
    expect(noSize?.size).toBeUndefined();
    expect(store.pathOf('abc')).toBe(join(dir, 'nested', 'state', 'abc.json'));
    expect(JSON.parse(await readFile(store.pathOf('abc'), 'utf8'))).toEqual(state('abc'));
    await store.set('abc', { ...state('abc'), updatedAt: 99 });
    expect((await store.get('abc'))?.updatedAt).toBe(99);
    await store.delete('abc');
    await store.delete('abc');
    expect(await store.get('abc')).toBeUndefined();
    expect(await readdir(join(dir, 'nested', 'state'))).toEqual(['def.json']);
  });

  it('hashes fingerprints that are not plain file names', async () => {
    const store = new FileStateStore({ directory: dir });
    const fingerprint = '../../etc/passwd';
    await store.set(fingerprint, state(fingerprint));
    expect(store.pathOf(fingerprint)).toMatch(/[0-9a-f]{64}\.json$/);
    expect((await store.get(fingerprint))?.fingerprint).toBe(fingerprint);
    expect(await readdir(dir)).toHaveLength(1);
  });

  it.each([
    ['truncated JSON', '{"version":1,"fingerprint":"abc","proto'],
    ['not JSON', '\u0000\u0000garbage'],
    ['an empty file', ''],
    ['another upload', JSON.stringify(state('other'))],
    ['another layout', JSON.stringify({ ...state('abc'), version: 2 })],
    ['a missing session', JSON.stringify({ ...state('abc'), session: undefined })],
  ])('treats %s as absent and removes it', async (_what, text) => {
    const store = new FileStateStore({ directory: dir });
    await writeFile(store.pathOf('abc'), text);
    expect(await store.get('abc')).toBeUndefined();
    expect(existsSync(store.pathOf('abc'))).toBe(false);
    await store.set('abc', state('abc'));
    expect(await store.get('abc')).toEqual(state('abc'));
  });

  it('never shows a partial file: concurrent writers of large states and a reader that always parses', async () => {
    const store = new FileStateStore({ directory: dir, durable: false });
    // 2 MiB each: Node writes that in several write(2) calls, so a direct write would be seen torn.
    const states = Array.from({ length: 8 }, (_, i) =>
      state('abc', String.fromCharCode(97 + i).repeat(2 * 2 ** 20)),
    );
    await store.set('abc', states[0] as UploadState);
    let writing = true;
    let reads = 0;
    const reader = (async () => {
      while (writing) {
        const text = await readFile(store.pathOf('abc'), 'utf8');
        const parsed = JSON.parse(text) as UploadState;
        expect(states.some((s) => JSON.stringify(s) === text)).toBe(true);
        expect(parsed.fingerprint).toBe('abc');
        reads++;
      }
    })();
    for (let round = 0; round < 5; round++) {
      await Promise.all(states.map((s) => store.set('abc', s)));
    }
    writing = false;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(await readdir(dir)).toEqual(['abc.json']);
  });

  it('leaves a whole state behind when its writer is SIGKILLed mid-write', async () => {
    const script = join(dir, 'writer.mts');
    const storeModule = join(import.meta.dirname, 'file-state-store.node.ts');
    await writeFile(
      script,
      `import { FileStateStore } from ${JSON.stringify(storeModule)};
const store = new FileStateStore({ directory: ${JSON.stringify(join(dir, 'state'))} });
for (let i = 0; ; i++) {
  await store.set('abc', { version: 1, fingerprint: 'abc', protocol: 'tus', size: i, chunkSize: 1,
    session: 'x'.repeat(4 * 2 ** 20), createdAt: 0, updatedAt: i });
  process.stdout.write(i + '\\n');
}
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    // Killed while it is writing again after three whole states.
    await new Promise<void>((resolve) => {
      let lines = 0;
      child.stdout.on('data', (chunk: Buffer) => {
        lines += chunk.toString().split('\n').length - 1;
        if (lines >= 3) resolve();
      });
    });
    child.kill('SIGKILL');
    await exited;
    const store = new FileStateStore({ directory: join(dir, 'state') });
    const saved = await store.get('abc');
    expect(saved?.fingerprint).toBe('abc');
    expect(saved?.session).toBe('x'.repeat(4 * 2 ** 20));
    expect(saved?.updatedAt).toBeGreaterThanOrEqual(2);
  });

  it('removes temp files that killed writers left long ago, and only those', async () => {
    const store = new FileStateStore({ directory: dir });
    const old = join(dir, 'abc.json.123.deadbeef.tmp');
    const fresh = join(dir, 'abc.json.456.cafebabe.tmp');
    await writeFile(old, '{"partial');
    await writeFile(fresh, '{"partial');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(old, hourAgo, hourAgo);
    await store.set('abc', state('abc'));
    expect(existsSync(old)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });

  it('defaults to the XDG state directory', () => {
    expect(FileStateStore.defaultDirectory({ XDG_STATE_HOME: '/srv/state' })).toBe(
      join('/srv/state', 'chunked-uploader'),
    );
    // A relative XDG_STATE_HOME is invalid by the spec and ignored.
    expect(FileStateStore.defaultDirectory({ XDG_STATE_HOME: 'rel' })).toBe(
      join(homedir(), '.local', 'state', 'chunked-uploader'),
    );
    expect(FileStateStore.defaultDirectory({})).toBe(
      join(homedir(), '.local', 'state', 'chunked-uploader'),
    );
  });
});
