import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpPutServer, startHttpPutServer } from '../../test/http-put-server';
import { HttpError, InvalidArgumentError, OffsetConflictError } from '../lib/errors';
import type { ChunkPayload, OpenOptions, ProtocolSession, UploadProtocol } from '../lib/types';
import { type HttpPutOptions, httpPut, reprDigest } from './http-put';

let server: HttpPutServer;
beforeAll(async () => {
  server = await startHttpPutServer();
});
afterAll(async () => {
  await server.close();
});

let counter = 0;
function fresh(options: Partial<HttpPutOptions> = {}): { path: string; protocol: UploadProtocol } {
  const path = `/files/${++counter}.bin`;
  return { path, protocol: httpPut({ url: `${server.origin}${path}`, ...options }) };
}

function openOptions(size: number | undefined, contentType?: string): OpenOptions {
  return {
    size,
    fingerprint: 'test',
    metadata: {},
    contentType,
    signal: new AbortController().signal,
  };
}

function sha256(bytes: Uint8Array, encoding: 'hex' | 'base64' = 'hex'): string {
  return createHash('sha256').update(bytes).digest(encoding);
}

const signal = new AbortController().signal;

/** Sends `data` from `from` in chunks, resending the rest when the server kept part of one. */
async function uploadAll(
  session: ProtocolSession,
  data: Uint8Array,
  chunkSize: number,
  { knownSize = true, from = 0 }: { knownSize?: boolean; from?: number } = {},
): Promise<void> {
  let offset = from;
  do {
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
    expect(receipt.offset).toBeGreaterThan(offset);
    offset = receipt.offset!;
  } while (offset < data.length);
}

