import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MediaServerError } from './errors.ts';

/** Where videos live: a local directory (the default) or an S3-compatible bucket. */
export type StorageConfig =
  | { readonly kind: 'local'; readonly dir: string }
  | {
      readonly kind: 's3';
      readonly endpoint: string;
      readonly bucket: string;
      readonly region: string;
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      /** Key prefix under which the library lives, e.g. `media/`. */
      readonly prefix: string;
      /** Path-style URLs (`endpoint/bucket/key`), which MinIO, s3rver and most self-hosted stores need. */
      readonly forcePathStyle: boolean;
    };

/** Everything the server reads from its environment and flags, validated. */
export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  /** Local working directory: the library (local storage), upload staging, generated samples. */
  readonly dataDir: string;
  readonly storage: StorageConfig;
  /** Byte budget of the in-memory video cache. @default 512 MiB */
  readonly cacheBytes: number;
  /** Largest file the cache admits (bigger ones are always served by cold reads). @default cacheBytes / 2 */
  readonly cacheMaxFileBytes: number;
  /** Requests for one file before it is loaded into the cache. @default 2 */
  readonly cacheAdmitAfter: number;
  /** Size of the pooled buffers cold reads fill. @default 256 KiB */
  readonly readChunkBytes: number;
  /** Pooled buffers for cold reads; responses wait for one when all are in use. @default 256 */
  readonly readBuffers: number;
  /** Ranges a request may ask for before the Range header is ignored (RFC 9110 §14.2). @default 16 */
  readonly maxRanges: number;
  /** Largest request head (request line plus headers). @default 16 KiB */
  readonly maxHeaderBytes: number;
  /** Concurrent connections; more are refused. @default 1024 */
  readonly maxConnections: number;
  /** Time allowed to receive a request's headers (slowloris guard). @default 10 s */
  readonly headersTimeoutMs: number;
  /** Time allowed to receive a whole request, body included. @default 10 min */
  readonly requestTimeoutMs: number;
  /** A socket with no traffic either way for this long is closed. @default 60 s */
  readonly idleTimeoutMs: number;
  /** Idle time an HTTP keep-alive connection is held between requests. @default 5 s */
  readonly keepAliveTimeoutMs: number;
  /** Time in-flight requests get to finish after SIGTERM before connections are cut. @default 10 s */
  readonly shutdownGraceMs: number;
  /** Put a sample video into an empty library on start. @default true */
  readonly sample: boolean;
  readonly logLevel: LogLevel;
  // --- live streaming (/live, src/live) ---
  /** Key a broadcaster must present (`Authorization: Bearer KEY` or `?key=KEY`); unset, anyone may broadcast. @default undefined */
  readonly liveStreamKey: string | undefined;
  /** Live streams at once; one more broadcaster gets 429. @default 16 */
  readonly liveMaxStreams: number;
  /** Viewers per live stream; one more gets 429. @default 100 */
  readonly liveMaxViewers: number;
  /** Ring of newest fragments each live stream keeps: the stream's memory, whatever its viewers do. @default 32 MiB */
  readonly liveRingBytes: number;
  /** Largest fragment, init segment or box a broadcaster may push (413 beyond); at most a third of the ring. @default 4 MiB */
  readonly liveMaxFragmentBytes: number;
  /** A viewer's default byte budget: how far behind it may fall before its policy acts (`?budget=` up to liveRingBytes - 2 × liveMaxFragmentBytes). @default 8 MiB */
  readonly liveViewerBudgetBytes: number;
  /** What a viewer over budget gets by default (`?policy=`): skip to the next keyframe, or disconnect. @default 'skip' */
  readonly liveViewerPolicy: LiveViewerPolicy;
  /** A viewer still being sent a fragment ingested this long ago is disconnected (`?maxLagMs=` may only lower it). @default 30 s */
  readonly liveViewerMaxLagMs: number;
  /** Ingest ceiling in bits per second over liveBitrateWindowMs; a broadcaster above it gets 429 and is cut. @default 20 Mbit/s */
  readonly liveMaxBitrate: number;
  /** Window the ingest bitrate is measured over (a burst of up to one window's worth passes). @default 5 s */
  readonly liveBitrateWindowMs: number;
  /** Time a broadcaster whose connection dropped has to reconnect before its viewers get their end of stream. @default 5 s */
  readonly liveReconnectGraceMs: number;
  /** Store each live stream in the library as a video when it ends (or changes its init segment). @default false */
  readonly liveRecord: boolean;
  // --- end live streaming ---
  // --- uploads (tus, /uploads) ---
  /** Largest upload accepted: a bigger `Upload-Length` is refused with 413 at creation. @default 4 GiB */
  readonly uploadMaxBytes: number;
  /**
   * Shared secret uploads must send as `Authorization: Bearer <key>` (401
   * otherwise); unset, anyone who can reach the server may upload.
   * @default undefined
   */
  readonly uploadKey: string | undefined;
  /** An upload not finished this long after its creation is deleted (410 before the sweep). @default 24 h */
  readonly uploadExpiryMs: number;
  // --- end uploads ---
}

