import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type CountingTusServer, startCountingTusServer } from '../../test/counting-tus-server';
import { startGcsResumableServer } from '../../test/gcs-resumable-server';
import { startHttpPutServer } from '../../test/http-put-server';
import { startReferenceS3 } from '../../test/s3/reference-server';
import { formatBytes, parseByteSize } from './byte-size';
import { type CliIo, runCli, USAGE } from './cli.node.ts';
import { HumanReporter, progressBar } from './cli-report.node.ts';
import type { UploadProgress } from './progress';

const MiB = 2 ** 20;
let dir: string;
let file: string;
let big: string;
let bigBytes: Buffer;
let running: CountingTusServer | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-node-'));
  file = join(dir, 'clip.mp4');
  await writeFile(file, randomBytes(4 * MiB));
  big = join(dir, 'big.mp4');
  bigBytes = randomBytes(11 * MiB + 12345);
  await writeFile(big, bigBytes);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  vi.useRealTimers();
  await running?.close();
  running = undefined;
});

function io(extra: Partial<CliIo> = {}) {
  let stdout = '';
  let stderr = '';
  const value: CliIo = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: {},
    ...extra,
  };
  return {
    io: value,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}

describe('runCli usage', () => {
  it('prints help with an example for every protocol', async () => {
    const out = io();
    expect(await runCli(['--help'], out.io)).toBe(0);
    expect(out.stdout).toBe(USAGE);
    for (const flag of ['--protocol s3', '--protocol gcs', '--protocol http', 'tus.example']) {
      expect(USAGE).toContain(flag);
    }
    const version = io();
    expect(await runCli(['--version'], version.io)).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each([
    [['a.mp4'], 'expected <file> and <url>, got only "a.mp4"'],
    [['a', 'b', 'c'], 'got 3 arguments'],
    [['a', 'http://x/', '--frobnicate'], "Unknown option '--frobnicate'"],
    [['a', 'http://x/', '--chunk-size', '8 parsecs'], '--chunk-size "8 parsecs" is not a size'],
    [['a', 'http://x/', '--chunk-size', '0'], '--chunk-size "0" must be at least 1 byte'],
    [['a', 'http://x/', '--prefetch=-1'], '--prefetch "-1" must be a whole number >= 0'],
    [['a', 'http://x/', '--parallel', '0'], '--parallel "0" must be a whole number >= 1'],
    [['a', 'http://x/', '--retries', 'many'], '--retries "many" must be a whole number >= 0'],
    [['a', 'http://x/', '--protocol', 'ftp'], '--protocol "ftp" is not one of tus, s3, gcs, http'],
    [['a', 'http://x/', '--bucket', 'b'], '--bucket applies to --protocol s3 or gcs, not tus'],
    [['a', 'http://x/', '-p', 's3', '-H', 'x: y'], '--header applies to --protocol tus or http'],
    [['a', 'http://x/', '-H', 'no colon'], `--header "no colon" is not 'Name: value'`],
    [['a', 'http://x/', '-p', 's3', '--bucket', 'b'], 'needs credentials in AWS_ACCESS_KEY_ID'],
    [['a', 'http://x/', '-p', 'gcs'], '--protocol gcs needs --bucket'],
    [['a', 'not a url'], 'tus endpoint "not a url" is not a URL'],
    [['a', 'http://x/', '--limit-rate', 'fast'], '--limit-rate "fast" is not a size'],
    [['-', 'http://x/', '-p', 'gcs', '--bucket', 'b'], 'uploading stdin to gcs needs --name'],
  ])('exits 2 for %j: %s', async (argv, message) => {
    const out = io();
    expect(await runCli(argv, out.io)).toBe(2);
    expect(out.stderr).toContain(message);
    expect(out.stderr).toContain("Try 'chunked-upload --help'");
    expect(out.stdout).toBe('');
  });

  it('exits 2 naming a file it cannot open', async () => {
    const out = io();
    const missing = join(dir, 'missing.mp4');
    expect(await runCli([missing, 'http://127.0.0.1:1/files/'], out.io)).toBe(2);
    expect(out.stderr).toContain(`cannot open ${missing}`);
  });
});

describe('runCli uploads', () => {
  it('uploads quietly, printing only the location, and sends the --header', async () => {
    running = await startCountingTusServer();
    const out = io();
    const code = await runCli(
      [file, running.endpoint, '-q', '-c', '1MiB', '-H', 'X-Tenant: blue', '--state-dir', dir],
      out.io,
    );
    expect(out.stderr).toBe('');
    expect(code).toBe(0);
    const ids = await running.uploads();
    expect(out.stdout).toBe(`${running.endpoint}${ids[0]}\n`);
    expect(running.bytesStored).toBe(4 * MiB);
  });

  it('with --no-resume starts a new upload and saves it, so the next plain run resumes that one', async () => {
    const server = await startCountingTusServer();
    running = server;
    const stateDir = join(dir, 'no-resume');
    const args = [file, server.endpoint, '-c', '1MiB', '--state-dir', stateDir];
    const interrupt = async (extra: string[], at: number) => {
      const controller = new AbortController();
      void server.stallAt(at).then(() => controller.abort());
      const out = io({ signal: controller.signal });
      expect(await runCli([...args, ...extra], out.io)).toBe(130);
      await server.idle();
      return out;
    };
    await interrupt([], MiB + 10);
    const fresh = await interrupt(['--no-resume'], MiB + 10 + 2 * MiB + 20);
    expect(fresh.stderr).not.toContain('resuming');
    expect(fresh.stderr).toContain('without --no-resume');
    expect(await server.uploads()).toHaveLength(2);
    expect(await readdir(stateDir)).toHaveLength(1);

    const out = io();
    expect(await runCli(args, out.io)).toBe(0);
    expect(out.stderr).toContain(`resuming at 2.0 MiB of 4.0 MiB (${2 * MiB + 20} of`);
    expect(await server.uploads()).toHaveLength(2);
  });

  it('exits 1 with the typed code and the status when the server refuses', async () => {
    const forbidding = createServer((_req, res) => {
      res.writeHead(403).end('no uploads for you');
    });
    await new Promise<void>((resolve) => forbidding.listen(0, '127.0.0.1', resolve));
    const { port } = forbidding.address() as AddressInfo;
    try {
      const out = io();
      expect(await runCli([file, `http://127.0.0.1:${port}/files/`], out.io)).toBe(1);
      expect(out.stderr).toContain('upload failed [UPLOAD_HTTP]');
      expect(out.stderr).toContain('HTTP 403');
      const json = io();
      expect(await runCli([file, `http://127.0.0.1:${port}/files/`, '--json'], json.io)).toBe(1);
      expect(JSON.parse(json.stdout.trim().split('\n').at(-1) as string)).toMatchObject({
        type: 'error',
        code: 'UPLOAD_HTTP',
        status: 403,
      });
    } finally {
      forbidding.closeAllConnections();
      await new Promise((resolve) => forbidding.close(resolve));
    }
  });
});

describe('runCli over every protocol', () => {
  const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

  it('s3: signs with the AWS_* credentials and --region, parts in parallel', async () => {
    const credentials = { accessKeyId: 'AKIDCLI', secretAccessKey: 'cli-secret' };
    const server = await startReferenceS3({
      region: 'eu-west-1',
      credentials: [credentials],
      buckets: ['media'],
    });
    try {
      server.holdUntil('UploadPart', 2);
      const out = io({
        env: {
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        },
      });
      const code = await runCli(
        [
          big,
          server.endpoint,
          '-p',
          's3',
          '--bucket',
          'media',
          '--key',
          'raw/big.mp4',
          '--region',
          'eu-west-1',
          '-c',
          '5MiB',
          '--parallel',
          '2',
          '-q',
          '--state-dir',
          dir,
        ],
        out.io,
      );
      expect(out.stderr).toBe('');
      expect(code).toBe(0);
      const object = server.objects.get('media/raw/big.mp4');
      expect(object?.contentType).toBe('video/mp4');
      expect(sha(object?.bytes ?? new Uint8Array())).toBe(sha(bigBytes));
    } finally {
      await server.close();
    }
  });

  it('gcs: sends GCS_ACCESS_TOKEN, names the object --name', async () => {
    const server = await startGcsResumableServer();
    server.requiredToken = 'ya29.cli';
    try {
      const out = io({ env: { GCS_ACCESS_TOKEN: 'ya29.cli' } });
      const code = await runCli(
        [
          big,
          server.endpoint,
          '-p',
          'gcs',
          '--bucket',
          'media',
          '--name',
          'raw/big.mp4',
          '-c',
          '1MiB',
          '--json',
          '--state-dir',
          dir,
        ],
        out.io,
      );
      expect(code).toBe(0);
      const done = JSON.parse(out.stdout.trim().split('\n').at(-1) as string);
      expect(done).toMatchObject({ type: 'complete', bytes: bigBytes.length });
      expect(done.verified).toContain('crc32c');
      const [session] = [...server.sessions.values()];
      expect(session).toMatchObject({ bucket: 'media', name: 'raw/big.mp4' });
      expect(sha(Buffer.concat(session?.stored ?? []))).toBe(sha(bigBytes));
    } finally {
      await server.close();
    }
  });

  it('http: PUTs the chunks with Content-Range to <url>, with the --header', async () => {
    const server = await startHttpPutServer();
    try {
      const out = io();
      const url = `${server.origin}/files/big.mp4`;
      const code = await runCli(
        [big, url, '-p', 'http', '-c', '1MiB', '-H', 'Authorization: Bearer t', '--state-dir', dir],
        out.io,
      );
      expect(code).toBe(0);
      expect(sha(server.bytes('/files/big.mp4'))).toBe(sha(bigBytes));
    } finally {
      await server.close();
    }
  });

  it('uploads stdin when the file is -', async () => {
    running = await startCountingTusServer();
    const out = io({ stdin: Readable.from([bigBytes.subarray(0, 1000), bigBytes.subarray(1000)]) });
    expect(await runCli(['-', running.endpoint, '-c', '1MiB', '-q'], out.io)).toBe(0);
    const [id] = await running.uploads();
    expect(await running.sha256(id as string)).toBe(sha(bigBytes));
  });
});

describe('the progress display', () => {
  const progress = (acked: number): UploadProgress => ({
    bytesTotal: 100 * MiB,
    bytesSent: acked,
    bytesAcknowledged: acked,
    bytesPerSecond: 10 * MiB,
    etaMs: ((100 * MiB - acked) / (10 * MiB)) * 1000,
    bytesResumed: 0,
  });

  it('redraws a bar in place on a terminal, at most every 100 ms, ending on the latest state', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    let err = '';
    const reporter = new HumanReporter(
      { write: () => undefined },
      { write: (t: string) => (err += t), isTTY: true, columns: 100 },
      false,
    );
    for (let i = 1; i <= 50; i++) reporter.progress(progress(i * MiB));
    expect(err.split('\r').length - 1).toBe(1);
    vi.advanceTimersByTime(100);
    const draws = err.split('\r').filter(Boolean);
    expect(draws).toHaveLength(2);
    expect(draws[1]).toContain(' 50.0% [');
    expect(draws[1]).toContain('50.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 0:05');
    expect(err).not.toContain('\n');
    reporter.resumed(MiB, 100 * MiB);
    expect(err).toContain('\r\x1b[Kresuming at 1.0 MiB of 100.0 MiB');
  });

  it('prints periodic lines, not a bar, when stderr is not a terminal', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    let err = '';
    const reporter = new HumanReporter(
      { write: () => undefined },
      { write: (t: string) => (err += t) },
      false,
    );
    for (let i = 1; i <= 50; i++) reporter.progress(progress(i * MiB));
    vi.advanceTimersByTime(2000);
    expect(err).not.toContain('\r');
    expect(err.trim().split('\n')).toEqual([
      'progress: 1.0 MiB / 100.0 MiB (1.0%), 10.0 MiB/s, ETA 0:10',
      'progress: 50.0 MiB / 100.0 MiB (50.0%), 10.0 MiB/s, ETA 0:05',
    ]);
  });

  it('fits the bar to the terminal', () => {
    const narrow = progressBar({ ...progress(25 * MiB), etaMs: undefined }, 60);
    expect(narrow).toMatch(
      /^ 25\.0% \[#+\.+\] 25\.0 MiB \/ 100\.0 MiB {2}10\.0 MiB\/s {2}ETA --:--$/,
    );
    expect(progressBar(progress(25 * MiB), 200).length).toBeLessThan(100);
  });
});

describe('sizes', () => {
  it.each([
    ['8MiB', 8 * MiB],
    ['512 KiB', 512 * 1024],
    ['1GB', 1e9],
    ['1.5GiB', 1.5 * 2 ** 30],
    ['5MB', 5e6],
    ['64k', 65536],
    ['4096', 4096],
    ['2m', 2 * MiB],
  ])('parses %s', (text, bytes) => {
    expect(parseByteSize(text, '--chunk-size')).toBe(bytes);
  });

  it.each(['', 'MiB', '8 XB', '-1MiB', '0.3B', '1e3'])('refuses %j, naming it', (text) => {
    expect(() => parseByteSize(text, '--chunk-size')).toThrow(
      `--chunk-size ${JSON.stringify(text)}`,
    );
  });

  it('formats bytes', () => {
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(12_582_912)).toBe('12.0 MiB');
    expect(formatBytes(3 * 2 ** 40)).toBe('3.0 TiB');
  });
});
