import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { AwsClient } from 'aws4fetch';
import S3rver from 's3rver';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ReferenceS3, startReferenceS3 } from '../../test/s3/reference-server';
import {
  ChecksumMismatchError,
  HttpError,
  InvalidArgumentError,
  NetworkError,
  ProtocolError,
  UploadAbortedError,
} from '../lib/errors';
import type { FetchLike } from '../lib/http';
import type {
  ChunkPayload,
  ChunkReceipt,
  OpenOptions,
  ProtocolSession,
  StoredPart,
} from '../lib/types';
import { type S3Options, s3 } from './s3';

const MiB = 2 ** 20;
const PART = 5 * MiB;

function openOptions(overrides: Partial<OpenOptions> = {}): OpenOptions {
  return {
    size: undefined,
    fingerprint: 'fp',
    metadata: {},
    contentType: undefined,
    signal: new AbortController().signal,
    ...overrides,
  };
}

const live = () => new AbortController().signal;

function chunksOf(data: Uint8Array, size = PART): ChunkPayload[] {
  const chunks: ChunkPayload[] = [];
  for (let offset = 0, index = 0; offset < data.length; offset += size, index++) {
    const bytes = data.subarray(offset, Math.min(data.length, offset + size));
    chunks.push({
      index,
      offset,
      bytes,
      last: offset + bytes.length === data.length,
      totalSize: data.length,
    });
  }
  return chunks;
}

/** Sends `chunks` in the given order, `parallel` at a time, like the engine's workers would. */
async function sendAll(
  session: ProtocolSession,
  chunks: ChunkPayload[],
  order: number[],
  parallel: number,
  onBytesSent?: (n: number) => void,
): Promise<StoredPart[]> {
  const queue = [...order];
  const stored: StoredPart[] = [];
  const worker = async () => {
    for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
      const chunk = chunks[index]!;
      const receipt: ChunkReceipt = await session.send(chunk, {
        signal: live(),
        ...(onBytesSent ? { onBytesSent } : {}),
      });
      stored.push(toStored(chunk, receipt));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return stored;
}

function toStored(chunk: ChunkPayload, receipt: ChunkReceipt): StoredPart {
  const part: StoredPart = { index: chunk.index, size: chunk.bytes.length };
  if (receipt.etag !== undefined) part.etag = receipt.etag;
  if (receipt.checksum !== undefined) part.checksum = receipt.checksum;
  return part;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function crc32Base64(bytes: Uint8Array): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(bytes));
  return out.toString('base64');
}

function multipartEtag(parts: Uint8Array[]): string {
  const md5s = parts.map((p) => createHash('md5').update(p).digest());
  return `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${parts.length}"`;
}

/** A `fetch` that flips one byte of the request body on the way, as a faulty network would. */
function corruptingFetch(): FetchLike {
  return async (url, init) => {
    const body = init?.body;
    if (body instanceof ReadableStream) {
      let first = true;
      const flipped = body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            if (first && chunk.length > 0) {
              first = false;
              const copy = chunk.slice();
              copy[0] = copy[0]! ^ 0xff;
              controller.enqueue(copy);
            } else {
              controller.enqueue(chunk);
            }
          },
        }),
      );
      return fetch(url, { ...init, body: flipped, duplex: 'half' } as RequestInit);
    }
    if (body instanceof Uint8Array && body.length > 0) {
      const copy = new Uint8Array(body);
      copy[0] = copy[0]! ^ 0xff;
      return fetch(url, { ...init, body: copy });
    }
    return fetch(url, init);
  };
}