/** Log levels, least to most severe. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

const FLAGS = {
  port: { type: 'string' },
  host: { type: 'string' },
  'data-dir': { type: 'string' },
  'cache-bytes': { type: 'string' },
  'log-level': { type: 'string' },
  'no-sample': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The `--help` text. */
export const USAGE = `Usage: media-server [--port N] [--host ADDR] [--data-dir DIR] [--cache-bytes SIZE] [--log-level LEVEL] [--no-sample]

Environment (flags win): PORT, HOST, DATA_DIR, CACHE_BYTES, CACHE_MAX_FILE_BYTES,
CACHE_ADMIT_AFTER, READ_CHUNK_BYTES, READ_BUFFERS, MAX_RANGES, MAX_HEADER_BYTES,
MAX_CONNECTIONS, HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS, IDLE_TIMEOUT_MS,
KEEP_ALIVE_TIMEOUT_MS, SHUTDOWN_GRACE_MS, SAMPLE (0/1), LOG_LEVEL.
S3-compatible storage: S3_BUCKET (turns it on), S3_ENDPOINT, S3_REGION,
S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY),
S3_PREFIX, S3_FORCE_PATH_STYLE (0/1).
Live (/live): LIVE_STREAM_KEY, LIVE_MAX_STREAMS, LIVE_MAX_VIEWERS, LIVE_RING_BYTES,
LIVE_MAX_FRAGMENT_BYTES, LIVE_VIEWER_BUDGET_BYTES, LIVE_VIEWER_POLICY (skip/disconnect),
LIVE_VIEWER_MAX_LAG_MS, LIVE_MAX_BITRATE (bits/s: 20M, 2500k), LIVE_BITRATE_WINDOW_MS,
LIVE_RECONNECT_GRACE_MS, LIVE_RECORD (0/1).
Uploads (tus at /uploads): UPLOAD_MAX_BYTES, UPLOAD_KEY, UPLOAD_EXPIRY_MS.
Sizes take a unit: 512MiB, 2GiB, 65536.`;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 2 ** 20,
  mb: 1e6,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 1e9,
  gib: 2 ** 30,
};

/**
 * Reads the configuration from flags and environment, collecting every
 * problem before failing so one start-up shows them all.
 *
 * @example
 * ```ts
 * const config = loadConfig(process.argv.slice(2), process.env);
 * ```
 */
