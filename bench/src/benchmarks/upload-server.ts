import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { childExecArgv } from '../harness/child';

/**
 * A link between client and server, modelled in the server's process: every
 * request waits `latencyMs` before the server sees it (round trip plus
 * request overhead), then its body flows at no more than `bytesPerSecond`
 * (one bucket for the whole link).
 */
export interface LinkModel {
  latencyMs: number;
  bytesPerSecond: number;
}

/** What to run: `@tus/server` + `@tus/file-store` (behind a link model if given), or s3rver. */
export type ServerSpec = { kind: 'tus'; link?: LinkModel } | { kind: 's3' };

/** Parent → server. */
export type ServerRequest = {
  id: number;
  type: 'verify';
  /** The tus upload URL, or the S3 object key. */
  location: string;
  /** The file that was uploaded: the stored object must be its copy. */
  input: string;
  /** Compare SHA-256 digests of the whole object too (else size and 16 sampled 64 KiB blocks). */
  full: boolean;
};

/** Server → parent. `id` 0 says the server is up and carries its endpoint. */
export type ServerReply =
  | { id: number; endpoint: string; bytes: number }
  | { id: number; error: string };

/** The bucket s3rver is started with. */
export const S3_BUCKET = 'bench';

/** The credentials s3rver accepts (its documented defaults). */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * An upload server in a child process of its own (so its CPU and memory are
 * never the client's): a tus server storing into a temp dir, optionally
 * behind a bandwidth/latency model, or s3rver. The temp dir goes with the
 * process. See upload-server-entry.ts.
 */
export class UploadServer {
  readonly endpoint: string;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(bytes: number): void; reject(e: Error): void }>();
  #next = 1;

  private constructor(child: ChildProcess, endpoint: string) {
    this.#child = child;
    this.endpoint = endpoint;
    child.on('message', (message: ServerReply) => {
      const waiter = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if ('error' in message) waiter?.reject(new Error(`upload server: ${message.error}`));
      else waiter?.resolve(message.bytes);
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.#pending.values()) {
        waiter.reject(new Error(`upload server exited (code ${code}, signal ${signal})`));
      }
      this.#pending.clear();
    });
  }

  /** Starts the server process and waits until it listens. */
  static async start(spec: ServerSpec): Promise<UploadServer> {
    const entry = fileURLToPath(new URL('./upload-server-entry.ts', import.meta.url));
    const child = fork(entry, [JSON.stringify(spec)], {
      execArgv: childExecArgv(),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = new Promise<ServerReply>((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code, signal) =>
        reject(new Error(`upload server exited before it was up (code ${code}, signal ${signal})`)),
      );
    });
    const first = await ready;
    if ('error' in first) {
      child.kill();
      throw new Error(`upload server: ${first.error}`);
    }
    return new UploadServer(child, first.endpoint);
  }

  /**
   * Checks that the server stored an exact copy of `input` under `location`
   * (size and sampled blocks, or whole SHA-256 digests when `full`), then
   * deletes it so uploads do not pile up on disk. Resolves with its size.
   */
  verify(location: string, input: string, full: boolean): Promise<number> {
    const id = this.#next++;
    if (!this.#child.connected) {
      return Promise.reject(new Error('upload server: the server process is gone'));
    }
    return new Promise<number>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#child.send({ id, type: 'verify', location, input, full } satisfies ServerRequest);
    });
  }

  /** Ends the server process (it deletes its temp dir on the way out). */
  async close(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    if (child.connected) child.disconnect();
    else child.kill();
    // It exits on disconnect; if it does not within 5 s, it is killed.
    const timer = setTimeout(() => child.kill(), 5000);
    await exited;
    clearTimeout(timer);
  }
}
