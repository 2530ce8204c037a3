import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { gcs } from '../protocols/gcs';
import { httpPut } from '../protocols/http-put';
import { s3 } from '../protocols/s3';
import { tus } from '../protocols/tus';
import { parseByteSize } from './byte-size';
import { type CliStream, HumanReporter, JsonReporter, type Reporter } from './cli-report.node.ts';
import { InvalidArgumentError, SourceError, UploadAbortedError } from './errors';
import { fromFile } from './file-source.node.ts';
import { FileStateStore } from './file-state-store.node.ts';
import { fromNodeReadable } from './node-readable-source.node.ts';
import { MemoryStateStore, type StateStore } from './state-store';
import type { UploadProtocol, UploadSource } from './types';
import { Upload, type UploadOptions } from './upload';

/**
 * @internal What {@link runCli} reads from and writes to: the process's
 * streams and environment in `main`, buffers in tests.
 *
 * @example
 * ```ts
 * const code = await runCli(['a.mp4', 'http://127.0.0.1:1080/files/'], { stdout, stderr, env: {} });
 * ```
 */
export interface CliIo {
  /** The final location, or JSON lines with `--json`. */
  stdout: CliStream;
  /** Progress and messages. */
  stderr: CliStream;
  /**
   * Read when the file is `-`.
   * @default undefined (`-` is then a usage error)
   */
  stdin?: Readable | undefined;
  /** Credentials (`AWS_*`, `GCS_ACCESS_TOKEN`) and `XDG_STATE_HOME`. */
  env: Record<string, string | undefined>;
  /**
   * Aborts the upload and keeps its state (SIGINT).
   * @default undefined
   */
  signal?: AbortSignal | undefined;
}

/** Exit status of the CLI. */
const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const PROTOCOLS = ['tus', 's3', 'gcs', 'http'] as const;
type ProtocolName = (typeof PROTOCOLS)[number];

