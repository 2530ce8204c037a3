import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { StateStore, UploadState } from './state-store';

/**
 * Options of {@link FileStateStore}.
 *
 * @example
 * ```ts
 * import { FileStateStore } from 'chunked-uploader/node';
 * const store = new FileStateStore({ directory: '/var/lib/my-app/uploads', durable: false });
 * ```
 */
export interface FileStateStoreOptions {
  /**
   * Where the state files go; created on the first write.
   * @default FileStateStore.defaultDirectory(): `$XDG_STATE_HOME/chunked-uploader`, else `~/.local/state/chunked-uploader` (`%LOCALAPPDATA%\chunked-uploader\state` on Windows)
   */
  directory?: string;
  /**
   * `fsync` each state file (and, on POSIX, its directory) before and after
   * the rename, so a power cut cannot leave an empty file where the last
   * state was. A killed process never leaves a torn file either way; this
   * is only about the machine going down.
   * @default true
   */
  durable?: boolean;
}

/** Temp files older than this were left by a killed writer: no write takes this long. */
const STALE_TEMP_MS = 10 * 60 * 1000;
const SAFE_NAME = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Keeps upload state in files, one JSON file per fingerprint, so a process
 * that was killed (or a machine that rebooted) resumes where the server
 * is. Every write goes to a temp file that is renamed over the old one, so
 * a `SIGKILL` mid-write never leaves a half-written state; a file that
 * cannot be read or parsed anyway is treated as absent (and removed), so
 * the upload starts over instead of failing.
 *
 * @example
 * ```ts
 * import { upload, tus } from 'chunked-uploader';
 * import { FileStateStore, fromFile } from 'chunked-uploader/node';
 * await upload(await fromFile('movie.mp4'), {
 *   protocol: tus({ endpoint: 'https://tus.example/files/' }),
 *   stateStore: new FileStateStore(),
 * });
 * ```
 */
export class FileStateStore implements StateStore {
  /** The directory holding the state files. */
  readonly directory: string;
  readonly #durable: boolean;
  #ready: Promise<void> | undefined;

  /**
   * @param options - where to keep the files, and whether to fsync them.
   *
   * @example
   * ```ts
   * const store = new FileStateStore({ directory: '.upload-state' });
   * ```
   */
  constructor(options: FileStateStoreOptions = {}) {
    this.directory = resolve(options.directory ?? FileStateStore.defaultDirectory());
    this.#durable = options.durable ?? true;
  }

  /**
   * The per-user state directory: `$XDG_STATE_HOME/chunked-uploader`, else
   * `~/.local/state/chunked-uploader` (the XDG Base Directory default), and
   * `%LOCALAPPDATA%\chunked-uploader\state` on Windows.
   *
   * @param env - where to read `XDG_STATE_HOME` and `LOCALAPPDATA` (the process's environment by default).
   *
   * @example
   * ```ts
   * console.log(FileStateStore.defaultDirectory()); // /home/ana/.local/state/chunked-uploader
   * ```
   */
  static defaultDirectory(env: NodeJS.ProcessEnv = process.env): string {
    if (process.platform === 'win32' && env.LOCALAPPDATA) {
      return join(env.LOCALAPPDATA, 'chunked-uploader', 'state');
    }
    // XDG says a relative XDG_STATE_HOME is invalid and must be ignored.
    const xdg = env.XDG_STATE_HOME;
    if (xdg && isAbsolute(xdg)) return join(xdg, 'chunked-uploader');
    return join(homedir(), '.local', 'state', 'chunked-uploader');
  }

  /**
   * The file that holds `fingerprint`'s state. Fingerprints that are not
   * plain file names are hashed, so any string is safe.
   *
   * @example
   * ```ts
   * console.log(store.pathOf(fingerprint)); // ~/.local/state/chunked-uploader/3f2a….json
   * ```
   */
  pathOf(fingerprint: string): string {
    const name = SAFE_NAME.test(fingerprint)
      ? fingerprint
      : createHash('sha256').update(fingerprint).digest('hex');
    return join(this.directory, `${name}.json`);
  }

  /**
   * The state saved under `fingerprint`, or `undefined` when there is none
   * or the file is unreadable, corrupt or another upload's (then removed).
   *
   * @example
   * ```ts
   * const saved = await store.get(fingerprint);
   * ```
   */
  async get(fingerprint: string): Promise<UploadState | undefined> {
    const path = this.pathOf(fingerprint);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      await unlink(path).catch(() => undefined);
      return undefined;
    }
    const state = parseState(text, fingerprint);
    if (state === undefined) await unlink(path).catch(() => undefined);
    return state;
  }

  /**
   * Saves `state` atomically: a reader (or a process started after a
   * crash) sees the previous state or this one, never a mix.
   *
   * @example
   * ```ts
   * await store.set(state.fingerprint, { ...state, updatedAt: Date.now() });
   * ```
   */
  async set(fingerprint: string, state: UploadState): Promise<void> {
    await this.#ensureDirectory();
    const path = this.pathOf(fingerprint);
    const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify(state), 'utf8');
      if (this.#durable) await handle.sync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await handle.close();
    try {
      // rename(2) replaces the target atomically: there is never a moment without a whole file.
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    if (this.#durable) await syncDirectory(this.directory);
  }

  /**
   * Removes `fingerprint`'s state; nothing happens when there is none.
   *
   * @example
   * ```ts
   * await store.delete(fingerprint);
   * ```
   */
  async delete(fingerprint: string): Promise<void> {
    await rm(this.pathOf(fingerprint), { force: true });
  }

  #ensureDirectory(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(this.directory, { recursive: true, mode: 0o700 });
      await removeStaleTemps(this.directory);
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }
}

function parseState(text: string, fingerprint: string): UploadState | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const state = value as Partial<UploadState>;
  const valid =
    state.version === 1 &&
    state.fingerprint === fingerprint &&
    typeof state.protocol === 'string' &&
    (state.size === undefined || (Number.isSafeInteger(state.size) && state.size >= 0)) &&
    Number.isSafeInteger(state.chunkSize) &&
    (state.chunkSize as number) > 0 &&
    'session' in state &&
    typeof state.createdAt === 'number' &&
    typeof state.updatedAt === 'number';
  return valid ? (state as UploadState) : undefined;
}

/** Temp files of writers killed between creating and renaming them. */
async function removeStaleTemps(directory: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return;
  }
  const now = Date.now();
  await Promise.all(
    names
      .filter((name) => name.endsWith('.tmp'))
      .map(async (name) => {
        const path = join(directory, name);
        const info = await stat(path).catch(() => undefined);
        if (info !== undefined && now - info.mtimeMs > STALE_TEMP_MS) {
          await unlink(path).catch(() => undefined);
        }
      }),
  );
}

/** Makes the rename itself durable; Windows cannot open directories, and needs no such step. */
async function syncDirectory(directory: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(directory, 'r').catch(() => undefined);
  if (handle === undefined) return;
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename stands regardless.
  } finally {
    await handle.close();
  }
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null
    ? (error as { code?: string }).code
    : undefined;
}
