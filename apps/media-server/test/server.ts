import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMediaServer, type MediaServer } from '../src/app.ts';
import { loadConfig, type ServerConfig } from '../src/config.ts';
import { createLogger, type Logger } from '../src/log.ts';
import { localStorage } from '../src/storage/local.ts';
import type { VideoStorage } from '../src/storage/types.ts';

/** The built web page (the e2e tests build it first; others never read it). */
export const PUBLIC_DIR = join(import.meta.dirname, '..', 'dist', 'public');

/** A server on a loopback port 0 over a fresh temp directory. */
export interface TestServer {
  readonly app: MediaServer;
  readonly url: string;
  readonly dir: string;
  readonly storage: VideoStorage;
  readonly config: ServerConfig;
  close(): Promise<void>;
}

/** Starts a server; `env` entries override the defaults the way environment variables would. */
export async function startServer(
  env: Record<string, string> = {},
  options: { storage?: VideoStorage; log?: Logger; dir?: string } = {},
): Promise<TestServer> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'media-server-')));
  const config = loadConfig([], {
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dir,
    SAMPLE: '0',
    ...env,
  });
  const storage =
    options.storage ??
    (await localStorage(
      config.storage.kind === 'local' ? config.storage.dir : join(dir, 'videos'),
    ));
  const app = createMediaServer(config, {
    storage,
    log: options.log ?? createLogger('silent'),
    publicDir: PUBLIC_DIR,
  });
  const url = await app.listen();
  return {
    app,
    url,
    dir,
    storage,
    config,
    async close() {
      await app.close();
      if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}