describe('s3() against s3rver', () => {
  let directory: string;
  let server: S3rver;
  let endpoint: string;
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 's3rver-'));
    server = new S3rver({
      port: 0,
      address: '127.0.0.1',
      silent: true,
      directory,
      configureBuckets: [{ name: 'test' }],
    });
    const { port } = await server.run();
    endpoint = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await server?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it('uploads ~20 MiB in 5 MiB parts sent out of order and in parallel, and the object reads back identical', async () => {
    const data = new Uint8Array(randomBytes(4 * PART + 123_457));
    const key = 'videos/big file.bin';
    const protocol = s3({ endpoint, bucket: 'test', key, credentials, contentType: 'video/mp4' });
    expect(protocol.target).toBe(`${endpoint}/test/videos/big%20file.bin`);
    const session = await protocol.open(openOptions({ metadata: { title: 'Big Buck' } }));
    expect(session.capabilities.placement).toBe('part');

    const chunks = chunksOf(data);
    expect(chunks).toHaveLength(5);
    let progressCalls = 0;
    let progressBytes = 0;
    const stored = await sendAll(session, chunks, [3, 0, 4, 2, 1], 3, (n) => {
      progressCalls++;
      progressBytes += n;
    });
    // Progress is counted as the body streams (256 KiB slices), not once per part.
    expect(progressBytes).toBe(data.length);
    expect(progressCalls).toBeGreaterThan(chunks.length * 10);
    for (const part of stored) expect(part.etag).toMatch(/^"[0-9a-f]{32}"$/);

    const info = await session.complete(stored, live());
    expect(info.etag).toBeTruthy();
    expect(info.digests).toEqual({});

    const client = new AwsClient({
      ...credentials,
      service: 's3',
      region: 'us-east-1',
      retries: 0,
    });
    const response = await client.fetch(protocol.target);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('video/mp4');
    expect(response.headers.get('x-amz-meta-title')).toBe('Big Buck');
    expect(sha256(new Uint8Array(await response.arrayBuffer()))).toBe(sha256(data));
  });

  it('turns S3 error XML into a non-retryable HttpError naming the code (NoSuchBucket)', async () => {
    const protocol = s3({ endpoint, bucket: 'missing', key: 'a.bin', credentials });
    const error = await protocol.open(openOptions()).catch((e: unknown) => e);
    expect(HttpError.isInstance(error)).toBe(true);
    const http = error as HttpError;
    expect(http.status).toBe(404);
    expect(http.retryable).toBe(false);
    expect(http.message).toMatch(
      /CreateMultipartUpload NoSuchBucket: The specified bucket does not exist/,
    );
  });

  it('is refused with InvalidAccessKeyId for unknown credentials, not retryable', async () => {
    const protocol = s3({
      endpoint,
      bucket: 'test',
      key: 'a.bin',
      credentials: { accessKeyId: 'NOPE', secretAccessKey: 'x' },
    });
    const error = (await protocol.open(openOptions()).catch((e: unknown) => e)) as HttpError;
    expect(HttpError.isInstance(error)).toBe(true);
    expect(error.status).toBe(403);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/InvalidAccessKeyId/);
  });
});

