import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chunksOf,
  never,
  openOptions,
  sendInOrder,
  sha256,
  sourceBytes,
} from '../../test/tus-helpers';
import { startTusNodeServer, type TusNodeServer } from '../../test/tus-node-server';
import {
  HttpError,
  InvalidArgumentError,
  OffsetConflictError,
  UploadAbortedError,
} from '../lib/errors';
import type { JsonValue } from '../lib/types';
import { tus } from './tus';
import { decodeMetadata } from './tus-wire';

const CHUNK = 256 * 1024;

let server: TusNodeServer;

beforeAll(async () => {
  server = await startTusNodeServer();
});

afterAll(async () => {
  await server.close();
});

/** Requests the server saw from index `from` on. */
const since = (from: number) => server.requests.slice(from);

async function rawHead(url: string): Promise<Response> {
  return fetch(url, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } });
}

describe('tus against @tus/server', () => {
  it('discovers what the server advertises, once per protocol instance', async () => {
    const protocol = tus({ endpoint: server.endpoint });
    const before = server.requests.length;
    const info = await protocol.discover();
    await protocol.discover();
    expect(info.versions).toContain('1.0.0');
    expect(info.extensions).toEqual(
      expect.arrayContaining([
        'creation',
        'creation-with-upload',
        'creation-defer-length',
        'termination',
        'expiration',
      ]),
    );
    // @tus/server 2.4.5 implements neither: see test/tus-spec-server.ts for those.
    expect(info.extensions).not.toContain('checksum');
    expect(info.extensions).not.toContain('concatenation');
    const options = since(before).filter((r) => r.method === 'OPTIONS');
    expect(options).toHaveLength(1);
    // The spec: "The Client SHOULD NOT include the Tus-Resumable header in the [OPTIONS] request".
    expect(options[0]?.headers['tus-resumable']).toBeUndefined();
  });

  it('uploads a multi-chunk file with POST then PATCHes; the stored bytes are the source', async () => {
    const bytes = sourceBytes(4 * CHUNK + 12_345);
    const protocol = tus({ endpoint: server.endpoint, creationWithUpload: false });
    const before = server.requests.length;
    const session = await protocol.open(openOptions(bytes.length));
    expect(session.mode).toBe('core');
    expect(session.capabilities).toMatchObject({
      placement: 'offset',
      maxParallel: 1,
      deferredLength: true,
    });
    expect(session.url).toMatch(new RegExp(`^${server.endpoint}[^/]+$`));

    const sent = await sendInOrder(session, chunksOf(bytes, CHUNK));
    expect(sent).toBe(bytes.length);
    expect(await session.acknowledged(never)).toEqual({
      placement: 'offset',
      offset: bytes.length,
    });
    const done = await session.complete([], never);
    expect(done).toEqual({ location: session.url });
    expect(done.digests).toBeUndefined();
    expect(await server.storedSha256(session.url as string)).toBe(sha256(bytes));

    const seen = since(before);
    const post = seen.find((r) => r.method === 'POST');
    expect(post?.headers['upload-length']).toBe(String(bytes.length));
    expect(post?.headers['tus-resumable']).toBe('1.0.0');
    const patches = seen.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(5);
    expect(patches.map((p) => p.headers['upload-offset'])).toEqual(
      [0, 1, 2, 3, 4].map((i) => String(i * CHUNK)),
    );
    for (const p of patches) {
      expect(p.headers['content-type']).toBe('application/offset+octet-stream');
      expect(p.headers['tus-resumable']).toBe('1.0.0');
    }
  });

  it('streams large chunks with fine-grained progress and the same stored bytes', async () => {
    const big = 4 * CHUNK;
    const bytes = sourceBytes(2 * big + 1);
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(bytes.length));
    const calls: number[] = [];
    for (const chunk of chunksOf(bytes, big)) {
      await session.send(chunk, { signal: never, onBytesSent: (n) => calls.push(n) });
    }
    await session.complete([], never);
    expect(calls.reduce((a, b) => a + b, 0)).toBe(bytes.length);
    // More reports than requests: progress within a chunk, not once per chunk.
    expect(calls.length).toBeGreaterThan(3);
    expect(await server.storedSha256(session.url as string)).toBe(sha256(bytes));
  });

  it('sends the first chunk in the creation POST (creation-with-upload)', async () => {
    const bytes = sourceBytes(3 * CHUNK + 7);
    const protocol = tus({ endpoint: server.endpoint });
    const before = server.requests.length;
    const session = await protocol.open(openOptions(bytes.length));
    // Creation waits for the first chunk, so the POST can carry it.
    expect(session.url).toBeUndefined();
    expect(session.state).toMatchObject({ url: null });
    expect(await session.acknowledged(never)).toEqual({ placement: 'offset', offset: 0 });

    await sendInOrder(session, chunksOf(bytes, CHUNK));
    await session.complete([], never);
    expect(await server.storedSha256(session.url as string)).toBe(sha256(bytes));
    const seen = since(before);
    const post = seen.find((r) => r.method === 'POST');
    expect(post?.headers['content-length']).toBe(String(CHUNK));
    expect(post?.headers['content-type']).toBe('application/offset+octet-stream');
    expect(seen.filter((r) => r.method === 'PATCH')).toHaveLength(3);
  });

  it('defers the length when the size is unknown and declares it with the last chunk', async () => {
    const bytes = sourceBytes(3 * CHUNK + 99);
    const protocol = tus({ endpoint: server.endpoint, creationWithUpload: false });
    const before = server.requests.length;
    const session = await protocol.open(openOptions(undefined));
    const chunks = chunksOf(bytes, CHUNK, { knownSize: false });
    await session.send(chunks[0]!, { signal: never });
    const mid = await rawHead(session.url as string);
    expect(mid.headers.get('upload-defer-length')).toBe('1');
    expect(mid.headers.get('upload-length')).toBeNull();

    await sendInOrder(session, chunks.slice(1));
    const end = await rawHead(session.url as string);
    expect(end.headers.get('upload-length')).toBe(String(bytes.length));
    await session.complete([], never);
    expect(await server.storedSha256(session.url as string)).toBe(sha256(bytes));

    const seen = since(before);
    expect(seen.find((r) => r.method === 'POST')?.headers['upload-defer-length']).toBe('1');
    const patches = seen.filter((r) => r.method === 'PATCH');
    expect(patches.map((p) => p.headers['upload-length'])).toEqual([
      undefined,
      undefined,
      undefined,
      String(bytes.length),
    ]);
  });

  it('defers the length in a creation-with-upload POST too', async () => {
    const bytes = sourceBytes(2 * CHUNK + 5);
    const protocol = tus({ endpoint: server.endpoint });
    const before = server.requests.length;
    const session = await protocol.open(openOptions(undefined));
    await sendInOrder(session, chunksOf(bytes, CHUNK, { knownSize: false }));
    await session.complete([], never);
    expect(await server.storedSha256(session.url as string)).toBe(sha256(bytes));
    const post = since(before).find((r) => r.method === 'POST');
    expect(post?.headers['upload-defer-length']).toBe('1');
    expect(post?.headers['upload-length']).toBeUndefined();
  });

  it('sends Upload-Metadata as base64 pairs the server hands back intact', async () => {
    const bytes = sourceBytes(1000);
    const protocol = tus({
      endpoint: server.endpoint,
      metadata: { album: 'été ✓', flag: '', filename: 'default.bin' },
    });
    const session = await protocol.open(openOptions(bytes.length));
    await sendInOrder(session, chunksOf(bytes, CHUNK));
    const head = await rawHead(session.url as string);
    expect(decodeMetadata(head.headers.get('upload-metadata'))).toEqual({
      album: 'été ✓',
      flag: '',
      filename: 'clip.mp4',
      filetype: 'video/mp4',
    });
  });

  it('refuses invalid metadata keys and options before any request', async () => {
    const before = server.requests.length;
    const protocol = tus({ endpoint: server.endpoint });
    await expect(
      protocol.open(openOptions(10, { metadata: { 'bad key': 'x' } })),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(since(before)).toHaveLength(0);
    expect(() => tus({ endpoint: 'ftp://example.com/files' })).toThrow(InvalidArgumentError);
    expect(() => tus({ endpoint: server.endpoint, checksum: 'sha512' as never })).toThrow(/sha512/);
    expect(() => tus({ endpoint: server.endpoint, maxParallel: 0 })).toThrow(InvalidArgumentError);
  });

  it('never uses concatenation against a server that does not advertise it', async () => {
    const session = await tus({ endpoint: server.endpoint, concatenation: 'auto' }).open(
      openOptions(10),
    );
    expect(session.mode).toBe('core');
    expect(session.capabilities.placement).toBe('offset');
  });

  it('uploads an empty source', async () => {
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(0));
    await session.complete([], never);
    expect((await server.stored(session.url as string)).length).toBe(0);
    expect((await rawHead(session.url as string)).headers.get('upload-length')).toBe('0');
  });

  it('complete() refuses an upload the server does not fully hold', async () => {
    const bytes = sourceBytes(2 * CHUNK);
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(bytes.length));
    await session.send(chunksOf(bytes, CHUNK)[0]!, { signal: never });
    const error = await session.complete([], never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OffsetConflictError);
    expect(error).toMatchObject({ clientOffset: bytes.length, serverOffset: CHUNK });
  });

  it('resumes a persisted state in a new protocol instance from the server offset', async () => {
    const bytes = sourceBytes(4 * CHUNK + 321);
    const chunks = chunksOf(bytes, CHUNK);
    const first = tus({ endpoint: server.endpoint });
    const session = await first.open(openOptions(bytes.length));
    await sendInOrder(session, chunks.slice(0, 2));
    const persisted = JSON.parse(JSON.stringify(session.state)) as JsonValue;

    // A new process: nothing shared but the persisted JSON.
    const before = server.requests.length;
    const second = tus({ endpoint: server.endpoint });
    const resumed = await second.resume(persisted, openOptions(bytes.length));
    expect(resumed?.url).toBe(session.url);
    const ack = await resumed!.acknowledged(never);
    expect(ack).toEqual({ placement: 'offset', offset: 2 * CHUNK });
    await sendInOrder(resumed!, chunksOf(bytes, CHUNK, { from: 2 * CHUNK }));
    await resumed!.complete([], never);
    expect(await server.storedSha256(resumed!.url as string)).toBe(sha256(bytes));
    // Acknowledged bytes were not sent again.
    const patched = since(before)
      .filter((r) => r.method === 'PATCH')
      .reduce((n, r) => n + Number(r.headers['content-length']), 0);
    expect(patched).toBe(bytes.length - 2 * CHUNK);
  });

  it('resume() resolves undefined for stale state', async () => {
    const bytes = sourceBytes(2 * CHUNK);
    const protocol = tus({ endpoint: server.endpoint });
    const session = await protocol.open(openOptions(bytes.length));
    await session.send(chunksOf(bytes, CHUNK)[0]!, { signal: never });
    const state = session.state as Record<string, JsonValue>;

    // Other content: the server's Upload-Length is not the source's size.
    expect(await protocol.resume(state, openOptions(bytes.length + 1))).toBeUndefined();
    // The same content still resumes.
    expect(await protocol.resume(state, openOptions(bytes.length))).toBeDefined();

    // Expired by the persisted Upload-Expires: no request needed.
    const before = server.requests.length;
    const expired = { ...state, expires: new Date(Date.now() - 1000).toISOString() };
    expect(await protocol.resume(expired, openOptions(bytes.length))).toBeUndefined();
    expect(since(before)).toHaveLength(0);

    // Not ours, or never created.
    for (const foreign of [
      null,
      42,
      'not a url',
      { v: 2, mode: 'core', url: session.url },
      { ...state, url: null },
    ]) {
      expect(
        await protocol.resume(foreign as JsonValue, openOptions(bytes.length)),
      ).toBeUndefined();
    }

    // Deleted on the server (by another client here).
    const deleted = await fetch(session.url as string, {
      method: 'DELETE',
      headers: { 'tus-resumable': '1.0.0' },
    });
    expect(deleted.status).toBe(204);
    expect(
      await tus({ endpoint: server.endpoint }).resume(state, openOptions(bytes.length)),
    ).toBeUndefined();
  });

  it('turns a 409 into OffsetConflictError with the offset a HEAD reports', async () => {
    const bytes = sourceBytes(2 * CHUNK);
    const session = await tus({ endpoint: server.endpoint, creationWithUpload: false }).open(
      openOptions(bytes.length),
    );
    const [chunk0] = chunksOf(bytes, CHUNK);
    await session.send(chunk0!, { signal: never });
    const error = await session.send(chunk0!, { signal: never }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OffsetConflictError);
    expect(error).toMatchObject({ clientOffset: 0, serverOffset: CHUNK, retryable: true });
    expect(await server.storedSha256(session.url as string)).toBe(sha256(bytes.subarray(0, CHUNK)));
  });

  it('turns a 503 into a retryable HttpError with Retry-After, and a 403 into a final one', async () => {
    const bytes = sourceBytes(CHUNK + 10);
    const session = await tus({ endpoint: server.endpoint, creationWithUpload: false }).open(
      openOptions(bytes.length),
    );
    const [chunk0, chunk1] = chunksOf(bytes, CHUNK);
    server.inject.push({ method: 'PATCH', status: 503, headers: { 'retry-after': '7' } });
    const busy = await session.send(chunk0!, { signal: never }).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(HttpError);
    expect(busy).toMatchObject({
      status: 503,
      retryable: true,
      retryAfterMs: 7000,
      method: 'PATCH',
    });

    server.inject.push({ method: 'HEAD', status: 500 });
    await expect(session.acknowledged(never)).rejects.toMatchObject({
      status: 500,
      retryable: true,
    });
    expect(await session.acknowledged(never)).toEqual({ placement: 'offset', offset: 0 });

    await session.send(chunk0!, { signal: never });
    server.inject.push({ method: 'PATCH', status: 403 });
    await expect(session.send(chunk1!, { signal: never })).rejects.toMatchObject({
      status: 403,
      retryable: false,
    });
    await session.send(chunk1!, { signal: never });
    await session.complete([], never);
    expect(await server.storedSha256(session.url as string)).toBe(sha256(bytes));
  });

  it('terminates with DELETE and tolerates an upload already gone', async () => {
    const bytes = sourceBytes(CHUNK);
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(bytes.length * 2));
    await session.send(chunksOf(bytes, CHUNK)[0]!, { signal: never });
    const id = (session.url as string).split('/').pop() as string;
    expect(existsSync(join(server.directory, id))).toBe(true);
    await session.terminate(never);
    expect((await rawHead(session.url as string)).status).toBe(404);
    expect(existsSync(join(server.directory, id))).toBe(false);
    await expect(session.terminate(never)).resolves.toBeUndefined();
  });

  it('rejects with UploadAbortedError when the signal aborts', async () => {
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(CHUNK));
    const controller = new AbortController();
    controller.abort(new Error('user cancelled'));
    const error = await session
      .send(chunksOf(sourceBytes(CHUNK), CHUNK)[0]!, { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UploadAbortedError);
  });

  it('resolves a relative Location against the endpoint', async () => {
    const relative = await startTusNodeServer({ relativeLocation: true });
    try {
      const bytes = sourceBytes(CHUNK + 1);
      const session = await tus({ endpoint: relative.endpoint }).open(openOptions(bytes.length));
      await sendInOrder(session, chunksOf(bytes, CHUNK));
      await session.complete([], never);
      const post = relative.requests.find((r) => r.method === 'POST');
      expect(post).toBeDefined();
      expect(session.url).toMatch(new RegExp(`^${relative.endpoint}[^/]+$`));
      expect(await relative.storedSha256(session.url as string)).toBe(sha256(bytes));
    } finally {
      await relative.close();
    }
  });

  it('refuses an upload larger than Tus-Max-Size before uploading anything', async () => {
    const limited = await startTusNodeServer({ maxSize: 1000 });
    try {
      const protocol = tus({ endpoint: limited.endpoint });
      expect((await protocol.discover()).maxSize).toBe(1000);
      const error = await protocol.open(openOptions(2000)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/2000 bytes.*1000 bytes/);
      expect(limited.requests.map((r) => r.method)).toEqual(['OPTIONS']);

      // With the size unknown, the chunk that would cross the limit is refused instead.
      const session = await protocol.open(openOptions(undefined));
      const chunks = chunksOf(sourceBytes(1500), 600, { knownSize: false });
      await session.send(chunks[0]!, { signal: never });
      const sentBefore = limited.requests.length;
      await expect(session.send(chunks[1]!, { signal: never })).rejects.toThrow(
        /1200 bytes.*1000 bytes/,
      );
      expect(limited.requests.length).toBe(sentBefore);
    } finally {
      await limited.close();
    }
  });

  it('surfaces Upload-Expires and persists it', async () => {
    const hour = 3_600_000;
    const expiring = await startTusNodeServer({ expirationPeriodInMilliseconds: hour });
    try {
      const protocol = tus({ endpoint: expiring.endpoint });
      expect((await protocol.discover()).extensions).toContain('expiration');
      const bytes = sourceBytes(2 * CHUNK);
      const before = Date.now();
      const session = await protocol.open(openOptions(bytes.length));
      await session.send(chunksOf(bytes, CHUNK)[0]!, { signal: never });
      const expires = session.expires;
      expect(expires).toBeInstanceOf(Date);
      // RFC 7231 dates have whole seconds; the server counts from the upload's creation.
      expect(expires!.getTime()).toBeGreaterThan(before + hour - 2000);
      expect(session.state).toMatchObject({ expires: expires!.toISOString() });
      const resumed = await tus({ endpoint: expiring.endpoint }).resume(
        session.state,
        openOptions(bytes.length),
      );
      expect(resumed?.expires?.getTime()).toBe(expires!.getTime());
    } finally {
      await expiring.close();
    }
  });
});
