/**
 * Interop with tus-js-client (the reference JavaScript client) on the same
 * @tus/server: both store identical files, and each continues an upload
 * the other started. Proves the wire behaviour is tus, not a private
 * convention between our client and a friendly server.
 */
import { Buffer } from 'node:buffer';
import { Upload } from 'tus-js-client';
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

/** Runs a tus-js-client upload to the end; resolves its URL. */
function jsClientUpload(bytes: Uint8Array, options: { uploadUrl?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new Upload(Buffer.from(bytes), {
      endpoint: server.endpoint,
      ...(options.uploadUrl === undefined ? {} : { uploadUrl: options.uploadUrl }),
      chunkSize: CHUNK,
      retryDelays: null,
      storeFingerprintForResuming: false,
      metadata: { filename: 'clip.mp4', filetype: 'video/mp4' },
      onError: reject,
      onSuccess: () => resolve(upload.url as string),
    });
    upload.start();
  });
}

/** Starts a tus-js-client upload and stops it once `chunks` chunks are stored; resolves its URL. */
function jsClientPartial(bytes: Uint8Array, chunks: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const upload = new Upload(Buffer.from(bytes), {
      endpoint: server.endpoint,
      chunkSize: CHUNK,
      retryDelays: null,
      storeFingerprintForResuming: false,
      onError: reject,
      onChunkComplete: () => {
        done += 1;
        if (done === chunks) upload.abort().then(() => resolve(upload.url as string), reject);
      },
    });
    upload.start();
  });
}

describe('tus interop with tus-js-client', () => {
  it('stores the same file as tus-js-client', async () => {
    const bytes = sourceBytes(3 * CHUNK + 4321);
    const theirs = await jsClientUpload(bytes);
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(bytes.length));
    await sendInOrder(session, chunksOf(bytes, CHUNK));
    const ours = (await session.complete([], never)).location as string;
    expect(ours).not.toBe(theirs);
    expect(await server.storedSha256(ours)).toBe(await server.storedSha256(theirs));
    expect(await server.storedSha256(ours)).toBe(sha256(bytes));
    // Both encode the same metadata the same way.
    const heads = await Promise.all(
      [ours, theirs].map((url) =>
        fetch(url, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } }),
      ),
    );
    const [mine, js] = heads.map((h) => decodeMetadata(h.headers.get('upload-metadata')));
    expect(mine).toEqual(js);
  });

  it('resumes an upload tus-js-client started, from the server offset', async () => {
    const bytes = sourceBytes(4 * CHUNK + 77);
    const url = await jsClientPartial(bytes, 2);
    const before = server.requests.length;
    // A bare upload URL is valid resume state: it is all tus-js-client keeps too.
    const session = await tus({ endpoint: server.endpoint }).resume(url, openOptions(bytes.length));
    expect(session?.url).toBe(url);
    const ack = await session!.acknowledged(never);
    expect(ack).toEqual({ placement: 'offset', offset: 2 * CHUNK });
    await sendInOrder(session!, chunksOf(bytes, CHUNK, { from: 2 * CHUNK }));
    await session!.complete([], never);
    expect(await server.storedSha256(url)).toBe(sha256(bytes));
    const patches = server.requests.slice(before).filter((r) => r.method === 'PATCH');
    expect(patches[0]?.headers['upload-offset']).toBe(String(2 * CHUNK));
  });

  it('lets tus-js-client finish an upload we started', async () => {
    const bytes = sourceBytes(3 * CHUNK + 1);
    const session = await tus({ endpoint: server.endpoint }).open(openOptions(bytes.length));
    await sendInOrder(session, chunksOf(bytes, CHUNK).slice(0, 2));
    const before = server.requests.length;
    const url = await jsClientUpload(bytes, { uploadUrl: session.url as string });
    expect(url).toBe(session.url);
    expect(await server.storedSha256(url)).toBe(sha256(bytes));
    // tus-js-client found our offset with HEAD and sent only the rest.
    const patches = server.requests.slice(before).filter((r) => r.method === 'PATCH');
    expect(patches[0]?.headers['upload-offset']).toBe(String(2 * CHUNK));
  });
});
