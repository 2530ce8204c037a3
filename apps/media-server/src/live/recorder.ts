import { createWriteStream, mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteView } from 'buffer-view';
import type { Library } from '../library.ts';
import type { Logger } from '../log.ts';

/**
 * Records one generation of a live stream (one init segment and the
 * fragments that follow it) into the library as a fragmented MP4.
 *
 * @example
 * ```ts
 * const recorder = recorders.start('cam1', init);
 * recorder.fragment(fragment.bytes);
 * await recorder.finish(); // now in /api/videos
 * ```
 */
export interface LiveRecorder {
  fragment(bytes: ByteView): void;
  /** Stores what was recorded in the library; resolves once it is there (or failed, logged). */
  finish(): Promise<void>;
}

/**
 * Makes a {@link LiveRecorder} per generation. Fragments are appended to a
 * file under `DATA_DIR/live-recordings` straight from the request chunks
 * they arrived in (the file stream holds references, never copies), and the
 * file is moved into the library when the generation ends. If the disk
 * falls more than `maxQueuedBytes` behind, the recording is abandoned
 * rather than letting memory grow.
 *
 * @example
 * ```ts
 * const recorders = new LiveRecorders(library, join(dataDir, 'live-recordings'), 8 * 2 ** 20, log);
 * ```
 */
export class LiveRecorders {
  readonly #library: Library;
  readonly #dir: string;
  readonly #maxQueuedBytes: number;
  readonly #log: Logger;
  readonly #pending = new Set<Promise<void>>();

  constructor(library: Library, dir: string, maxQueuedBytes: number, log: Logger) {
    this.#library = library;
    this.#dir = dir;
    this.#maxQueuedBytes = maxQueuedBytes;
    this.#log = log;
    // Once, at start-up: a recording must be able to take the first fragment synchronously.
    mkdirSync(dir, { recursive: true });
  }

  /** Starts recording a generation whose init segment is `init`. */
  start(name: string, init: Uint8Array): LiveRecorder {
    const startedAt = new Date();
    const stamp = startedAt.toISOString().replace(/[-:.Z]/g, '');
    const id = `live-${name.slice(0, 40)}-${stamp}`;
    const path = join(this.#dir, `${id}.mp4.partial`);
    const log = this.#log.child({ stream: name, recording: id });
    let failed = false;
    let fragments = 0;
    // Writes queue in the stream until the file is open.
    const file = createWriteStream(path);
    const abandon = (why: string, error?: unknown): void => {
      if (failed) return;
      failed = true;
      log.warn(`live recording abandoned: ${why}`, { error });
      file.destroy();
    };
    file.on('error', (error) => abandon('the recording file failed', error));
    file.write(init);
    return {
      fragment: (bytes) => {
        if (failed) return;
        if (file.writableLength > this.#maxQueuedBytes) {
          abandon(`the disk fell more than ${this.#maxQueuedBytes} bytes behind the broadcast`);
          return;
        }
        for (const segment of bytes.segments()) file.write(segment);
        fragments++;
      },
      finish: () => {
        const done = (async () => {
          if (!failed && fragments > 0) {
            const stream = file;
            await new Promise<void>((resolve, reject) => {
              stream.once('error', reject);
              stream.end(resolve);
            });
            const meta = {
              title: `Live: ${name} (${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
              contentType: 'video/mp4',
              created: startedAt.toISOString(),
            };
            const storage = this.#library.storage;
            if (storage.moveFile !== undefined) await storage.moveFile(id, path, meta);
            else await storage.putFile(id, path, meta);
            this.#library.invalidate(id);
            log.info('live recording stored', { id, fragments });
          }
        })()
          .catch((error: unknown) => log.error('live recording could not be stored', { error }))
          .finally(() => rm(path, { force: true }).catch(() => undefined));
        this.#pending.add(done);
        done.finally(() => this.#pending.delete(done));
        return done;
      },
    };
  }

  /** Resolves once every recording being stored is stored (or failed). */
  async settled(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}
