import { Buffer } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open, rename, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { GiB, MiB } from './util';

/** The file is written in blocks of this size. */
const BLOCK = 64 * MiB;
/** First bytes of an input: a file with them and the right size is reused. */
const MAGIC = 'streaming-primitives bench: upload input v1\n';

function sizeLabel(size: number): string {
  return size >= GiB && size % GiB === 0 ? `${size / GiB}GiB` : `${size / MiB}MiB`;
}

/** Where the upload input of `size` bytes lives: one file per size, reused across runs. */
export function uploadInputPath(size: number): string {
  return join(tmpdir(), `streaming-primitives-bench-upload-input-${sizeLabel(size)}.bin`);
}

async function isReusable(path: string, size: number): Promise<boolean> {
  try {
    if ((await stat(path)).size !== size) return false;
    const file = await open(path);
    try {
      const head = Buffer.alloc(MAGIC.length);
      await file.read(head, 0, head.length, 0);
      return head.toString('latin1') === MAGIC;
    } finally {
      await file.close();
    }
  } catch {
    return false;
  }
}

/**
 * A file of `size` random bytes (incompressible, like video) under
 * `os.tmpdir()`, written once (about a second per GiB) and reused by later
 * runs and by every process of a run while its size and header check out.
 */
export async function ensureUploadInput(size: number): Promise<string> {
  const path = uploadInputPath(size);
  if (await isReusable(path, size)) return path;
  const partial = `${path}.${process.pid}.partial`;
  const out = createWriteStream(partial);
  for (let written = 0; written < size; written += BLOCK) {
    const block = randomFillSync(Buffer.allocUnsafe(Math.min(BLOCK, size - written)));
    if (written === 0) block.write(MAGIC, 0, 'latin1');
    if (!out.write(block)) await once(out, 'drain');
  }
  out.end();
  await finished(out);
  await rename(partial, path);
  return path;
}
