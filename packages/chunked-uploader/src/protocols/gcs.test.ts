import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GcsResumableServer, startGcsResumableServer } from '../../test/gcs-resumable-server';
import { Checksum } from '../lib/checksum';
import {
  ChecksumMismatchError,
  HttpError,
  InvalidArgumentError,
  OffsetConflictError,
} from '../lib/errors';
import type {
  Acknowledged,
  ChunkPayload,
  OpenOptions,
  ProtocolSession,
  UploadProtocol,
} from '../lib/types';
import { calculatedCrc32c, type GcsOptions, gcs } from './gcs';

const KiB = 1024;
const MULTIPLE = 256 * KiB;

let server: GcsResumableServer;
beforeAll(async () => {
  server = await startGcsResumableServer();
});
afterAll(async () => {
  await server.close();
});

function protocol(options: Partial<GcsOptions> = {}): UploadProtocol {
  return gcs({ endpoint: server.endpoint, bucket: 'media', name: 'videos/a b.mp4', ...options });
}

function openOptions(size: number | undefined, extra: Partial<OpenOptions> = {}): OpenOptions {
  return {
    size,
    fingerprint: 'test',
    metadata: {},
    contentType: undefined,
    signal: new AbortController().signal,
    ...extra,
  };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function offsetOf(ack: Acknowledged): number {
  if (ack.placement !== 'offset') throw new Error('GCS acknowledges offsets, not parts');
  return ack.offset;
}

function sessionUri(session: ProtocolSession): string {
  return (session.state as { sessionUri: string }).sessionUri;
}

/**
 * Drives a session the way the engine does: from the server's offset, in
 * chunks of `chunkSize`, sending the rest again when the server kept only
 * part of a chunk. `knownSize: false` leaves `totalSize` unknown until the
 * last chunk.
 */
async function uploadAll(
  session: ProtocolSession,
  data: Uint8Array,
  chunkSize: number,
  { knownSize = true, from }: { knownSize?: boolean; from?: number } = {},
): Promise<number> {
  const signal = new AbortController().signal;
  let offset = from ?? offsetOf(await session.acknowledged(signal));
  let requests = 0;
  while (offset < data.length || requests === 0) {
    const end = Math.min(data.length, offset + chunkSize);
    const last = end === data.length;
    const chunk: ChunkPayload = {
      index: Math.floor(offset / chunkSize),
      offset,
      bytes: data.subarray(offset, end),
      last,
      totalSize: knownSize || last ? data.length : undefined,
    };
    const receipt = await session.send(chunk, { signal });
    requests++;
    expect(receipt.offset).toBeGreaterThan(offset);
    offset = receipt.offset!;
  }
  return requests;
}

describe('gcs() resumable uploads', () => {
  it('uploads in 256 KiB multiples with Content-Range, validates the CRC32C and reports the object digests', async () => {
    const data = randomBytes(3 * MULTIPLE + 1000);
    let tokenCalls = 0;
    const p = protocol({
      getAccessToken: () => {
        tokenCalls++;
        return 'token-1';
      },
      contentType: 'video/mp4',
      metadata: { owner: 'test' },
    });
    server.requiredToken = 'token-1';
    try {
      const session = await p.open(openOptions(data.length, { metadata: { filename: 'a.mp4' } }));
      expect(session.capabilities).toMatchObject({
        placement: 'offset',
        maxParallel: 1,
        chunkMultiple: MULTIPLE,
        minChunkSize: MULTIPLE,
        deferredLength: true,
        maxChunks: Number.POSITIVE_INFINITY,
        digests: ['crc32c', 'md5'],
      });
      const uri = sessionUri(session);
      expect(await uploadAll(session, data, 2 * MULTIPLE)).toBe(2);
      expect(sha256(server.bytes(uri))).toBe(sha256(data));

      const puts = server.requests.filter(
        (r) => r.uploadId === server.session(uri).id && r.method === 'PUT',
      );
      expect(puts.map((r) => r.contentRange)).toEqual([
        `bytes */${data.length}`, // the engine's first acknowledged()
        `bytes 0-524287/${data.length}`,
        `bytes 524288-${data.length - 1}/${data.length}`,
      ]);
      const crc32c = (await Checksum.of('crc32c', data)).base64();
      expect(puts.at(-1)!.googHash).toBe(`crc32c=${crc32c}`);
      expect(puts.slice(0, -1).every((r) => r.googHash === undefined)).toBe(true);
      expect(puts.every((r) => r.authorization === 'Bearer token-1')).toBe(true);
      expect(tokenCalls).toBe(4);

      const info = await session.complete([], new AbortController().signal);
      expect(info.digests).toEqual({
        md5: createHash('md5').update(data).digest('base64'),
        crc32c,
      });
      expect(info.location).toBe(`${server.endpoint}/storage/v1/b/media/o/videos%2Fa%20b.mp4`);
      expect(info.etag).toBe(server.session(uri).object!.etag);
      expect(server.session(uri).object).toMatchObject({
        name: 'videos/a b.mp4',
        contentType: 'video/mp4',
        metadata: { filename: 'a.mp4', owner: 'test' },
      });
    } finally {
      server.requiredToken = undefined;
    }
  });

  it('starts a session only with a valid token: 401 is a typed, non-retryable error', async () => {
    server.requiredToken = 'right';
    try {
      const error = await protocol({ accessToken: 'wrong' })
        .open(openOptions(10))
        .catch((e: unknown) => e);
      expect(HttpError.isInstance(error) && error.status).toBe(401);
      expect((error as HttpError).retryable).toBe(false);
    } finally {
      server.requiredToken = undefined;
    }
  });

  it('sends bytes a-b/* while the size is unknown and declares the total with the last chunk', async () => {
    const data = randomBytes(2 * MULTIPLE + 123);
    const session = await protocol().open(openOptions(undefined));
    const uri = sessionUri(session);
    await uploadAll(session, data, MULTIPLE, { knownSize: false, from: 0 });
    const ranges = server.requests
      .filter((r) => r.uploadId === server.session(uri).id)
      .map((r) => r.contentRange);
    expect(ranges).toEqual([
      'bytes 0-262143/*',
      'bytes 262144-524287/*',
      `bytes 524288-${data.length - 1}/${data.length}`,
    ]);
    expect(sha256(server.bytes(uri))).toBe(sha256(data));
    expect(server.session(uri).object).toBeDefined();
    expect((session.state as { size: number }).size).toBe(data.length);
  });

  it('finishes an unknown-size upload that ended on a chunk boundary with an empty bytes */total', async () => {
    const data = randomBytes(2 * MULTIPLE);
    const session = await protocol().open(openOptions(undefined));
    const uri = sessionUri(session);
    const signal = new AbortController().signal;
    for (const offset of [0, MULTIPLE]) {
      const bytes = data.subarray(offset, offset + MULTIPLE);
      await session.send(
        { index: offset / MULTIPLE, offset, bytes, last: false, totalSize: undefined },
        { signal },
      );
    }
    expect(server.session(uri).object).toBeUndefined();
    const receipt = await session.send(
      {
        index: 2,
        offset: data.length,
        bytes: new Uint8Array(0),
        last: true,
        totalSize: data.length,
      },
      { signal },
    );
    expect(receipt.offset).toBe(data.length);
    expect(server.requests.at(-1)!.contentRange).toBe(`bytes */${data.length}`);
    expect(server.requests.at(-1)!.googHash).toBe(
      `crc32c=${(await Checksum.of('crc32c', data)).base64()}`,
    );
    const info = await session.complete([], signal);
    expect(info.digests?.md5).toBe(createHash('md5').update(data).digest('base64'));
  });

  it('returns the server offset when only part of a chunk was persisted, and the rest is sent again', async () => {
    const data = randomBytes(4 * MULTIPLE + 77);
    const session = await protocol().open(openOptions(data.length));
    const uri = sessionUri(session);
    const signal = new AbortController().signal;
    server.acceptPartialNext = MULTIPLE;
    const receipt = await session.send(
      {
        index: 0,
        offset: 0,
        bytes: data.subarray(0, 3 * MULTIPLE),
        last: false,
        totalSize: data.length,
      },
      { signal },
    );
    expect(receipt.offset).toBe(MULTIPLE);
    expect(await session.acknowledged(signal)).toEqual({ placement: 'offset', offset: MULTIPLE });
    await uploadAll(session, data, 3 * MULTIPLE, { from: MULTIPLE });
    expect(sha256(server.bytes(uri))).toBe(sha256(data));
    // The running CRC32C followed the 256 KiB the server kept, not the 768 KiB
    // sent, or the server would have refused the final chunk's x-goog-hash.
    const final = server.requests.filter((r) => r.uploadId === server.session(uri).id).at(-1)!;
    expect(final.googHash).toBe(`crc32c=${(await Checksum.of('crc32c', data)).base64()}`);
    expect(final.status).toBe(200);
  });

  it('resumes from a new process with the status check, and still validates the whole object', async () => {
    const data = randomBytes(5 * MULTIPLE + 5);
    const first = await protocol().open(openOptions(data.length));
    const uri = sessionUri(first);
    const signal = new AbortController().signal;
    for (const offset of [0, MULTIPLE]) {
      await first.send(
        {
          index: offset / MULTIPLE,
          offset,
          bytes: data.subarray(offset, offset + MULTIPLE),
          last: false,
          totalSize: data.length,
        },
        { signal },
      );
    }
    const saved: unknown = JSON.parse(JSON.stringify(first.state));

    const second = await protocol().resume(saved as never, openOptions(data.length));
    expect(second).toBeDefined();
    expect(await second!.acknowledged(signal)).toEqual({
      placement: 'offset',
      offset: 2 * MULTIPLE,
    });
    expect(server.requests.at(-1)!.contentRange).toBe(`bytes */${data.length}`);
    await uploadAll(second!, data, 2 * MULTIPLE, { from: 2 * MULTIPLE });
    expect(sha256(server.bytes(uri))).toBe(sha256(data));
    expect(server.requests.at(-1)!.googHash).toBe(
      `crc32c=${(await Checksum.of('crc32c', data)).base64()}`,
    );
    const info = await second!.complete([], signal);
    expect(info.digests?.crc32c).toBe((await Checksum.of('crc32c', data)).base64());
  });

  it('resumes a state saved before the last acknowledgements without a stale x-goog-hash', async () => {
    const data = randomBytes(2 * MULTIPLE + 9);
    const first = await protocol().open(openOptions(data.length));
    const saved: unknown = JSON.parse(JSON.stringify(first.state)); // saved right after open, like the engine
    const signal = new AbortController().signal;
    await first.send(
      {
        index: 0,
        offset: 0,
        bytes: data.subarray(0, MULTIPLE),
        last: false,
        totalSize: data.length,
      },
      { signal },
    );
    const second = (await protocol().resume(saved as never, openOptions(data.length)))!;
    await uploadAll(second, data, 2 * MULTIPLE);
    const final = server.requests.at(-1)!;
    expect(final.status).toBe(200);
    expect(final.googHash).toBeUndefined();
    expect((await second.complete([], signal)).digests?.md5).toBe(
      createHash('md5').update(data).digest('base64'),
    );
  });

  it('resumes a session that already finished: the whole size is acknowledged and complete() reports it', async () => {
    const data = randomBytes(1000);
    const first = await protocol().open(openOptions(data.length));
    await uploadAll(first, data, MULTIPLE);
    const sends = server.requests.length;
    const second = (await protocol().resume(
      JSON.parse(JSON.stringify(first.state)),
      openOptions(data.length),
    ))!;
    expect(await second.acknowledged(new AbortController().signal)).toEqual({
      placement: 'offset',
      offset: data.length,
    });
    const info = await second.complete([], new AbortController().signal);
    expect(info.digests?.md5).toBe(createHash('md5').update(data).digest('base64'));
    expect(server.requests.slice(sends).every((r) => r.bodyLength === 0)).toBe(true);
  });

  it.each([404, 410] as const)(
    'resolves resume() to undefined when the session expired (%i)',
    async (status) => {
      const session = await protocol().open(openOptions(10 * MULTIPLE));
      server.expire(sessionUri(session), status);
      expect(await protocol().resume(session.state, openOptions(10 * MULTIPLE))).toBeUndefined();
      const error = await session
        .acknowledged(new AbortController().signal)
        .catch((e: unknown) => e);
      expect(HttpError.isInstance(error) && error.status).toBe(status);
    },
  );

  it('refuses a state that is not a GCS session with a typed error', async () => {
    await expect(protocol().resume({ url: 'x' }, openOptions(1))).rejects.toSatisfy(
      InvalidArgumentError.isInstance,
    );
  });

  it('surfaces the server refusing a chunk that is not a multiple of 256 KiB as a non-retryable HttpError', async () => {
    const data = randomBytes(MULTIPLE);
    const session = await protocol().open(openOptions(data.length));
    const error = await session
      .send(
        {
          index: 0,
          offset: 0,
          bytes: data.subarray(0, 100_000),
          last: false,
          totalSize: data.length,
        },
        { signal: new AbortController().signal },
      )
      .catch((e: unknown) => e);
    expect(HttpError.isInstance(error)).toBe(true);
    expect((error as HttpError).status).toBe(400);
    expect((error as HttpError).retryable).toBe(false);
    expect((error as HttpError).message).toMatch(/multiple of 256 KiB/);
    expect(server.session(sessionUri(session)).storedLength).toBe(0);
  });

  it('turns a chunk from the wrong offset into an OffsetConflictError with the server offset', async () => {
    const data = randomBytes(4 * MULTIPLE);
    const session = await protocol().open(openOptions(data.length));
    const signal = new AbortController().signal;
    await session.send(
      {
        index: 0,
        offset: 0,
        bytes: data.subarray(0, MULTIPLE),
        last: false,
        totalSize: data.length,
      },
      { signal },
    );
    const error = await session
      .send(
        {
          index: 2,
          offset: 2 * MULTIPLE,
          bytes: data.subarray(2 * MULTIPLE, 3 * MULTIPLE),
          last: false,
          totalSize: data.length,
        },
        { signal },
      )
      .catch((e: unknown) => e);
    expect(OffsetConflictError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({
      clientOffset: 2 * MULTIPLE,
      serverOffset: MULTIPLE,
      retryable: true,
    });
    expect(HttpError.isInstance((error as Error).cause)).toBe(true);
  });

  it('treats a 308 that stores less than the chunk started from as an OffsetConflictError', async () => {
    // A server that lost bytes: only a fetch double can make ours say so.
    const lost: typeof fetch = async (input, init) =>
      init?.method === 'PUT' && init.body !== undefined
        ? new Response(null, { status: 308, headers: { range: 'bytes=0-99' } })
        : fetch(input, init);
    const session = await protocol({ fetch: lost }).open(openOptions(4 * MULTIPLE));
    const error = await session
      .send(
        {
          index: 1,
          offset: MULTIPLE,
          bytes: randomBytes(MULTIPLE),
          last: false,
          totalSize: 4 * MULTIPLE,
        },
        { signal: new AbortController().signal },
      )
      .catch((e: unknown) => e);
    expect(OffsetConflictError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ clientOffset: MULTIPLE, serverOffset: 100 });
  });

  it.each([
    { status: 503, retryAfter: '3', ms: 3000 },
    { status: 429, retryAfter: '1', ms: 1000 },
  ])(
    'makes $status with Retry-After a retryable HttpError, and the retry succeeds',
    async ({ status, retryAfter, ms }) => {
      const data = randomBytes(MULTIPLE + 1);
      const session = await protocol().open(openOptions(data.length));
      const chunk: ChunkPayload = {
        index: 0,
        offset: 0,
        bytes: data.subarray(0, MULTIPLE),
        last: false,
        totalSize: data.length,
      };
      const signal = new AbortController().signal;
      server.failNext.push({ status, retryAfter });
      const error = await session.send(chunk, { signal }).catch((e: unknown) => e);
      expect(HttpError.isInstance(error)).toBe(true);
      expect(error).toMatchObject({ status, retryable: true, retryAfterMs: ms });
      expect((await session.send(chunk, { signal })).offset).toBe(MULTIPLE);
    },
  );

  it('cancels with DELETE (499), after which the session cannot be resumed', async () => {
    const data = randomBytes(MULTIPLE);
    const session = await protocol().open(openOptions(2 * MULTIPLE));
    const uri = sessionUri(session);
    const signal = new AbortController().signal;
    await session.send(
      { index: 0, offset: 0, bytes: data, last: false, totalSize: 2 * MULTIPLE },
      { signal },
    );
    await session.terminate(signal);
    expect(server.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 499 });
    expect(server.session(uri).goneStatus).toBe(499);
    expect(await protocol().resume(session.state, openOptions(2 * MULTIPLE))).toBeUndefined();
    await expect(session.terminate(signal)).resolves.toBeUndefined();
  });

  it('reads the calculated CRC32C out of the 400 message, even one starting with a slash', () => {
    const message =
      'HTTP 400: Provided CRC32C "AAAAAA==" doesn\'t match calculated CRC32C "/xYkfQ==".';
    expect(calculatedCrc32c(message)).toBe('/xYkfQ==');
    expect(calculatedCrc32c('calculated crc32c: +a9Z')).toBe('+a9Z');
    expect(calculatedCrc32c('{"message":"... calculated CRC32C \\"/a+b==\\"."}')).toBe('/a+b==');
    expect(calculatedCrc32c('no checksum here')).toBeUndefined();
  });

  it('reports a corrupted object as a ChecksumMismatchError instead of letting it be created', async () => {
    const data = randomBytes(MULTIPLE + 500);
    const session = await protocol().open(openOptions(data.length));
    const uri = sessionUri(session);
    server.corruptNext = true;
    const error = await uploadAll(session, data, MULTIPLE).catch((e: unknown) => e);
    expect(ChecksumMismatchError.isInstance(error)).toBe(true);
    const expected = (await Checksum.of('crc32c', data)).base64();
    expect(error).toMatchObject({ algorithm: 'crc32c', expected });
    expect((error as ChecksumMismatchError).actual).toBe(
      (await Checksum.of('crc32c', server.bytes(uri))).base64(),
    );
    expect(server.session(uri).object).toBeUndefined();
  });

  it('with checksum: false sends no x-goog-hash, and the reported digests expose a corruption', async () => {
    const data = randomBytes(MULTIPLE + 500);
    const session = await protocol({ checksum: false }).open(openOptions(data.length));
    server.corruptNext = true;
    await uploadAll(session, data, MULTIPLE);
    expect(server.requests.at(-1)!.googHash).toBeUndefined();
    const info = await session.complete([], new AbortController().signal);
    expect(info.digests?.md5).not.toBe(createHash('md5').update(data).digest('base64'));
    expect(info.digests?.crc32c).not.toBe((await Checksum.of('crc32c', data)).base64());
  });

  it('uploads to a session URI created elsewhere, without credentials, and reads XML API hashes', async () => {
    const data = randomBytes(MULTIPLE + 3);
    const created = await protocol({ accessToken: 'server-side' }).open(openOptions(data.length));
    const uri = sessionUri(created);
    const posts = server.requests.filter((r) => r.method === 'POST').length;
    const browser = gcs({ sessionUri: uri });
    expect(browser.target).toBe(uri);
    const session = await browser.open(openOptions(data.length));
    server.xmlFinalize = true;
    try {
      await uploadAll(session, data, MULTIPLE);
      const info = await session.complete([], new AbortController().signal);
      expect(info.digests).toEqual({
        crc32c: (await Checksum.of('crc32c', data)).base64(),
        md5: createHash('md5').update(data).digest('base64'),
      });
      expect(info.etag).toMatch(/^".+"$/);
    } finally {
      server.xmlFinalize = false;
    }
    expect(server.requests.filter((r) => r.method === 'POST').length).toBe(posts);
    expect(
      server.requests
        .filter((r) => r.uploadId === server.session(uri).id)
        .every((r) => r.authorization === undefined),
    ).toBe(true);
    expect(sha256(server.bytes(uri))).toBe(sha256(data));
  });

  it('refuses to complete a session the server has not finished', async () => {
    const session = await protocol().open(openOptions(2 * MULTIPLE));
    await expect(session.complete([], new AbortController().signal)).rejects.toThrow(
      /not finished.*0 of 524288/,
    );
  });

  it('needs a bucket and a name, or a session URI', () => {
    expect(() => gcs({ bucket: 'b' })).toThrow(InvalidArgumentError);
    expect(() => gcs({ name: 'o' })).toThrow(/bucket and an object name, or a sessionUri/);
    expect(gcs({ bucket: 'b', name: 'a/b' }).target).toBe(
      'https://storage.googleapis.com/storage/v1/b/b/o/a%2Fb',
    );
  });
});