const OPTIONS = {
  protocol: { type: 'string', short: 'p' },
  header: { type: 'string', short: 'H', multiple: true },
  bucket: { type: 'string' },
  key: { type: 'string' },
  name: { type: 'string' },
  region: { type: 'string' },
  'chunk-size': { type: 'string', short: 'c' },
  prefetch: { type: 'string' },
  parallel: { type: 'string' },
  adaptive: { type: 'boolean' },
  'limit-rate': { type: 'string' },
  retries: { type: 'string' },
  'state-dir': { type: 'string' },
  'no-resume': { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

/**
 * @internal The `--help` text.
 *
 * @example
 * ```ts
 * process.stdout.write(USAGE);
 * ```
 */
export const USAGE = `Usage: chunked-upload <file> <url> [options]

Uploads <file> in chunks with bounded memory. Run the same command again after
a crash, a network failure or Ctrl-C and it resumes where the server is.
<file> may be - for stdin (read once: no resume).

Protocol:
  -p, --protocol <name>     tus (default), s3, gcs or http. <url> is:
                              tus   the creation URL (https://tus.example/files/)
                              s3    the S3 endpoint (https://s3.eu-west-1.amazonaws.com)
                              gcs   the JSON API endpoint (https://storage.googleapis.com)
                              http  the resource chunks are PUT to, with Content-Range
  -H, --header <name: value>
                            extra request header, repeatable (tus, http)
      --bucket <name>       the bucket (s3, gcs; required)
      --key <key>           the object key (s3; default: the file's name)
      --name <name>         the object name (gcs; default: the file's name)
      --region <region>     the signing region (s3; default: $AWS_REGION or us-east-1)

Transfer:
  -c, --chunk-size <size>   bytes per chunk (default 8MiB): 512KiB, 8MiB, 1GiB, 5MB...
                            (KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000)
      --prefetch <n>        chunks read ahead while others are on the wire (default 2)
      --parallel <n>        chunks on the wire at once where the protocol allows
                            (s3, tus concatenation; default 4)
      --adaptive            tune the chunk size to the measured throughput
      --limit-rate <size>   cap the sending rate, per second (e.g. 10MiB)
      --retries <n>         retries for the whole upload, shared by all chunks (default 10)

Resume:
      --state-dir <dir>     where resume state is kept (default:
                            $XDG_STATE_HOME/chunked-uploader or ~/.local/state/chunked-uploader)
      --no-resume           start a new upload even if an earlier one could be resumed

Output:
  -q, --quiet               no progress: errors, and the final location on stdout
      --json                one JSON object per line on stdout: start, resumed,
                            progress, retry, then complete, error or interrupted
  -h, --help                show this help
      --version             show the version

Environment:
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION   (s3)
  GCS_ACCESS_TOKEN   an OAuth 2.0 access token                               (gcs)

Exit status: 0 uploaded, 1 upload failed, 2 usage error, 130 interrupted (143 on SIGTERM).

Examples:
  tus   chunked-upload movie.mp4 https://tus.example/files/ -H 'Authorization: Bearer TOKEN'
  s3    AWS_ACCESS_KEY_ID=AKIA... AWS_SECRET_ACCESS_KEY=... \\
          chunked-upload movie.mp4 https://s3.eu-west-1.amazonaws.com --protocol s3 \\
          --bucket media --key raw/movie.mp4 --region eu-west-1 --chunk-size 64MiB --parallel 8
  gcs   GCS_ACCESS_TOKEN=$(gcloud auth print-access-token) \\
          chunked-upload movie.mp4 https://storage.googleapis.com --protocol gcs \\
          --bucket media --name raw/movie.mp4
  http  chunked-upload movie.mp4 https://media.example/files/movie.mp4 --protocol http
  pipe  ffmpeg -i in.mov -f mp4 -movflags frag_keyframe+empty_moov - \\
          | chunked-upload - https://tus.example/files/ --json
`;

/** Bad command-line input: exit status 2 and a pointer to --help. */
class UsageError extends Error {}

interface Parsed {
  file: string;
  url: string;
  protocol: ProtocolName;
  headers: Record<string, string>;
  bucket: string | undefined;
  key: string | undefined;
  name: string | undefined;
  region: string | undefined;
  chunkSize: number;
  prefetch: number;
  parallel: number;
  adaptive: boolean;
  limitRate: number | undefined;
  retries: number | undefined;
  stateDir: string | undefined;
  resume: boolean;
  quiet: boolean;
  json: boolean;
}

/**
 * @internal Runs `chunked-upload` with `argv` (without `node` and the
 * script) and resolves with the exit status: 0 uploaded, 1 failed, 2 usage
 * error, 130 interrupted by `io.signal` (the state is kept to resume).
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * process.on('SIGINT', () => controller.abort());
 * process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal });
 * ```
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch (error) {
    return usageError(io, error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) {
    io.stdout.write(USAGE);
    return EXIT.ok;
  }
  if (values.version === true) {
    io.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  let args: Parsed;
  let protocol: UploadProtocol;
  try {
    args = validate(values, positionals);
    protocol = makeProtocol(args, io.env);
  } catch (error) {
    if (error instanceof UsageError || InvalidArgumentError.isInstance(error)) {
      return usageError(io, error.message);
    }
    throw error;
  }

  const reporter: Reporter = args.json
    ? new JsonReporter(io.stdout, args.quiet)
    : new HumanReporter(io.stdout, io.stderr, args.quiet);
  if (io.env.GCS_ACCESS_TOKEN === undefined && args.protocol === 'gcs' && !args.json) {
    io.stderr.write('chunked-upload: GCS_ACCESS_TOKEN is not set: sending no Authorization\n');
  }

  let source: UploadSource;
  const fromStdin = args.file === '-';
  if (fromStdin) {
    if (io.stdin === undefined) return usageError(io, 'no stdin to read - from');
    source = fromNodeReadable(io.stdin, { name: args.key ?? args.name ?? 'stdin' });
  } else {
    try {
      source = await fromFile(args.file);
    } catch (error) {
      if (SourceError.isInstance(error)) return usageError(io, error.message);
      throw error;
    }
  }

  // A stream cannot be read again, so its state could never be used: keep none on disk.
  const files = fromStdin ? undefined : new FileStateStore(fileStoreOptions(args.stateDir));
  const tracked = trackFingerprint(files ?? new MemoryStateStore(), args.resume);
  const options: UploadOptions = {
    protocol,
    chunkSize: args.chunkSize,
    prefetch: args.prefetch,
    parallel: args.parallel,
    adaptive: args.adaptive,
    stateStore: tracked.store,
  };
  if (args.retries !== undefined) options.retry = { retries: args.retries };
  if (args.limitRate !== undefined) options.throttle = { bytesPerSecond: args.limitRate };
  if (io.signal !== undefined) options.signal = io.signal;

  let job: Upload;
  try {
    job = new Upload(source, options);
  } catch (error) {
    await source.close?.();
    if (InvalidArgumentError.isInstance(error)) return usageError(io, error.message);
    throw error;
  }
  job.on('resumed', (bytes) => reporter.resumed(bytes, source.size));
  job.on('progress', (progress) => reporter.progress(progress));
  job.on('retry', (event) => reporter.retry(event));
  reporter.start({
    file: args.file,
    size: source.size,
    protocol: protocol.name,
    target: protocol.target,
    chunkSize: args.chunkSize,
  });
  try {
    const result = await job.start();
    reporter.complete(result);
    return EXIT.ok;
  } catch (error) {
    const statePath =
      files !== undefined && tracked.fingerprint !== undefined
        ? files.pathOf(tracked.fingerprint)
        : undefined;
    if (UploadAbortedError.isInstance(error) || io.signal?.aborted === true) {
      reporter.interrupted(job.progress, resumeHint(args, statePath, 'interrupted'));
      return EXIT.interrupted;
    }
    const stored = job.progress.bytesAcknowledged > 0;
    reporter.failed(
      error,
      job.progress,
      stored && statePath !== undefined ? resumeHint(args, statePath, 'failed') : undefined,
    );
    return EXIT.failed;
  }
}

/**
 * @internal The `chunked-upload` executable: wires SIGINT and SIGTERM
 * (abort, keep the state, exit 130 or 143; a second signal exits at once),
 * runs {@link runCli} and exits with its status once stdout and stderr are
 * flushed.
 *
 * @example
 * ```ts
 * main(); // in src/cli.ts
 * ```
 */
export function main(): void {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  // SIGTERM (a container stopping) gets the same clean stop as Ctrl-C.
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(exitStatusOf(signal));
    received = signal;
    controller.abort(new Error(`interrupted (${signal})`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    signal: controller.signal,
  })
    .catch((error: unknown) => {
      process.stderr.write(
        `chunked-upload: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      return EXIT.failed;
    })
    .then((status) => {
      const code =
        status === EXIT.interrupted && received !== undefined ? exitStatusOf(received) : status;
      // Idle keep-alive sockets may hold the event loop open; exit once the output is out.
      let pending = 2;
      const done = () => {
        if (--pending === 0) process.exit(code);
      };
      process.stdout.write('', done);
      process.stderr.write('', done);
    });
}

/** 128 + the signal number, as shells report a process stopped by a signal: 130 for SIGINT. */
function exitStatusOf(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? 143 : EXIT.interrupted;
}

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

function validate(values: ReturnType<typeof parse>['values'], positionals: string[]): Parsed {
  if (positionals.length !== 2) {
    throw new UsageError(
      positionals.length < 2
        ? `expected <file> and <url>, got ${positionals.length === 0 ? 'neither' : `only ${JSON.stringify(positionals[0])}`}`
        : `expected <file> and <url>, got ${positionals.length} arguments: ${positionals.map((p) => JSON.stringify(p)).join(' ')}`,
    );
  }
  const protocol = (values.protocol ?? 'tus') as ProtocolName;
  if (!PROTOCOLS.includes(protocol)) {
    throw new UsageError(
      `--protocol ${JSON.stringify(values.protocol)} is not one of ${PROTOCOLS.join(', ')}`,
    );
  }
  const only = (option: string, value: unknown, allowed: ProtocolName[]) => {
    if (value !== undefined && !allowed.includes(protocol)) {
      throw new UsageError(
        `--${option} applies to --protocol ${allowed.join(' or ')}, not ${protocol}`,
      );
    }
  };
  only('header', values.header, ['tus', 'http']);
  only('bucket', values.bucket, ['s3', 'gcs']);
  only('key', values.key, ['s3']);
  only('region', values.region, ['s3']);
  only('name', values.name, ['gcs']);
  const headers: Record<string, string> = {};
  for (const header of values.header ?? []) {
    const colon = header.indexOf(':');
    const name = colon < 0 ? '' : header.slice(0, colon).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new UsageError(`--header ${JSON.stringify(header)} is not 'Name: value'`);
    }
    headers[name.toLowerCase()] = header.slice(colon + 1).trim();
  }
  const [file, url] = positionals as [string, string];
  return {
    file,
    url,
    protocol,
    headers,
    bucket: values.bucket,
    key: values.key,
    name: values.name,
    region: values.region,
    chunkSize: size('--chunk-size', values['chunk-size'] ?? '8MiB', 1),
    prefetch: count('--prefetch', values.prefetch, 2, 0),
    parallel: count('--parallel', values.parallel, 4, 1),
    adaptive: values.adaptive === true,
    limitRate:
      values['limit-rate'] === undefined
        ? undefined
        : size('--limit-rate', values['limit-rate'], 1),
    retries: values.retries === undefined ? undefined : count('--retries', values.retries, 10, 0),
    stateDir: values['state-dir'],
    resume: values['no-resume'] !== true,
    quiet: values.quiet === true,
    json: values.json === true,
  };
}

function makeProtocol(args: Parsed, env: Record<string, string | undefined>): UploadProtocol {
  const objectName = (option: string, given: string | undefined): string => {
    if (given !== undefined) return given;
    if (args.file === '-')
      throw new UsageError(`uploading stdin to ${args.protocol} needs --${option}`);
    return basename(args.file);
  };
  switch (args.protocol) {
    case 'tus':
      // With creation-with-upload the upload URL only exists once the first
      // chunk is stored, so a run killed during that chunk leaves nothing to
      // resume. The CLI is for big files that get killed: one extra POST
      // round trip buys a resumable state before the first byte is sent.
      return tus({ endpoint: args.url, headers: args.headers, creationWithUpload: false });
    case 'http':
      return httpPut({ url: args.url, headers: args.headers });
    case 's3': {
      const accessKeyId = env.AWS_ACCESS_KEY_ID;
      const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
      if (!accessKeyId || !secretAccessKey) {
        throw new UsageError(
          '--protocol s3 needs credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
        );
      }
      if (args.bucket === undefined) throw new UsageError('--protocol s3 needs --bucket');
      return s3({
        endpoint: args.url,
        bucket: args.bucket,
        key: objectName('key', args.key),
        region: args.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION,
        credentials: { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN },
      });
    }
    case 'gcs': {
      if (args.bucket === undefined) throw new UsageError('--protocol gcs needs --bucket');
      return gcs({
        endpoint: args.url,
        bucket: args.bucket,
        name: objectName('name', args.name),
        accessToken: env.GCS_ACCESS_TOKEN,
      });
    }
  }
}

function size(option: string, text: string, min: number): number {
  const bytes = parseByteSize(text, option);
  if (bytes < min)
    throw new UsageError(`${option} ${JSON.stringify(text)} must be at least ${min} byte`);
  return bytes;
}

function count(option: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${option} ${JSON.stringify(text)} must be a whole number >= ${min}`);
  }
  return n;
}

function fileStoreOptions(directory: string | undefined): { directory?: string } {
  return directory === undefined ? {} : { directory };
}

/**
 * Learns the fingerprint once state exists on disk (so a message can name
 * the state file, and say nothing was saved when none was), and with
 * `--no-resume` hides saved state from the engine while still saving the
 * new upload's, so a later run can resume it.
 */
function trackFingerprint(
  store: StateStore,
  resume: boolean,
): { store: StateStore; readonly fingerprint: string | undefined } {
  let fingerprint: string | undefined;
  return {
    get fingerprint() {
      return fingerprint;
    },
    store: {
      get: async (key) => {
        if (!resume) return undefined;
        const state = await store.get(key);
        if (state !== undefined) fingerprint = key;
        return state;
      },
      set: (key, state) => {
        fingerprint = key;
        return store.set(key, state);
      },
      delete: (key) => store.delete(key),
    },
  };
}

function resumeHint(
  args: Parsed,
  statePath: string | undefined,
  why: 'interrupted' | 'failed',
): string {
  if (args.file === '-') return 'stdin cannot be read again, so this upload cannot be resumed.';
  if (statePath === undefined) {
    return 'Nothing was saved yet: running the same command again starts over.';
  }
  const again = args.resume
    ? 'run the same command again'
    : 'run the same command again without --no-resume';
  return why === 'interrupted'
    ? `The upload state is kept in ${statePath}: ${again} to resume.`
    : `The upload state is kept in ${statePath}: ${again} to resume once the cause is fixed.`;
}

function usageError(io: CliIo, message: string): number {
  io.stderr.write(`chunked-upload: ${message}\nTry 'chunked-upload --help' for usage.\n`);
  return EXIT.usage;
}

function version(): string {
  // Two levels cover both src/lib/cli.node.ts and the bundled dist/*.js.
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'chunked-uploader' && pkg.version !== undefined) return pkg.version;
    } catch {
      // Not there: try the next level.
    }
  }
  return 'unknown';
}
