import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredVideo, VideoStorage } from '../src/storage/types.ts';

/** Stores `bytes` (random when a size is given) as video `id`; returns the stored video and its bytes. */
export async function storeBytes(
  storage: VideoStorage,
  dir: string,
  id: string,
  content: number | Uint8Array,
): Promise<{ video: StoredVideo; bytes: Uint8Array }> {
  const bytes = typeof content === 'number' ? new Uint8Array(randomBytes(content)) : content;
  const path = join(dir, `${id}.upload`);
  await writeFile(path, bytes);
  const video = await storage.putFile(id, path, {
    title: `test ${id}`,
    contentType: 'video/mp4',
    created: new Date().toISOString(),
  });
  return { video, bytes };
}

/** Splits a multipart/byteranges body into its parts (an independent reading of RFC 9110 §14.6). */
export function parseMultipart(body: Uint8Array, contentType: string) {
  const boundary = /boundary=("?)([^";]+)\1/.exec(contentType)?.[2];
  if (boundary === undefined) throw new Error(`no boundary in ${contentType}`);
  const text = Buffer.from(body).toString('latin1');
  const delimiter = `--${boundary}`;
  const pieces = text.split(delimiter);
  const parts: { headers: Record<string, string>; body: Uint8Array }[] = [];
  for (const piece of pieces.slice(1)) {
    if (piece.startsWith('--')) break;
    const headEnd = piece.indexOf('\r\n\r\n');
    const head = piece.slice(2, headEnd);
    const headers: Record<string, string> = {};
    for (const line of head.split('\r\n')) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const content = piece.slice(headEnd + 4, piece.length - 2);
    parts.push({ headers, body: new Uint8Array(Buffer.from(content, 'latin1')) });
  }
  return parts;
}
