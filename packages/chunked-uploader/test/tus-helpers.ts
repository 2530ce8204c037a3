/** What the tus tests share: sources, chunking like the engine does, and a driver loop. */
import { createHash, randomBytes } from 'node:crypto';
import type { ChunkPayload, OpenOptions, ProtocolSession } from '../src/lib/types';

/** Random bytes that are not a multiple of any chunk size used. */
export function sourceBytes(size: number): Uint8Array {
  return new Uint8Array(randomBytes(size));
}

/** sha256 in hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Open options as the engine would pass them. */
export function openOptions(
  size: number | undefined,
  extra: Partial<OpenOptions> = {},
): OpenOptions {
  return {
    size,
    fingerprint: 'test-fingerprint',
    metadata: { filename: 'clip.mp4' },
    contentType: 'video/mp4',
    signal: new AbortController().signal,
    ...extra,
  };
}

/**
 * Chunks of `bytes` from `from` on, `chunkSize` each (the last shorter).
 * With `knownSize: false` only the last chunk carries the total, as for a
 * stream whose end is found by reading it.
 */
export function chunksOf(
  bytes: Uint8Array,
  chunkSize: number,
  options: { from?: number; knownSize?: boolean } = {},
): ChunkPayload[] {
  const from = options.from ?? 0;
  const chunks: ChunkPayload[] = [];
  for (let offset = from; offset < bytes.length || chunks.length === 0; offset += chunkSize) {
    const end = Math.min(bytes.length, offset + chunkSize);
    const last = end === bytes.length;
    chunks.push({
      index: Math.floor(offset / chunkSize),
      offset,
      // A copy, as the engine's pooled buffer is: the protocol must not rely on the source array.
      bytes: bytes.slice(offset, end),
      last,
      totalSize: options.knownSize === false && !last ? undefined : bytes.length,
    });
    if (last) break;
  }
  return chunks;
}

/** Sends chunks one after another, as the engine does for offset protocols; returns the bytes reported sent. */
export async function sendInOrder(
  session: ProtocolSession,
  chunks: ChunkPayload[],
): Promise<number> {
  const signal = new AbortController().signal;
  let sent = 0;
  for (const chunk of chunks) {
    await session.send(chunk, { signal, onBytesSent: (n) => (sent += n) });
  }
  return sent;
}

/** A signal that never aborts. */
export const never = new AbortController().signal;
