import { mkdirSync } from 'node:fs';
import { type FileHandle, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { ERRORS, Upload } from '@tus/server';
import { isVideoId } from '../storage/types.ts';
import { isDiskFull, tusError } from './tus-errors.ts';

/** `Upload.storage.type` of an upload whose bytes were handed to the library. */
const STORED = 'library';

/**
 * The tus staging area: @tus/file-store's `<dir>/<id>` data files and
 * `<id>.json` records, plus three things the app needs from it.
 *
 * - A full disk answers 507 instead of the generic 500, and the bytes that
 *   did reach the disk stay, so the client resumes from there once space
 *   returns (the offset is the data file's size, as in FileStore).
 * - An upload handed to the library keeps its record as a receipt (its data
 *   file is gone): `HEAD` still reports it complete, which is what
 *   chunked-uploader checks after its last chunk and what any client sees
 *   when it retries a final `PATCH` whose answer it lost.
 * - Expiry also sweeps receipts and records whose data file is missing,
 *   which FileStore's own sweep never lists.
 *
 * @example
 * ```ts
 * const store = stagingStore('/srv/media/uploads', 24 * 3600_000);
 * const server = new Server({ path: '/uploads', datastore: store });
 * ```
 */
export class StagingStore extends FileStore {
  /** The data file of upload `id` (ids are checked by the route, never user paths). */
  dataPath(id: string): string {
    return join(this.directory, id);
  }

  override async create(file: Upload): Promise<Upload> {
    try {
      return await super.create(file);
    } catch (error) {
      await this.discard(file.id);
      if (isDiskFull(error)) {
        throw tusError(
          507,
          'INSUFFICIENT_STORAGE',
          'the upload staging disk is full; no upload was created',
        );
      }
      throw error;
    }
  }

  override async getUpload(id: string): Promise<Upload> {
    const record = await this.configstore.get(id);
    if (record?.storage?.type === STORED) {
      const upload = new Upload({ id, offset: record.size ?? 0 });
      upload.size = record.size;
      upload.metadata = record.metadata;
      upload.creation_date = record.creation_date;
      upload.storage = record.storage;
      return upload;
    }
    return super.getUpload(id);
  }

  /**
   * FileStore's write, except that a full disk answers 507 and not 500.
   * Whatever reached the disk counts (the offset is the file's size, as for
   * a client that disconnects). The rest of the request body is read and
   * dropped: it is bounded by the request's length, and stopping early
   * would make @tus/server report an aborted request (400) instead, or the
   * client see a reset connection.
   */
  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    if (await this.isStored(id)) {
      // A final PATCH sent again (empty: bytes past the length are refused earlier); the hook answers again.
      for await (const _chunk of readable);
      return offset;
    }
    const handle = await open(this.dataPath(id), 'r+');
    let position = offset;
    let full = false;
    try {
      for await (const chunk of readable as AsyncIterable<Buffer>) {
        if (full) continue;
        try {
          position = await writeAll(handle, chunk, position);
        } catch (error) {
          if (!isDiskFull(error)) throw error;
          full = true;
        }
      }
    } catch (error) {
      // Errors the server raised itself (size limits) keep their status.
      if (typeof error === 'object' && error !== null && 'status_code' in error) throw error;
      throw ERRORS.FILE_WRITE_ERROR;
    } finally {
      await handle.close();
    }
    if (full) throw diskFull(offset, position);
    return position;
  }

  /** Turns the record of a stored upload into a receipt and drops its data file. */
  async markStored(upload: Upload): Promise<void> {
    await this.configstore.set(upload.id, {
      ...upload,
      offset: upload.size ?? upload.offset,
      storage: { type: STORED, path: upload.id },
    } as Upload);
    await rm(this.dataPath(upload.id), { force: true });
  }

  /** Whether upload `id` was already handed to the library. */
  async isStored(id: string): Promise<boolean> {
    return (await this.configstore.get(id))?.storage?.type === STORED;
  }

  /** Removes every trace of upload `id`. */
  async discard(id: string): Promise<void> {
    await rm(this.dataPath(id), { force: true });
    await rm(join(this.directory, `${id}.json`), { force: true });
  }

  /**
   * Deletes uploads (and receipts) created longer than the expiry ago, the
   * same clock @tus/server answers 410 by. Returns how many unfinished
   * uploads were deleted; receipts are not counted.
   */
  override async deleteExpired(): Promise<number> {
    const expiry = this.getExpiration();
    if (expiry <= 0) return 0;
    const now = Date.now();
    let expired = 0;
    for (const name of await readdir(this.directory)) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      if (!isVideoId(id)) continue;
      // An unreadable record may be one being written right now: left for a later sweep.
      const record = await this.configstore.get(id);
      const created = Date.parse(record?.creation_date ?? '');
      if (record === undefined || !(now > created + expiry)) continue;
      await this.discard(id);
      if (record.storage?.type !== STORED) expired++;
    }
    return expired;
  }
}

/**
 * A {@link StagingStore} in `dir` (created if missing, synchronously so a bad
 * directory fails the start-up instead of a later request).
 *
 * @example
 * ```ts
 * const store = stagingStore(join(config.dataDir, 'uploads'), config.uploadExpiryMs);
 * ```
 */
export function stagingStore(dir: string, expiryMs: number): StagingStore {
  mkdirSync(dir, { recursive: true });
  return new StagingStore({ directory: dir, expirationPeriodInMilliseconds: expiryMs });
}

function diskFull(from: number, to: number) {
  return tusError(
    507,
    'INSUFFICIENT_STORAGE',
    `the upload staging disk is full: this request stored bytes ${from} to ${to}; resume from ${to} once space is freed`,
  );
}

/** Writes all of `bytes` at `position` (a full disk may take part of them first); returns the new end. */
async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<number> {
  let at = 0;
  while (at < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, at, bytes.byteLength - at, position + at);
    at += bytesWritten;
  }
  return position + at;
}