describe('httpPut() partial PUT uploads', () => {
  it('PUTs chunks with Content-Range and reports the Repr-Digest SHA-256 of the result', async () => {
    const data = randomBytes(300_001);
    const { path, protocol } = fresh({ headers: { authorization: 'Bearer t' } });
    const session = await protocol.open(openOptions(data.length, 'video/mp4'));
    expect(session.capabilities).toMatchObject({
      placement: 'offset',
      maxParallel: 1,
      chunkMultiple: 1,
      deferredLength: true,
      digests: ['sha256'],
    });
    expect(await session.acknowledged(signal)).toEqual({ placement: 'offset', offset: 0 });
    const before = server.requests.length;
    await uploadAll(session, data, 100_000);
    const puts = server.requests.slice(before);
    expect(puts.map((r) => r.contentRange)).toEqual([
      'bytes 0-99999/300001',
      'bytes 100000-199999/300001',
      'bytes 200000-299999/300001',
      'bytes 300000-300000/300001',
    ]);
    expect(puts.map((r) => r.status)).toEqual([204, 204, 204, 201]);
    expect(puts.every((r) => r.authorization === 'Bearer t')).toBe(true);
    expect(sha256(server.bytes(path))).toBe(sha256(data));
    expect(server.resources.get(path)!.contentType).toBe('video/mp4');
    const info = await session.complete([], signal);
    expect(info.digests).toEqual({ sha256: sha256(data, 'base64') });
    expect(info.location).toBe(`${server.origin}${path}`);
    expect(info.etag).toBe(`"${sha256(data, 'base64').slice(0, 16)}"`);
  });

  it('starts a new upload at 0 even where an older resource exists, overwriting it', async () => {
    const { path, protocol } = fresh();
    const old = randomBytes(5000);
    await uploadAll(await protocol.open(openOptions(old.length)), old, 5000);
    const data = randomBytes(3000);
    const session = await protocol.open(openOptions(data.length));
    expect(await session.acknowledged(signal)).toEqual({ placement: 'offset', offset: 0 });
    await uploadAll(session, data, 1000);
    expect(sha256(server.bytes(path))).toBe(sha256(data));
  });

  it('sends bytes a-b/* while the size is unknown, and an empty bytes */total at a chunk boundary', async () => {
    const data = randomBytes(2000);
    const { path, protocol } = fresh();
    const session = await protocol.open(openOptions(undefined));
    const before = server.requests.length;
    for (const offset of [0, 1000]) {
      await session.send(
        {
          index: offset / 1000,
          offset,
          bytes: data.subarray(offset, offset + 1000),
          last: false,
          totalSize: undefined,
        },
        { signal },
      );
    }
    await session.send(
      { index: 2, offset: 2000, bytes: new Uint8Array(0), last: true, totalSize: 2000 },
      { signal },
    );
    expect(server.requests.slice(before).map((r) => r.contentRange)).toEqual([
      'bytes 0-999/*',
      'bytes 1000-1999/*',
      'bytes */2000',
    ]);
    expect(server.resources.get(path)!.complete).toBe(true);
    expect((await session.complete([], signal)).digests?.sha256).toBe(sha256(data, 'base64'));
  });

  it('follows a 308 Range when the server kept only part of a chunk', async () => {
    const data = randomBytes(10_000);
    const { path, protocol } = fresh();
    const session = await protocol.open(openOptions(data.length));
    server.acceptPartialNext = 1234;
    const receipt = await session.send(
      { index: 0, offset: 0, bytes: data.subarray(0, 4000), last: false, totalSize: data.length },
      { signal },
    );
    expect(receipt.offset).toBe(1234);
    await uploadAll(session, data, 4000, { from: 1234 });
    expect(sha256(server.bytes(path))).toBe(sha256(data));
  });

  it('resumes from HEAD in a new process, and reads the digest from HEAD when the last answer had none', async () => {
    const data = randomBytes(50_000);
    const { path, protocol } = fresh({ offsetHeader: 'X-Stored-Length' });
    const first = await protocol.open(openOptions(data.length));
    for (const offset of [0, 10_000]) {
      const bytes = data.subarray(offset, offset + 10_000);
      await first.send(
        { index: offset / 10_000, offset, bytes, last: false, totalSize: data.length },
        { signal },
      );
    }
    const saved: unknown = JSON.parse(JSON.stringify(first.state));

    const second = await fresh()
      .protocol.resume(saved as never, openOptions(data.length))
      .catch((e: unknown) => e);
    expect(InvalidArgumentError.isInstance(second)).toBe(true); // another URL's state

    const resumed = (await httpPut({
      url: `${server.origin}${path}`,
      offsetHeader: 'X-Stored-Length',
    }).resume(saved as never, openOptions(data.length)))!;
    expect(await resumed.acknowledged(signal)).toEqual({ placement: 'offset', offset: 20_000 });
    expect(server.requests.at(-1)!.method).toBe('HEAD');
    server.digestOnPut = false;
    try {
      await uploadAll(resumed, data, 15_000, { from: 20_000 });
    } finally {
      server.digestOnPut = true;
    }
    expect(sha256(server.bytes(path))).toBe(sha256(data));
    const info = await resumed.complete([], signal);
    expect(server.requests.at(-1)!.method).toBe('HEAD');
    expect(info.digests).toEqual({ sha256: sha256(data, 'base64') });
  });

  it('resolves resume() to undefined when the resource is gone', async () => {
    const { protocol } = fresh();
    const session = await protocol.open(openOptions(10));
    expect(await protocol.resume(session.state, openOptions(10))).toBeUndefined();
  });

  it('turns 409 on a wrong offset into an OffsetConflictError with the stored length from HEAD', async () => {
    const data = randomBytes(3000);
    const { protocol } = fresh();
    const session = await protocol.open(openOptions(data.length));
    await session.send(
      { index: 0, offset: 0, bytes: data.subarray(0, 1000), last: false, totalSize: 3000 },
      { signal },
    );
    const error = await session
      .send(
        { index: 2, offset: 2000, bytes: data.subarray(2000), last: true, totalSize: 3000 },
        { signal },
      )
      .catch((e: unknown) => e);
    expect(OffsetConflictError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ clientOffset: 2000, serverOffset: 1000, retryable: true });
    expect((error as Error).cause).toMatchObject({ status: 409 });
    expect(await session.acknowledged(signal)).toEqual({ placement: 'offset', offset: 1000 });
  });

  it('treats a 308 that stores less than the chunk started from as an OffsetConflictError', async () => {
    const lost: typeof fetch = async () =>
      new Response(null, { status: 308, headers: { range: 'bytes=0-9' } });
    const session = await httpPut({ url: `${server.origin}/lost`, fetch: lost }).open(
      openOptions(300),
    );
    const error = await session
      .send(
        { index: 1, offset: 100, bytes: randomBytes(100), last: false, totalSize: 300 },
        { signal },
      )
      .catch((e: unknown) => e);
    expect(OffsetConflictError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ clientOffset: 100, serverOffset: 10 });
  });

  it('makes 503 with Retry-After a retryable HttpError, and the retry succeeds', async () => {
    const data = randomBytes(100);
    const { path, protocol } = fresh();
    const session = await protocol.open(openOptions(data.length));
    const chunk: ChunkPayload = {
      index: 0,
      offset: 0,
      bytes: data,
      last: true,
      totalSize: data.length,
    };
    server.failNext.push({ status: 503, retryAfter: '7' });
    const error = await session.send(chunk, { signal }).catch((e: unknown) => e);
    expect(HttpError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ status: 503, retryable: true, retryAfterMs: 7000 });
    await session.send(chunk, { signal });
    expect(sha256(server.bytes(path))).toBe(sha256(data));
  });

  it('deletes the resource on terminate, and a second terminate is harmless', async () => {
    const data = randomBytes(100);
    const { path, protocol } = fresh();
    const session = await protocol.open(openOptions(200));
    await session.send(
      { index: 0, offset: 0, bytes: data, last: false, totalSize: 200 },
      { signal },
    );
    await session.terminate(signal);
    expect(server.resources.has(path)).toBe(false);
    await expect(session.terminate(signal)).resolves.toBeUndefined();
  });

  it('refuses to complete what the server has not finished', async () => {
    const { protocol } = fresh();
    const session = await protocol.open(openOptions(200));
    await session.send(
      { index: 0, offset: 0, bytes: randomBytes(100), last: false, totalSize: 200 },
      { signal },
    );
    await expect(session.complete([], signal)).rejects.toThrow(/not finished.*100 of 200/);
  });

  it('validates its options', () => {
    expect(() => httpPut({ url: '/relative' })).toThrow(InvalidArgumentError);
    expect(() => httpPut({ url: 'http://x/', maxChunkSize: 0 })).toThrow(/maxChunkSize/);
  });

  it('advertises deferred length and the chunk ceiling as configured', async () => {
    const session = await httpPut({
      url: 'http://x/a',
      deferredLength: false,
      maxChunkSize: 4096,
    }).open(openOptions(10));
    expect(session.capabilities).toMatchObject({ deferredLength: false, maxChunkSize: 4096 });
  });

  it('parses Repr-Digest dictionaries and ignores other algorithms', () => {
    expect(
      reprDigest('sha-512=:AAAA:, sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:'),
    ).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
    expect(reprDigest('sha-512=:AAAA:')).toBeUndefined();
    expect(reprDigest(null)).toBeUndefined();
  });
});