export function loadConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd = process.cwd(),
): ServerConfig {
  const problems: string[] = [];
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags(argv);
  } catch (error) {
    throw new MediaServerError('CONFIG_INVALID', `${(error as Error).message}\n\n${USAGE}`, {
      cause: error,
    });
  }
  const pick = (flag: string | undefined, name: string): string | undefined => {
    const value = flag ?? env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const int = (
    name: string,
    raw: string | undefined,
    fallback: number,
    min: number,
    max: number,
  ): number => {
    if (raw === undefined) return fallback;
    const value = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected an integer in ${min}..${max}`);
      return fallback;
    }
    return value;
  };
  const size = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
    const unit = UNITS[match?.[2]?.toLowerCase() ?? 'x'];
    const value = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min) {
      problems.push(
        `${name}=${JSON.stringify(raw)}: expected a size of at least ${min} bytes, like 512MiB`,
      );
      return fallback;
    }
    return value;
  };
  const bool = (name: string, raw: string | undefined, fallback: boolean): boolean => {
    if (raw === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    problems.push(`${name}=${JSON.stringify(raw)}: expected 0 or 1`);
    return fallback;
  };

  const port = int('PORT', pick(flags.port, 'PORT'), 8080, 0, 65535);
  const host = pick(flags.host, 'HOST') ?? '127.0.0.1';
  const dataDirRaw = pick(flags['data-dir'], 'DATA_DIR') ?? 'data';
  const dataDir = isAbsolute(dataDirRaw) ? dataDirRaw : resolve(cwd, dataDirRaw);
  const cacheBytes = size(
    'CACHE_BYTES',
    pick(flags['cache-bytes'], 'CACHE_BYTES'),
    512 * 2 ** 20,
    0,
  );
  const cacheMaxFileBytes = size(
    'CACHE_MAX_FILE_BYTES',
    pick(undefined, 'CACHE_MAX_FILE_BYTES'),
    Math.floor(cacheBytes / 2),
    0,
  );
  if (cacheMaxFileBytes > cacheBytes) {
    problems.push(`CACHE_MAX_FILE_BYTES=${cacheMaxFileBytes} exceeds CACHE_BYTES=${cacheBytes}`);
  }
  const logLevelRaw = pick(flags['log-level'], 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevelRaw as LogLevel)) {
    problems.push(
      `LOG_LEVEL=${JSON.stringify(logLevelRaw)}: expected one of ${LOG_LEVELS.join(', ')}`,
    );
  }

  const config: ServerConfig = {
    host,
    port,
    dataDir,
    storage: storageConfig(env, dataDir, problems),
    cacheBytes,
    cacheMaxFileBytes,
    cacheAdmitAfter: int(
      'CACHE_ADMIT_AFTER',
      pick(undefined, 'CACHE_ADMIT_AFTER'),
      2,
      1,
      1_000_000,
    ),
    readChunkBytes: size('READ_CHUNK_BYTES', pick(undefined, 'READ_CHUNK_BYTES'), 256 * 1024, 4096),
    readBuffers: int('READ_BUFFERS', pick(undefined, 'READ_BUFFERS'), 256, 2, 1_000_000),
    maxRanges: int('MAX_RANGES', pick(undefined, 'MAX_RANGES'), 16, 1, 1000),
    maxHeaderBytes: size('MAX_HEADER_BYTES', pick(undefined, 'MAX_HEADER_BYTES'), 16 * 1024, 1024),
    maxConnections: int('MAX_CONNECTIONS', pick(undefined, 'MAX_CONNECTIONS'), 1024, 1, 1_000_000),
    headersTimeoutMs: int(
      'HEADERS_TIMEOUT_MS',
      pick(undefined, 'HEADERS_TIMEOUT_MS'),
      10_000,
      100,
      3_600_000,
    ),
    requestTimeoutMs: int(
      'REQUEST_TIMEOUT_MS',
      pick(undefined, 'REQUEST_TIMEOUT_MS'),
      600_000,
      0,
      86_400_000,
    ),
    idleTimeoutMs: int(
      'IDLE_TIMEOUT_MS',
      pick(undefined, 'IDLE_TIMEOUT_MS'),
      60_000,
      100,
      86_400_000,
    ),
    keepAliveTimeoutMs: int(
      'KEEP_ALIVE_TIMEOUT_MS',
      pick(undefined, 'KEEP_ALIVE_TIMEOUT_MS'),
      5_000,
      0,
      3_600_000,
    ),
    shutdownGraceMs: int(
      'SHUTDOWN_GRACE_MS',
      pick(undefined, 'SHUTDOWN_GRACE_MS'),
      10_000,
      0,
      600_000,
    ),
    sample: flags['no-sample'] === true ? false : bool('SAMPLE', pick(undefined, 'SAMPLE'), true),
    logLevel: logLevelRaw as LogLevel,
    // --- live streaming (/live, src/live) ---
    ...liveConfig(env, { int, size, bool }, problems),
    // --- end live streaming ---
    // --- uploads (tus, /uploads) ---
    uploadMaxBytes: size('UPLOAD_MAX_BYTES', pick(undefined, 'UPLOAD_MAX_BYTES'), 4 * 2 ** 30, 1),
    uploadKey: uploadKey(pick(undefined, 'UPLOAD_KEY'), problems),
    uploadExpiryMs: int(
      'UPLOAD_EXPIRY_MS',
      pick(undefined, 'UPLOAD_EXPIRY_MS'),
      86_400_000,
      1000,
      30 * 86_400_000,
    ),
    // --- end uploads ---
  };
  if (config.headersTimeoutMs > config.requestTimeoutMs && config.requestTimeoutMs !== 0) {
    problems.push(
      `HEADERS_TIMEOUT_MS=${config.headersTimeoutMs} exceeds REQUEST_TIMEOUT_MS=${config.requestTimeoutMs}`,
    );
  }
  if (problems.length > 0) {
    throw new MediaServerError(
      'CONFIG_INVALID',
      `invalid configuration:\n  ${problems.join('\n  ')}`,
    );
  }
  return config;
}

/** True when `--help` was given. */
export function wantsHelp(argv: readonly string[]): boolean {
  try {
    return parseFlags(argv).help === true;
  } catch {
    return false;
  }
}

function parseFlags(argv: readonly string[]) {
  // `pnpm start -- --port 9000` passes the separator through; it means nothing here.
  const args = argv[0] === '--' ? argv.slice(1) : [...argv];
  return parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false }).values;
}

// --- uploads (tus, /uploads) ---
function uploadKey(raw: string | undefined, problems: string[]): string | undefined {
  // It travels in an Authorization header, and a short key is guessable.
  if (raw !== undefined && !/^[\x21-\x7e]{16,1024}$/.test(raw)) {
    problems.push(
      `UPLOAD_KEY: expected 16 to 1024 visible ASCII characters without spaces, got ${raw.length} characters`,
    );
  }
  return raw;
}
// --- end uploads ---

function storageConfig(env: NodeJS.ProcessEnv, dataDir: string, problems: string[]): StorageConfig {
  const bucket = env.S3_BUCKET;
  if (bucket === undefined || bucket === '')
    return { kind: 'local', dir: resolve(dataDir, 'videos') };
  const accessKeyId = env.S3_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID ?? '';
  const secretAccessKey = env.S3_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY ?? '';
  const region = env.S3_REGION ?? env.AWS_REGION ?? 'us-east-1';
  const endpoint = env.S3_ENDPOINT ?? `https://s3.${region}.amazonaws.com`;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    problems.push(
      `S3_BUCKET=${JSON.stringify(bucket)}: not a valid bucket name (3-63 of a-z 0-9 . -)`,
    );
  }
  try {
    const url = new URL(endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    problems.push(`S3_ENDPOINT=${JSON.stringify(endpoint)}: expected an http(s) URL`);
  }
  if (accessKeyId === '')
    problems.push('S3_BUCKET is set but S3_ACCESS_KEY_ID (or AWS_ACCESS_KEY_ID) is not');
  if (secretAccessKey === '') {
    problems.push('S3_BUCKET is set but S3_SECRET_ACCESS_KEY (or AWS_SECRET_ACCESS_KEY) is not');
  }
  const prefix = env.S3_PREFIX ?? '';
  const badSegment = prefix
    .split('/')
    .slice(0, -1)
    .some((s) => s === '' || s === '.' || s === '..');
  if (prefix !== '' && (!/^[A-Za-z0-9!_.*'()/-]+\/$/.test(prefix) || badSegment)) {
    problems.push(
      `S3_PREFIX=${JSON.stringify(prefix)}: expected safe key characters ending in "/"`,
    );
  }
  const pathStyle = env.S3_FORCE_PATH_STYLE;
  return {
    kind: 's3',
    endpoint,
    bucket,
    region,
    accessKeyId,
    secretAccessKey,
    prefix,
    forcePathStyle: pathStyle === undefined ? true : /^(1|true|yes|on)$/i.test(pathStyle),
  };
}

// --- live streaming (/live, src/live) ---

/**
 * What a live viewer over its byte budget gets: `skip` to the next keyframe, or `disconnect`.
 *
 * @example
 * ```ts
 * const policy: LiveViewerPolicy = url.searchParams.get('policy') === 'disconnect' ? 'disconnect' : 'skip';
 * ```
 */
export type LiveViewerPolicy = 'skip' | 'disconnect';

/**
 * Smallest viewer budget: below a fragment or two a viewer would do nothing but skip.
 *
 * @example
 * ```ts
 * if (budget < LIVE_MIN_BUDGET) throw new MediaServerError('BAD_REQUEST', 'budget too small');
 * ```
 */
export const LIVE_MIN_BUDGET = 64 * 1024;

type LiveConfig = Pick<
  ServerConfig,
  | 'liveStreamKey'
  | 'liveMaxStreams'
  | 'liveMaxViewers'
  | 'liveRingBytes'
  | 'liveMaxFragmentBytes'
  | 'liveViewerBudgetBytes'
  | 'liveViewerPolicy'
  | 'liveViewerMaxLagMs'
  | 'liveMaxBitrate'
  | 'liveBitrateWindowMs'
  | 'liveReconnectGraceMs'
  | 'liveRecord'
>;

interface NumberParsers {
  int(name: string, raw: string | undefined, fallback: number, min: number, max: number): number;
  size(name: string, raw: string | undefined, fallback: number, min: number): number;
  bool(name: string, raw: string | undefined, fallback: boolean): boolean;
}

function liveConfig(env: NodeJS.ProcessEnv, parse: NumberParsers, problems: string[]): LiveConfig {
  const raw = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const ringBytes = parse.size('LIVE_RING_BYTES', raw('LIVE_RING_BYTES'), 32 * 2 ** 20, 3 * 1024);
  if (ringBytes > 2 ** 32) problems.push(`LIVE_RING_BYTES=${ringBytes}: at most 4GiB`);
  const maxFragmentBytes = parse.size(
    'LIVE_MAX_FRAGMENT_BYTES',
    raw('LIVE_MAX_FRAGMENT_BYTES'),
    Math.min(4 * 2 ** 20, Math.floor(ringBytes / 3)),
    1024,
  );
  // The fan-out keeps a viewer's budget plus two fragments in the ring (see Broadcast.maxBudget).
  if (maxFragmentBytes * 3 > ringBytes) {
    problems.push(
      `LIVE_MAX_FRAGMENT_BYTES=${maxFragmentBytes} is more than a third of LIVE_RING_BYTES=${ringBytes}`,
    );
  }
  const maxBudget = ringBytes - 2 * maxFragmentBytes;
  const budget = parse.size(
    'LIVE_VIEWER_BUDGET_BYTES',
    raw('LIVE_VIEWER_BUDGET_BYTES'),
    Math.max(LIVE_MIN_BUDGET, Math.min(8 * 2 ** 20, maxBudget)),
    LIVE_MIN_BUDGET,
  );
  if (budget > maxBudget) {
    problems.push(
      `LIVE_VIEWER_BUDGET_BYTES=${budget} does not fit: at most LIVE_RING_BYTES - 2 × LIVE_MAX_FRAGMENT_BYTES = ${maxBudget}`,
    );
  }
  const policy = raw('LIVE_VIEWER_POLICY') ?? 'skip';
  if (policy !== 'skip' && policy !== 'disconnect') {
    problems.push(`LIVE_VIEWER_POLICY=${JSON.stringify(policy)}: expected skip or disconnect`);
  }
  const key = raw('LIVE_STREAM_KEY');
  // It travels in an Authorization header or a query string, and a short key is guessable.
  if (key !== undefined && !/^[\x21-\x7e]{16,1024}$/.test(key)) {
    problems.push(
      `LIVE_STREAM_KEY: expected 16 to 1024 visible ASCII characters without spaces, got ${key.length} characters`,
    );
  }
  return {
    liveStreamKey: key,
    liveMaxStreams: parse.int('LIVE_MAX_STREAMS', raw('LIVE_MAX_STREAMS'), 16, 1, 10_000),
    liveMaxViewers: parse.int('LIVE_MAX_VIEWERS', raw('LIVE_MAX_VIEWERS'), 100, 1, 1_000_000),
    liveRingBytes: ringBytes,
    liveMaxFragmentBytes: maxFragmentBytes,
    liveViewerBudgetBytes: budget,
    liveViewerPolicy: policy === 'disconnect' ? 'disconnect' : 'skip',
    liveViewerMaxLagMs: parse.int(
      'LIVE_VIEWER_MAX_LAG_MS',
      raw('LIVE_VIEWER_MAX_LAG_MS'),
      30_000,
      100,
      3_600_000,
    ),
    liveMaxBitrate: bitrate(raw('LIVE_MAX_BITRATE'), 20e6, problems),
    liveBitrateWindowMs: parse.int(
      'LIVE_BITRATE_WINDOW_MS',
      raw('LIVE_BITRATE_WINDOW_MS'),
      5_000,
      100,
      600_000,
    ),
    liveReconnectGraceMs: parse.int(
      'LIVE_RECONNECT_GRACE_MS',
      raw('LIVE_RECONNECT_GRACE_MS'),
      5_000,
      0,
      600_000,
    ),
    liveRecord: parse.bool('LIVE_RECORD', raw('LIVE_RECORD'), false),
  };
}

/** Bits per second with SI units (`20M`, `2500k`, `8000000`), the way bitrates are quoted. */
function bitrate(raw: string | undefined, fallback: number, problems: string[]): number {
  if (raw === undefined) return fallback;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:bit\/s|bps|b)?\s*$/i.exec(raw);
  const unit = ({ '': 1, k: 1e3, m: 1e6, g: 1e9 } as Record<string, number>)[
    match?.[2]?.toLowerCase() ?? 'x'
  ];
  const value = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : Number.NaN;
  if (!(value >= 8000 && value <= 1e12)) {
    problems.push(
      `LIVE_MAX_BITRATE=${JSON.stringify(raw)}: expected bits per second from 8k to 1000G, like 20M`,
    );
    return fallback;
  }
  return value;
}
// --- end live streaming ---