describe('s3() against the reference S3 handler (what s3rver lacks)', () => {
  let server: ReferenceS3;
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
  const temporary = {
    accessKeyId: 'ASIATEMP',
    secretAccessKey: 'temp-secret',
    sessionToken: 'token/with+chars=',
  };
  const options = (overrides: Partial<S3Options> = {}): S3Options => ({
    endpoint: server.endpoint,
    bucket: 'test',
    key: 'clips/a.bin',
    credentials,
    ...overrides,
  });
  const signedClient = () =>
    new AwsClient({ ...credentials, service: 's3', region: 'us-east-1', retries: 0 });

  beforeAll(async () => {
    server = await startReferenceS3({ credentials: [credentials, temporary] });
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => {
    server.requests.length = 0;
    server.faults.length = 0;
    server.listPageSize = 1000;
  });

  it('sends parts concurrently and out of order with a Content-MD5 each; complete yields S3’s multipart ETag', async () => {
    const data = new Uint8Array(randomBytes(4 * PART + 4321));
    const protocol = s3(options());
    const session = await protocol.open(openOptions());
    const chunks = chunksOf(data);
    // Answers wait until 4 parts are in flight at once: a client sending one at a time would hang here.
    server.holdUntil('UploadPart', 4);
    const stored = await sendAll(session, chunks, [4, 2, 0, 3, 1], 4);

    const uploads = server.requests.filter((r) => r.operation === 'UploadPart');
    const numbers = uploads.map((r) => r.query.get('partNumber'));
    // The first four arrive in any order; the fifth only once a held one was answered.
    expect(numbers.slice(0, 4).sort()).toEqual(['1', '3', '4', '5']);
    expect(numbers[4]).toBe('2');
    for (const request of uploads) {
      const chunk = chunks[Number(request.query.get('partNumber')) - 1]!;
      expect(request.headers['content-md5']).toBe(
        createHash('md5').update(chunk.bytes).digest('base64'),
      );
      expect(request.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    }

    const info = await session.complete(stored, live());
    expect(info.etag).toBe(multipartEtag(chunks.map((c) => c.bytes)));
    expect(info.location).toBe(protocol.target);
    const object = await signedClient().fetch(protocol.target);
    expect(sha256(new Uint8Array(await object.arrayBuffer()))).toBe(sha256(data));
  });

  it('with checksum crc32: CRC32 per part, a full-object CRC32 asked for at creation and reported as a digest', async () => {
    const data = new Uint8Array(randomBytes(2 * PART + 777));
    const protocol = s3(options({ checksum: 'crc32', key: 'clips/crc.bin' }));
    const session = await protocol.open(openOptions());
    const create = server.requests.find((r) => r.operation === 'CreateMultipartUpload')!;
    expect(create.headers['x-amz-checksum-algorithm']).toBe('CRC32');
    expect(create.headers['x-amz-checksum-type']).toBe('FULL_OBJECT');

    const chunks = chunksOf(data);
    const stored = await sendAll(session, chunks, [2, 1, 0], 3);
    for (const part of stored) expect(part.checksum).toBe(crc32Base64(chunks[part.index]!.bytes));
    for (const request of server.requests.filter((r) => r.operation === 'UploadPart')) {
      expect(request.headers['x-amz-sdk-checksum-algorithm']).toBe('CRC32');
      expect(request.headers['content-md5']).toBeUndefined();
    }
    const info = await session.complete(stored, live());
    expect(info.digests).toEqual({ crc32: crc32Base64(data) });
  });

  it('fills in the part CRC32s S3 requires at completion when the caller lists parts by ETag only', async () => {
    const protocol = s3(options({ checksum: 'crc32', key: 'clips/etag-only.bin' }));
    const session = await protocol.open(openOptions());
    expect(session.capabilities.digests).toEqual(['crc32']);
    const data = new Uint8Array(randomBytes(PART + 3));
    const stored = await sendAll(session, chunksOf(data), [1, 0], 2);
    const info = await session.complete(
      stored.map(({ index, size, etag }) => ({ index, size, etag: etag! })),
      live(),
    );
    expect(info.digests).toEqual({ crc32: crc32Base64(data) });
  });

  it('does not report a composite CRC32 (a checksum of checksums) as a digest of the object', async () => {
    // A server that ignores x-amz-checksum-type answers with a composite value.
    const protocol = s3(options({ checksum: 'crc32', key: 'clips/composite.bin' }));
    const session = await protocol.open(openOptions());
    server.uploads.get((session.state as { uploadId: string }).uploadId)!.checksumType =
      'COMPOSITE';
    const data = new Uint8Array(randomBytes(PART + 10));
    const stored = await sendAll(session, chunksOf(data), [0, 1], 2);
    const info = await session.complete(stored, live());
    expect(info.digests).toEqual({});
  });

  it('resumes from persisted state in a new protocol instance, listing stored parts across ListParts pages', async () => {
    const data = new Uint8Array(randomBytes(3 * PART + 999));
    const chunks = chunksOf(data);
    const first = await s3(options({ key: 'clips/resume.bin' })).open(openOptions());
    const before = await sendAll(first, chunks, [2, 0], 2);
    const persisted = JSON.parse(JSON.stringify(first.state));

    server.listPageSize = 1;
    server.requests.length = 0;
    // A new process: nothing shared but the JSON state.
    const again = await s3(options({ key: 'clips/resume.bin' })).resume(persisted, openOptions());
    expect(again).toBeDefined();
    const session = again!;
    expect(session.state).toEqual(first.state);
    const ack = await session.acknowledged(live());
    expect(ack).toEqual({
      placement: 'part',
      parts: [
        { index: 0, size: PART, etag: before.find((p) => p.index === 0)!.etag },
        { index: 2, size: PART, etag: before.find((p) => p.index === 2)!.etag },
      ],
    });
    const pages = server.requests.filter(
      (r) => r.operation === 'ListParts' && !r.query.has('max-parts'),
    );
    expect(pages.map((r) => r.query.get('part-number-marker'))).toEqual([null, '1']);

    const rest = await sendAll(session, chunks, [3, 1], 2);
    if (ack.placement !== 'part') throw new Error('unexpected placement');
    await session.complete([...ack.parts, ...rest], live());
    const object = await signedClient().fetch(s3(options({ key: 'clips/resume.bin' })).target);
    expect(sha256(new Uint8Array(await object.arrayBuffer()))).toBe(sha256(data));
  });

  it('resume() answers undefined for a stale or foreign upload, so the engine starts fresh', async () => {
    const protocol = s3(options());
    const session = await protocol.open(openOptions());
    const state = session.state as Record<string, string | number>;
    expect(
      await protocol.resume({ ...state, uploadId: 'no-such-upload' }, openOptions()),
    ).toBeUndefined();
    server.requests.length = 0;
    expect(
      await protocol.resume({ ...state, key: 'clips/other.bin' }, openOptions()),
    ).toBeUndefined();
    expect(await protocol.resume({ nonsense: true }, openOptions())).toBeUndefined();
    expect(await protocol.resume('not an object', openOptions())).toBeUndefined();
    expect(server.requests).toHaveLength(0);
    // A missing bucket is no stale upload: it must surface.
    await expect(
      s3(options({ bucket: 'gone' })).resume({ ...state, bucket: 'gone' }, openOptions()),
    ).rejects.toThrow(/NoSuchBucket/);
  });

  it('throws ChecksumMismatchError when the part’s bytes change on the way (Content-MD5 → BadDigest), storing nothing', async () => {
    const protocol = s3(options({ fetch: corruptingFetch() }));
    const clean = s3(options());
    const session = await clean.open(openOptions());
    const resumed = (await protocol.resume(session.state, openOptions()))!;
    const data = new Uint8Array(randomBytes(PART));
    const [chunk] = chunksOf(data);
    const error = await resumed
      .send(chunk!, { signal: live(), onBytesSent: () => {} })
      .catch((e: unknown) => e);
    expect(ChecksumMismatchError.isInstance(error)).toBe(true);
    const mismatch = error as ChecksumMismatchError;
    expect(mismatch.algorithm).toBe('md5');
    expect(mismatch.expected).toBe(createHash('md5').update(data).digest('base64'));
    expect(mismatch.retryable).toBe(true);
    expect(HttpError.isInstance(mismatch.cause)).toBe(true);
    expect((mismatch.cause as HttpError).message).toMatch(/BadDigest/);
    expect(await session.acknowledged(live())).toEqual({ placement: 'part', parts: [] });
  });

  it('throws ChecksumMismatchError for a corrupted part in crc32 mode too', async () => {
    const session = await s3(options({ checksum: 'crc32' })).open(openOptions());
    const corrupted = (await s3(options({ fetch: corruptingFetch() })).resume(
      session.state,
      openOptions(),
    ))!;
    const [chunk] = chunksOf(new Uint8Array(randomBytes(1000)));
    const error = await corrupted.send(chunk!, { signal: live() }).catch((e: unknown) => e);
    expect(ChecksumMismatchError.isInstance(error)).toBe(true);
    expect((error as ChecksumMismatchError).algorithm).toBe('crc32');
  });

  it('makes 503 SlowDown and 500 InternalError retryable (with Retry-After), and the part goes through next time', async () => {
    const session = await s3(options()).open(openOptions());
    const [chunk] = chunksOf(new Uint8Array(randomBytes(1000)));
    server.faults.push({
      operation: 'UploadPart',
      kind: 'error',
      status: 503,
      code: 'SlowDown',
      message: 'Please reduce your request rate.',
      headers: { 'retry-after': '3' },
    });
    const slow = (await session
      .send(chunk!, { signal: live() })
      .catch((e: unknown) => e)) as HttpError;
    expect(HttpError.isInstance(slow)).toBe(true);
    expect(slow.status).toBe(503);
    expect(slow.retryable).toBe(true);
    expect(slow.retryAfterMs).toBe(3000);
    expect(slow.message).toMatch(/UploadPart SlowDown: Please reduce your request rate\./);

    server.faults.push({
      operation: 'UploadPart',
      kind: 'error',
      status: 500,
      code: 'InternalError',
      message: 'We encountered an internal error.',
    });
    const internal = (await session
      .send(chunk!, { signal: live() })
      .catch((e: unknown) => e)) as HttpError;
    expect(internal.status).toBe(500);
    expect(internal.retryable).toBe(true);

    const receipt = await session.send(chunk!, { signal: live() });
    expect(receipt.etag).toBe(`"${createHash('md5').update(chunk!.bytes).digest('hex')}"`);
  });

  it('detects an <Error> inside a 200 CompleteMultipartUpload answer and completes on a retry', async () => {
    const protocol = s3(options({ key: 'clips/late-error.bin' }));
    const session = await protocol.open(openOptions());
    const data = new Uint8Array(randomBytes(1234));
    const stored = await sendAll(session, chunksOf(data), [0], 1);
    server.faults.push({
      operation: 'CompleteMultipartUpload',
      kind: 'error-in-200',
      code: 'InternalError',
      message: 'We encountered an internal error. Please try again.',
    });
    const error = (await session.complete(stored, live()).catch((e: unknown) => e)) as HttpError;
    expect(HttpError.isInstance(error)).toBe(true);
    expect(error.status).toBe(200);
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/CompleteMultipartUpload InternalError/);
    expect(server.objects.has('test/clips/late-error.bin')).toBe(false);

    const info = await session.complete(stored, live());
    expect(info.etag).toBe(multipartEtag([data]));
  });

  it('recognizes its own object when a retried complete finds the upload gone because the first one succeeded', async () => {
    const protocol = s3(options({ key: 'clips/lost-answer.bin' }));
    const session = await protocol.open(openOptions());
    const data = new Uint8Array(randomBytes(PART + 5));
    const stored = await sendAll(session, chunksOf(data), [1, 0], 2);
    server.faults.push({ operation: 'CompleteMultipartUpload', kind: 'drop-after' });
    const lost = await session.complete(stored, live()).catch((e: unknown) => e);
    expect(NetworkError.isInstance(lost)).toBe(true);

    const info = await session.complete(stored, live());
    expect(info.etag).toBe(multipartEtag(chunksOf(data).map((c) => c.bytes)));
    expect(server.requests.at(-1)?.operation).toBe('HeadObject');

    // Someone else's object at the key is not mistaken for ours.
    const other = await s3(options({ key: 'clips/lost-answer.bin' })).open(openOptions());
    const otherStored = await sendAll(other, chunksOf(new Uint8Array(randomBytes(10))), [0], 1);
    await other.terminate(live());
    await expect(other.complete(otherStored, live())).rejects.toThrow(/NoSuchUpload/);
  });

  it('does not retry AccessDenied or SignatureDoesNotMatch', async () => {
    server.faults.push({
      operation: 'CreateMultipartUpload',
      kind: 'error',
      status: 403,
      code: 'AccessDenied',
      message: 'Access Denied',
    });
    const denied = (await s3(options())
      .open(openOptions())
      .catch((e: unknown) => e)) as HttpError;
    expect(denied.status).toBe(403);
    expect(denied.retryable).toBe(false);
    expect(denied.message).toMatch(/AccessDenied/);

    const wrongSecret = s3(options({ credentials: { ...credentials, secretAccessKey: 'wrong' } }));
    const mismatch = (await wrongSecret.open(openOptions()).catch((e: unknown) => e)) as HttpError;
    expect(HttpError.isInstance(mismatch)).toBe(true);
    expect(mismatch.status).toBe(403);
    expect(mismatch.retryable).toBe(false);
    expect(mismatch.message).toMatch(/SignatureDoesNotMatch/);
  });

  it('signs awkward keys, temporary credentials from a function and non-ASCII metadata correctly', async () => {
    const key = "dir/ünï côdé (1)+!*'~&=?#.bin";
    let calls = 0;
    const protocol = s3(
      options({
        key,
        credentials: async () => {
          calls++;
          return temporary;
        },
        metadata: { Title: 'Café ☕', plain: 'yes' },
      }),
    );
    const session = await protocol.open(
      openOptions({ metadata: { plain: 'engine', filename: 'a.bin' } }),
    );
    const data = new Uint8Array(randomBytes(321));
    const stored = await sendAll(session, chunksOf(data), [0], 1);
    await session.complete(stored, live());
    expect(calls).toBe(3);
    const create = server.requests.find((r) => r.operation === 'CreateMultipartUpload')!;
    expect(create.headers['x-amz-security-token']).toBe(temporary.sessionToken);
    expect(create.headers['x-amz-meta-title']).toBe(
      `=?UTF-8?B?${Buffer.from('Café ☕').toString('base64')}?=`,
    );
    expect(create.headers['x-amz-meta-plain']).toBe('yes');
    expect(create.headers['x-amz-meta-filename']).toBe('a.bin');
    expect(server.objects.get(`test/${key}`)?.bytes.equals(data)).toBe(true);
  });

  it('terminate() aborts the upload (ListParts then answers 404 NoSuchUpload) and tolerates a second abort', async () => {
    const protocol = s3(options());
    const session = await protocol.open(openOptions());
    await sendAll(session, chunksOf(new Uint8Array(randomBytes(100))), [0], 1);
    const { uploadId } = session.state as { uploadId: string };
    await session.terminate(live());
    expect(server.uploads.has(uploadId)).toBe(false);
    const list = await signedClient().fetch(
      `${protocol.target}?uploadId=${encodeURIComponent(uploadId)}`,
    );
    expect(list.status).toBe(404);
    expect(await list.text()).toMatch(/<Code>NoSuchUpload<\/Code>/);
    await expect(session.terminate(live())).resolves.toBeUndefined();
    expect(await protocol.resume(session.state, openOptions())).toBeUndefined();
  });

  it('refuses part lists with gaps or duplicates, and parts S3 would refuse at completion, before any request', async () => {
    const session = await s3(options()).open(openOptions());
    server.requests.length = 0;
    const part = (index: number): StoredPart => ({ index, size: PART, etag: '"x"' });
    await expect(session.complete([], live())).rejects.toThrow(InvalidArgumentError);
    await expect(session.complete([part(0), part(2)], live())).rejects.toThrow(/part 2 is missing/);
    await expect(session.complete([part(1), part(0), part(1)], live())).rejects.toThrow(
      /listed twice/,
    );
    await expect(session.complete([{ index: 0, size: 1 }], live())).rejects.toThrow(/no ETag/);
    const small: ChunkPayload = {
      index: 0,
      offset: 0,
      bytes: new Uint8Array(10),
      last: false,
      totalSize: undefined,
    };
    await expect(session.send(small, { signal: live() })).rejects.toThrow(/at least 5242880/);
    await expect(
      session.send({ ...small, index: 10_000, last: true }, { signal: live() }),
    ).rejects.toThrow(InvalidArgumentError);
    expect(server.requests).toHaveLength(0);
  });

  it('stops with UploadAbortedError when the signal is aborted', async () => {
    const session = await s3(options()).open(openOptions());
    const controller = new AbortController();
    controller.abort(new Error('user cancelled'));
    const [chunk] = chunksOf(new Uint8Array(100));
    await expect(session.send(chunk!, { signal: controller.signal })).rejects.toSatisfy(
      (e: unknown) => UploadAbortedError.isInstance(e),
    );
  });
});

describe('s3() without a server', () => {
  const credentials = { accessKeyId: 'a', secretAccessKey: 'b' };

  it('declares S3’s multipart limits as its capabilities', async () => {
    const fake: FetchLike = async () =>
      new Response(
        '<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>',
      );
    const session = await s3({
      endpoint: 'http://s3.test',
      bucket: 'b',
      key: 'k',
      credentials,
      fetch: fake,
      maxParallel: 7,
    }).open(openOptions());
    expect(session.capabilities).toEqual({
      maxParallel: 7,
      chunkMultiple: 1,
      minChunkSize: 5 * MiB,
      maxChunkSize: 5 * 2 ** 30,
      maxChunks: 10_000,
      deferredLength: true,
      placement: 'part',
    });
    expect(session.state).toEqual({
      version: 1,
      endpoint: 'http://s3.test',
      bucket: 'b',
      key: 'k',
      region: 'us-east-1',
      uploadId: 'u',
      checksum: 'md5',
    });
  });

  it('addresses AWS virtual-hosted style by default and custom endpoints path style', () => {
    expect(
      s3({ bucket: 'my-bucket', key: 'a b/c.mp4', region: 'eu-west-1', credentials }).target,
    ).toBe('https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/c.mp4');
    expect(s3({ bucket: 'my.dotted.bucket', key: 'k', credentials }).target).toBe(
      'https://s3.us-east-1.amazonaws.com/my.dotted.bucket/k',
    );
    expect(
      s3({ endpoint: 'https://minio.example/s3/', bucket: 'b', key: 'k', credentials }).target,
    ).toBe('https://minio.example/s3/b/k');
    expect(
      s3({
        endpoint: 'https://r2.example',
        bucket: 'bucket',
        key: 'k',
        credentials,
        forcePathStyle: false,
      }).target,
    ).toBe('https://bucket.r2.example/k');
  });

  it('refuses bad options with InvalidArgumentError', () => {
    const base: S3Options = { bucket: 'b', key: 'k', credentials };
    expect(() => s3({ ...base, key: 'a/../b' })).toThrow(InvalidArgumentError);
    expect(() => s3({ ...base, key: '' })).toThrow(InvalidArgumentError);
    expect(() => s3({ ...base, endpoint: 'ftp://x' })).toThrow(InvalidArgumentError);
    expect(() => s3({ ...base, maxParallel: 0 })).toThrow(InvalidArgumentError);
    expect(() => s3({ ...base, checksum: 'sha1' as never })).toThrow(InvalidArgumentError);
  });

  it('fails with ProtocolError instead of paging forever when ListParts’ marker does not advance', async () => {
    let lists = 0;
    const fake: FetchLike = async (url) => {
      if (url.includes('uploads')) {
        return new Response(
          '<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>',
        );
      }
      lists++;
      return new Response(
        '<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>0</NextPartNumberMarker></ListPartsResult>',
      );
    };
    const session = await s3({
      endpoint: 'http://s3.test',
      bucket: 'b',
      key: 'k',
      credentials,
      fetch: fake,
    }).open(openOptions());
    await expect(session.acknowledged(live())).rejects.toThrow(ProtocolError);
    expect(lists).toBe(1);
  });

  it('explains a missing ETag header (a browser bucket without CORS ExposeHeaders)', async () => {
    const fake: FetchLike = async (url) =>
      url.includes('uploads')
        ? new Response(
            '<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>',
          )
        : new Response(null, { status: 200 });
    const session = await s3({
      endpoint: 'http://s3.test',
      bucket: 'b',
      key: 'k',
      credentials,
      fetch: fake,
    }).open(openOptions());
    const [chunk] = chunksOf(new Uint8Array(10));
    await expect(session.send(chunk!, { signal: live() })).rejects.toThrow(/ETag.*CORS/);
  });
});
