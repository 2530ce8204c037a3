#!/usr/bin/env node
import { join } from 'node:path';
import { createMediaServer } from './app.ts';
import { loadConfig, USAGE, wantsHelp } from './config.ts';
import { MediaServerError } from './errors.ts';
import { createLogger } from './log.ts';
import { ensureSample } from './sample.ts';
import { localStorage } from './storage/local.ts';
import { s3Storage } from './storage/s3.ts';

const argv = process.argv.slice(2);
if (wantsHelp(argv)) {
  console.log(USAGE);
  process.exit(0);
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(argv, process.env);
} catch (error) {
  console.error(MediaServerError.isInstance(error) ? error.message : error);
  process.exit(2);
}

const log = createLogger(config.logLevel);
try {
  const storage =
    config.storage.kind === 'local'
      ? await localStorage(config.storage.dir)
      : s3Storage(config.storage);
  if (config.sample) await ensureSample(storage, config.dataDir, log);
  const app = createMediaServer(config, {
    storage,
    log,
    publicDir: join(import.meta.dirname, 'public'),
  });
  const url = await app.listen();
  log.info('media server listening', {
    url,
    storage: storage.location,
    cacheBytes: config.cacheBytes,
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal, graceMs: config.shutdownGraceMs });
    app.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    log.error(
      `cannot listen on ${config.host}:${config.port} (${code}); pick another with --port or PORT`,
      { error },
    );
  } else {
    log.error('start-up failed', { error });
  }
  process.exit(1);
}
