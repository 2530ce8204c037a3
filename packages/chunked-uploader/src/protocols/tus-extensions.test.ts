/**
 * The extensions `@tus/server` 2.4.5 does not implement (checksum,
 * concatenation), and protocol edges it cannot be made to show (a server
 * that keeps fewer bytes than sent, version refusal), against
 * test/tus-spec-server.ts: a server written from the tus 1.0 text.
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  chunksOf,
  never,
  openOptions,
  sendInOrder,
  sha256,
  sourceBytes,
} from '../../test/tus-helpers';
import { startTusSpecServer, type TusSpecServer } from '../../test/tus-spec-server';
import { ChecksumMismatchError, ProtocolError } from '../lib/errors';
import type { JsonValue, StoredPart } from '../lib/types';
import { tus } from './tus';
import { decodeMetadata } from './tus-wire';

const CHUNK = 64 * 1024;

let server: TusSpecServer;
let extra: TusSpecServer[] = [];

beforeEach(async () => {
  server = await startTusSpecServer();
});

afterEach(async () => {
  await Promise.all([server, ...extra].map((s) => s.close()));
  extra = [];
});

async function another(options: Parameters<typeof startTusSpecServer>[0]): Promise<TusSpecServer> {
  const s = await startTusSpecServer(options);
  extra.push(s);
  return s;
}

const digest = (algorithm: string, bytes: Uint8Array): string =>
  createHash(algorithm).update(bytes).digest('base64');

describe('tus checksum extension', () => {
  it('sends sha1 Upload-Checksum by default, which the server verifies', async () => {
    const bytes = sourceBytes(2 * CHUNK + 17);
    const session = await tus({
      endpoint: server.endpoint,
      concatenation: 'off',
      creationWithUpload: false,
    }).open(openOptions(bytes.length));
    const chunks = chunksOf(bytes, CHUNK);
    await sendInOrder(session, chunks);
    const patches = server.requests.filter((r) => r.method === 'PATCH');
    expect(patches.map((p) => p.headers['upload-checksum'])).toEqual(
      chunks.map((c) => `sha1 ${digest('sha1', c.bytes)}`),
    );
    expect(patches.every((p) => p.status === 204)).toBe(true);
    expect(sha256(server.upload(session.url as string).data)).toBe(sha256(bytes));
  });

  it('checksums the body of a creation-with-upload POST too', async () => {
    const bytes = sourceBytes(CHUNK + 1);
    const session = await tus({ endpoint: server.endpoint, concatenation: 'off' }).open(
      openOptions(bytes.length),
    );
    await sendInOrder(session, chunksOf(bytes, CHUNK));
    const post = server.requests.find((r) => r.method === 'POST');
    expect(post?.headers['upload-checksum']).toBe(
      `sha1 ${digest('sha1', bytes.subarray(0, CHUNK))}`,
    );
  });

  it('picks the first preferred algorithm the server lists, and none when told', async () => {
    const md5Server = await another({ checksumAlgorithms: ['md5', 'sha1'] });
    const bytes = sourceBytes(100);
    const preferring = tus({
      endpoint: md5Server.endpoint,
      checksum: ['sha256', 'md5'],
      creationWithUpload: false,
      concatenation: 'off',
    });
    await sendInOrder(await preferring.open(openOptions(bytes.length)), chunksOf(bytes, CHUNK));
    const none = tus({
      endpoint: md5Server.endpoint,
      checksum: 'none',
      creationWithUpload: false,
      concatenation: 'off',
    });
    await sendInOrder(await none.open(openOptions(bytes.length)), chunksOf(bytes, CHUNK));
    const patches = md5Server.requests.filter((r) => r.method === 'PATCH');
    expect(patches.map((p) => p.headers['upload-checksum'])).toEqual([
      `md5 ${digest('md5', bytes)}`,
      undefined,
    ]);
  });

  it('sends no checksum to a server without the checksum extension', async () => {
    const plain = await another({ extensions: ['creation', 'termination'] });
    const bytes = sourceBytes(100);
    const session = await tus({ endpoint: plain.endpoint }).open(openOptions(bytes.length));
    await sendInOrder(session, chunksOf(bytes, CHUNK));
    expect(
      plain.requests.find((r) => r.method === 'PATCH')?.headers['upload-checksum'],
    ).toBeUndefined();
  });

  it('turns 460 into a retryable ChecksumMismatchError; the offset stays and a resend succeeds', async () => {
    const bytes = sourceBytes(2 * CHUNK);
    const session = await tus({
      endpoint: server.endpoint,
      concatenation: 'off',
      creationWithUpload: false,
    }).open(openOptions(bytes.length));
    const [chunk0, chunk1] = chunksOf(bytes, CHUNK);
    server.corruptNextPatch = true;
    const error = await session.send(chunk0!, { signal: never }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect(error).toMatchObject({
      algorithm: 'sha1',
      expected: digest('sha1', chunk0!.bytes),
      retryable: true,
    });
    expect(await session.acknowledged(never)).toEqual({ placement: 'offset', offset: 0 });
    await sendInOrder(session, [chunk0!, chunk1!]);
    expect(sha256(server.upload(session.url as string).data)).toBe(sha256(bytes));
  });
});

describe('tus core edges', () => {
  it('continues from the server offset when a PATCH stored fewer bytes than sent', async () => {
    const bytes = sourceBytes(CHUNK);
    const session = await tus({
      endpoint: server.endpoint,
      concatenation: 'off',
      creationWithUpload: false,
    }).open(openOptions(bytes.length));
    server.acceptAtMostOnNextPatch = 1000;
    const receipt = await session.send(chunksOf(bytes, CHUNK)[0]!, { signal: never });
    expect(receipt).toEqual({ offset: CHUNK });
    const patches = server.requests.filter((r) => r.method === 'PATCH');
    expect(patches.map((p) => [p.headers['upload-offset'], p.bodyLength])).toEqual([
      ['0', CHUNK],
      ['1000', CHUNK - 1000],
    ]);
    // Each PATCH's checksum covers exactly its own body.
    expect(patches[1]?.headers['upload-checksum']).toBe(
      `sha1 ${digest('sha1', bytes.subarray(1000))}`,
    );
    expect(sha256(server.upload(session.url as string).data)).toBe(sha256(bytes));
  });

  it('refuses a server that does not speak 1.0.0 with a ProtocolError', async () => {
    const future = await another({ versions: ['2.0.0'] });
    const protocol = tus({ endpoint: future.endpoint });
    await expect(protocol.open(openOptions(10))).rejects.toThrow(ProtocolError);
    await expect(protocol.open(openOptions(10))).rejects.toThrow(/2\.0\.0/);
    // A request the server refuses with 412 names the version it wants.
    await expect(protocol.resume(`${future.endpoint}/abc`, openOptions(10))).rejects.toThrow(
      /412.*2\.0\.0/,
    );
  });

  it('needs the creation extension to open, and creation-defer-length for an unknown size', async () => {
    const noCreation = await another({ extensions: ['termination'] });
    await expect(tus({ endpoint: noCreation.endpoint }).open(openOptions(10))).rejects.toThrow(
      /creation/,
    );
    const noDefer = await another({ extensions: ['creation'] });
    const protocol = tus({ endpoint: noDefer.endpoint });
    await expect(protocol.open(openOptions(undefined))).rejects.toThrow(/creation-defer-length/);
    const session = await protocol.open(openOptions(10));
    expect(session.capabilities.deferredLength).toBe(false);
  });

  it('refuses to terminate when the server lacks the termination extension', async () => {
    const noTermination = await another({ extensions: ['creation'] });
    const session = await tus({ endpoint: noTermination.endpoint }).open(openOptions(10));
    await expect(session.terminate(never)).rejects.toThrow(/termination/);
    expect(noTermination.requests.some((r) => r.method === 'DELETE')).toBe(false);
  });
});

describe('tus concatenation extension', () => {
  /** Sends every chunk at once, last first, as parallel parts may land. */
  async function sendParallel(
    session: Awaited<ReturnType<ReturnType<typeof tus>['open']>>,
    chunks: ReturnType<typeof chunksOf>,
  ): Promise<StoredPart[]> {
    await Promise.all([...chunks].reverse().map((chunk) => session.send(chunk, { signal: never })));
    return chunks.map((c) => ({ index: c.index, size: c.bytes.length }));
  }

  it('uploads chunks as parallel partial uploads and joins them in order', async () => {
    const bytes = sourceBytes(5 * CHUNK + 333);
    const protocol = tus({ endpoint: server.endpoint, metadata: { album: 'x' } });
    const session = await protocol.open(openOptions(bytes.length));
    expect(session.mode).toBe('concatenation');
    expect(session.capabilities).toMatchObject({
      placement: 'part',
      maxParallel: 6,
      maxChunks: 100,
      deferredLength: true,
    });

    const chunks = chunksOf(bytes, CHUNK);
    const parts = await sendParallel(session, chunks);
    const ack = await session.acknowledged(never);
    expect(ack).toEqual({ placement: 'part', parts });
    const done = await session.complete(parts, never);
    expect(done.location).toBe(session.url);
    expect(done.digests).toBeUndefined();

    const final = server.upload(done.location as string);
    expect(sha256(final.data)).toBe(sha256(bytes));
    expect(decodeMetadata(final.metadata ?? null)).toEqual({
      album: 'x',
      filename: 'clip.mp4',
      filetype: 'video/mp4',
    });
    const posts = server.requests.filter((r) => r.method === 'POST');
    expect(posts.filter((p) => p.headers['upload-concat'] === 'partial')).toHaveLength(
      chunks.length,
    );
    const finalPost = posts.find((p) => p.headers['upload-concat']?.startsWith('final;'));
    expect(finalPost?.headers['upload-length']).toBeUndefined();
    // Partial uploads carry no metadata: the spec puts it on the final upload.
    expect(
      posts.filter((p) => p.headers['upload-concat'] === 'partial' && p.headers['upload-metadata']),
    ).toHaveLength(0);
    expect(session.state).toMatchObject({ mode: 'concatenation', final: done.location });
  });

  it('uploads a stream of unknown size as parts', async () => {
    const bytes = sourceBytes(3 * CHUNK + 1);
    const session = await tus({ endpoint: server.endpoint, creationWithUpload: false }).open(
      openOptions(undefined),
    );
    const parts = await sendParallel(session, chunksOf(bytes, CHUNK, { knownSize: false }));
    const done = await session.complete(parts, never);
    expect(sha256(server.upload(done.location as string).data)).toBe(sha256(bytes));
    // Without creation-with-upload every part is a bodiless POST and a PATCH.
    expect(server.requests.filter((r) => r.method === 'PATCH')).toHaveLength(4);
  });

  it('skips the empty last chunk of a stream whose size is a multiple of the chunk size', async () => {
    const bytes = sourceBytes(2 * CHUNK);
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(undefined));
    const chunks = chunksOf(bytes, CHUNK, { knownSize: false });
    const empty = {
      index: 2,
      offset: bytes.length,
      bytes: new Uint8Array(0),
      last: true,
      totalSize: bytes.length,
    };
    await Promise.all([...chunks, empty].map((chunk) => session.send(chunk, { signal: never })));
    const done = await session.complete(
      [...chunks, empty].map((c) => ({ index: c.index, size: c.bytes.length })),
      never,
    );
    expect(sha256(server.upload(done.location as string).data)).toBe(sha256(bytes));
    expect(server.requests.filter((r) => r.headers['upload-concat'] === 'partial')).toHaveLength(2);
  });

  it('resumes parts in a new protocol instance without re-creating stored ones', async () => {
    const bytes = sourceBytes(4 * CHUNK + 5);
    const chunks = chunksOf(bytes, CHUNK);
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(bytes.length));
    await Promise.all([0, 2].map((i) => session.send(chunks[i]!, { signal: never })));
    const persisted = JSON.parse(JSON.stringify(session.state)) as JsonValue;

    const resumed = await tus({ endpoint: server.endpoint }).resume(
      persisted,
      openOptions(bytes.length),
    );
    expect(resumed?.mode).toBe('concatenation');
    const ack = await resumed!.acknowledged(never);
    expect(ack).toEqual({
      placement: 'part',
      parts: [0, 2].map((index) => ({ index, size: CHUNK })),
    });
    await Promise.all([1, 3, 4].map((i) => resumed!.send(chunks[i]!, { signal: never })));
    const done = await resumed!.complete(
      chunks.map((c) => ({ index: c.index, size: c.bytes.length })),
      never,
    );
    expect(sha256(server.upload(done.location as string).data)).toBe(sha256(bytes));
    const partials = server.requests.filter(
      (r) => r.method === 'POST' && r.headers['upload-concat'] === 'partial',
    );
    expect(partials).toHaveLength(chunks.length);
  });

  it('continues a part whose partial upload exists instead of creating another', async () => {
    const bytes = sourceBytes(CHUNK);
    const session = await tus({ endpoint: server.endpoint, creationWithUpload: false }).open(
      openOptions(bytes.length),
    );
    const [chunk] = chunksOf(bytes, CHUNK);
    server.corruptNextPatch = true;
    await expect(session.send(chunk!, { signal: never })).rejects.toBeInstanceOf(
      ChecksumMismatchError,
    );
    await session.send(chunk!, { signal: never });
    expect(server.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    const done = await session.complete([{ index: 0, size: CHUNK }], never);
    expect(sha256(server.upload(done.location as string).data)).toBe(sha256(bytes));
  });

  it('forgets parts the server deleted, and resume() gives up when none is left', async () => {
    const bytes = sourceBytes(2 * CHUNK);
    const chunks = chunksOf(bytes, CHUNK);
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(bytes.length));
    await sendParallel(session, chunks);
    const state = session.state as { parts: { url: string }[] };
    server.uploads.delete(new URL(state.parts[0]!.url).pathname.split('/').pop()!);
    expect(await session.acknowledged(never)).toEqual({
      placement: 'part',
      parts: [{ index: 1, size: CHUNK }],
    });
    server.uploads.clear();
    expect(
      await tus({ endpoint: server.endpoint }).resume(session.state, openOptions(bytes.length)),
    ).toBeUndefined();
  });

  it('refuses to join parts with a gap', async () => {
    const bytes = sourceBytes(3 * CHUNK);
    const chunks = chunksOf(bytes, CHUNK);
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(bytes.length));
    await Promise.all([0, 2].map((i) => session.send(chunks[i]!, { signal: never })));
    await expect(session.complete([], never)).rejects.toThrow(/chunk 1/);
  });

  it('terminates the final upload and every partial upload', async () => {
    const bytes = sourceBytes(3 * CHUNK);
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(bytes.length));
    const parts = await sendParallel(session, chunksOf(bytes, CHUNK));
    await session.complete(parts, never);
    expect(server.uploads.size).toBe(4);
    await session.terminate(never);
    expect(server.uploads.size).toBe(0);
    expect(server.requests.filter((r) => r.method === 'DELETE')).toHaveLength(4);
  });

  it("uses one plain upload when concatenation is 'off'", async () => {
    const bytes = sourceBytes(2 * CHUNK);
    const session = await tus({ endpoint: server.endpoint, concatenation: 'off' }).open(
      openOptions(bytes.length),
    );
    expect(session.mode).toBe('core');
    await sendInOrder(session, chunksOf(bytes, CHUNK));
    expect(server.requests.some((r) => r.headers['upload-concat'] !== undefined)).toBe(false);
  });
});
