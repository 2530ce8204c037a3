/**
 * Entry of an upload server process (see upload-server.ts): the far end of
 * the upload benchmarks, in a process of its own so its work never lands in
 * the measured client. The spec comes on the command line:
 *
 * - `tus`: `@tus/server` with `@tus/file-store` in a temp dir on
 *   127.0.0.1:0 (creation URL `/files/`). With a `link`, a front server in
 *   this process models the network: each request waits `latencyMs`, then
 *   is forwarded with its body paced to `bytesPerSecond` (one bucket for the
 *   link, like one client's uplink).
 * - `s3`: s3rver 3.7 in a temp dir with one bucket.
 *
 * `verify` requests compare a stored upload with the file it came from and
 * delete it. The temp dir is deleted when the parent disconnects.
 */
import { createHash } from 'node:crypto';
import { createReadStream, rmSync } from 'node:fs';
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { Server as TusServer } from '@tus/server';
import S3rver from 's3rver';
import type { LinkModel, ServerReply, ServerRequest, ServerSpec } from './upload-server';
import { S3_BUCKET } from './upload-server';

const spec = JSON.parse(process.argv[2] ?? '{}') as ServerSpec;
let directory: string | undefined;
const servers: Server[] = [];

function reply(message: ServerReply): void {
  process.send?.(message);
}

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** How far behind the clock the link's schedule may fall before idle time is forfeited. */
const BURST_MS = 5;

/** A front server that delays each request, then forwards it to `port` with its body paced. */
function linkFront(port: number, link: LinkModel): Server {
  const agent = new Agent({ keepAlive: true });
  // When the link is next idle (performance.now() milliseconds).
  let idleAt = 0;
  const paced = () =>
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        const now = performance.now();
        // Up to BURST_MS of idle link counts, so timers that fire late do not slow the link down.
        idleAt = Math.max(idleAt, now - BURST_MS) + (chunk.length / link.bytesPerSecond) * 1000;
        // A chunk goes on once the link would have carried it.
        const wait = idleAt - now;
        if (wait >= 1) setTimeout(() => callback(null, chunk), wait);
        else callback(null, chunk);
      },
    });
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const upstream = request({
      host: '127.0.0.1',
      port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent,
    });
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
      answer.pipe(res);
    });
    pipeline(req, paced(), upstream).catch(() => res.destroy());
  };
  return createServer((req, res) => {
    setTimeout(() => forward(req, res), link.latencyMs);
  });
}

async function startTus(link: LinkModel | undefined): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'streaming-primitives-bench-tus-'));
  directory = dir;
  const tus = new TusServer({ path: '/files', datastore: new FileStore({ directory: dir }) });
  const backend = await listen(createServer((req, res) => void tus.handle(req, res)));
  const port = link === undefined ? backend : await listen(linkFront(backend, link));
  return `http://127.0.0.1:${port}/files/`;
}

async function startS3(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'streaming-primitives-bench-s3-'));
  directory = dir;
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: dir,
    configureBuckets: [{ name: S3_BUCKET }],
  });
  const { port } = await server.run();
  return `http://127.0.0.1:${port}`;
}

/** Where the stored copy of an upload is, and the files to delete with it. */
async function storedFiles(location: string): Promise<{ object: string; all: string[] }> {
  const dir = directory as string;
  if (spec.kind === 'tus') {
    // FileStore keeps upload <id> as the file <id> and its metadata as <id>.json.
    const id = new URL(location).pathname.split('/').pop() ?? '';
    const object = join(dir, id);
    return { object, all: [object, `${object}.json`] };
  }
  // s3rver keeps key K of a bucket as K._S3rver_object beside K._S3rver_metadata.json and an MD5.
  const bucket = join(dir, S3_BUCKET);
  const prefix = `${location}._S3rver_`;
  const all = (await readdir(bucket))
    .filter((f) => f.startsWith(prefix))
    .map((f) => join(bucket, f));
  return { object: join(bucket, `${location}._S3rver_object`), all };
}

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

const BLOCK = 64 * 1024;
const SAMPLES = 16;

/** Compares 16 blocks of 64 KiB spread over both files, the first and last included. */
async function sampledEqual(a: string, b: string, size: number): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a), open(b)]);
  try {
    const ba = Buffer.alloc(BLOCK);
    const bb = Buffer.alloc(BLOCK);
    const span = Math.max(0, size - BLOCK);
    for (let i = 0; i < SAMPLES; i++) {
      const at = Math.floor((span * i) / (SAMPLES - 1));
      const n = Math.min(BLOCK, size - at);
      await Promise.all([fa.read(ba, 0, n, at), fb.read(bb, 0, n, at)]);
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
    }
    return true;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

async function verify(request: ServerRequest): Promise<number> {
  const { object, all } = await storedFiles(request.location);
  try {
    const [stored, input] = await Promise.all([stat(object), stat(request.input)]);
    if (stored.size !== input.size) {
      throw new Error(`${request.location} holds ${stored.size} bytes, the input ${input.size}`);
    }
    if (!(await sampledEqual(object, request.input, input.size))) {
      throw new Error(`${request.location} differs from the input in a sampled block`);
    }
    if (request.full) {
      const [ours, theirs] = await Promise.all([sha256(object), sha256(request.input)]);
      if (ours !== theirs) {
        throw new Error(`${request.location} has SHA-256 ${ours}, the input ${theirs}`);
      }
    }
    return stored.size;
  } finally {
    await Promise.all(all.map((path) => rm(path, { force: true })));
  }
}

process.on('message', (message: ServerRequest) => {
  verify(message).then(
    (bytes) => reply({ id: message.id, endpoint: '', bytes }),
    (error: unknown) =>
      reply({ id: message.id, error: error instanceof Error ? error.message : String(error) }),
  );
});

// The parent went away (or closed us): leave no process and no files behind.
process.on('disconnect', () => {
  for (const server of servers) server.closeAllConnections();
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
  process.exit(0);
});

(spec.kind === 'tus' ? startTus(spec.link) : startS3()).then(
  (endpoint) => reply({ id: 0, endpoint, bytes: 0 }),
  (error: unknown) => {
    reply({ id: 0, error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  },
);
