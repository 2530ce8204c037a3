import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import { type IncomingMessage, request, get as requestGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const FFMPEG = process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';
export const FFPROBE = process.env.FFPROBE_PATH ?? '/usr/bin/ffprobe';

/** Fragmented MP4 the way a live encoder sends it (what the example command produces). */
export const FRAGMENTED = ['-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof'];

/**
 * A test card and a tone: 25 fps, a keyframe every 25 frames exactly, and
 * (with `fragmentMs`) fragments cut every 200 ms too, so most fragments do
 * not start with a keyframe. `noise` makes every frame expensive, for a
 * bitrate a slow reader cannot keep up with.
 */
export function encodeArgs(options: {
  seconds: number;
  size?: string;
  noise?: number;
  fragmentMs?: number;
  realtime?: boolean;
}): string[] {
  const { seconds, size = '320x180', noise = 0, fragmentMs, realtime = false } = options;
  return [
    ...(realtime ? ['-re'] : []),
    ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25:duration=${seconds}`],
    ...(realtime ? ['-re'] : []),
    ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=44100:duration=${seconds}`],
    noise > 0 ? ['-vf', `noise=alls=${noise}:allf=t`] : [],
    ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'],
    ['-g', '25', '-keyint_min', '25', '-sc_threshold', '0'],
    ['-c:a', 'aac', '-b:a', '64k', '-map_metadata', '-1', '-fflags', '+bitexact'],
    FRAGMENTED,
    fragmentMs === undefined ? [] : ['-frag_duration', String(fragmentMs * 1000)],
  ].flat();
}

/** The fixtures: 200 ms fragments (most without a keyframe), one fragment per GOP, and a smaller picture. */
const RECIPES = {
  fragments: { seconds: 3, fragmentMs: 200 },
  gops: { seconds: 3 },
  small: { seconds: 2, size: '160x90' },
} as const;

/** Name of a live fixture. */
export type LiveFixtureName = keyof typeof RECIPES;

const CACHE_DIR = join(
  tmpdir(),
  `media-server-live-fixtures-${createHash('sha256')
    .update(JSON.stringify(Object.values(RECIPES).map((r) => encodeArgs(r))))
    .digest('hex')
    .slice(0, 12)}`,
);
const made = new Map<string, Promise<{ path: string; bytes: Uint8Array }>>();

/**
 * A fragmented MP4 file made once per recipe by the real FFmpeg (cached in
 * the temp dir across runs, content-addressed by the recipes).
 */
export function liveFixture(name: LiveFixtureName): Promise<{ path: string; bytes: Uint8Array }> {
  const key = name;
  let bytes = made.get(key);
  if (bytes === undefined) {
    bytes = (async () => {
      const target = join(CACHE_DIR, `${key}.mp4`);
      const ok = await stat(target).then(
        (s) => s.size > 0,
        () => false,
      );
      if (!ok) {
        await mkdir(CACHE_DIR, { recursive: true });
        const partial = `${target}.${process.pid}.partial`;
        const args = encodeArgs(RECIPES[name]);
        await run(FFMPEG, ['-v', 'error', '-nostdin', '-y', ...args, partial]);
        await rename(partial, target);
      }
      return { path: target, bytes: new Uint8Array(await readFile(target)) };
    })();
    made.set(key, bytes);
  }
  return bytes;
}

/** Decode times (s) of the video keyframes of a file, as ffprobe reads its packets. */
export async function keyframeTimes(path: string): Promise<number[]> {
  const { stdout } = await run(FFPROBE, [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-show_entries',
    'packet=dts_time,flags',
    '-of',
    'csv=p=0',
    path,
  ]);
  return stdout
    .trim()
    .split('\n')
    .map((line) => line.split(','))
    .filter(([, flags]) => flags?.startsWith('K'))
    .map(([time]) => Number(time));
}

/** A running `ffmpeg` that pushes to a URL; `done` settles with its exit code and stderr. */
export interface Broadcaster {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; stderr: string }>;
}

/** Starts ffmpeg pushing a live encode to `url` (POST with chunked transfer encoding, ffmpeg's default). */
export function broadcast(url: string, args: string[], extra: string[] = []): Broadcaster {
  const child = spawn(FFMPEG, ['-v', 'error', '-nostdin', ...args, ...extra, url], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, stderr }));
  });
  return { child, done };
}

/** What the server answered a push. */
export interface PushAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** The JSON error code, when the answer is an error. */
  readonly code: string | undefined;
}

/** A push whose body the test writes piece by piece. */
export interface OpenPush {
  /** Writes a piece, waiting for drain; false once the request is gone. */
  write(chunk: Uint8Array): Promise<boolean>;
  end(): void;
  /** Drops the connection mid-body, as a broadcaster that loses its network. */
  destroy(): void;
  readonly answer: Promise<PushAnswer>;
}

/** Starts a chunked POST (or PUT) to `url` and lets the test write its body. */
export function openPush(
  url: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): OpenPush {
  const req = request(url, {
    method: options.method ?? 'POST',
    headers: { 'content-type': 'video/mp4', ...options.headers },
  });
  req.flushHeaders();
  let answered = false;
  const answer = new Promise<PushAnswer>((resolve, reject) => {
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
        } catch {
          code = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, code });
      });
      res.on('error', reject);
    });
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
  });
  answer.catch(() => {});
  return {
    async write(chunk) {
      if (req.destroyed || answered) return false;
      if (!req.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            req.off('drain', done);
            req.off('close', done);
            resolve();
          };
          req.on('drain', done);
          req.on('close', done);
        });
      }
      return !req.destroyed && !answered;
    },
    end: () => {
      if (!req.destroyed) req.end();
    },
    destroy: () => {
      req.destroy();
    },
    answer,
  };
}

/** Pushes `chunks` as one request body and returns the answer. */
export async function push(
  url: string,
  chunks: Iterable<Uint8Array>,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<PushAnswer> {
  const open = openPush(url, options);
  for (const chunk of chunks) if (!(await open.write(chunk))) break;
  open.end();
  return open.answer;
}

/** `bytes` in pieces of `size`, for pushing as chunked request bodies. */
export function* pieces(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

/** The top-level boxes of an MP4 byte stream: type, start and size; `complete` false when the last one is cut off. */
export function topLevelBoxes(bytes: Uint8Array): {
  boxes: { type: string; start: number; size: number }[];
  complete: boolean;
} {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boxes: { type: string; start: number; size: number }[] = [];
  let at = 0;
  while (at + 8 <= bytes.length) {
    const size = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (size < 8 || at + size > bytes.length) return { boxes, complete: false };
    boxes.push({ type, start: at, size });
    at += size;
  }
  return { boxes, complete: at === bytes.length };
}

/** ffprobe's view of a capture: frames decoded per stream type, whether the first video frame is a keyframe, and its error output. */
export async function probe(path: string): Promise<{
  frames: Record<string, number>;
  firstVideoKey: boolean;
  errors: string;
}> {
  const counted = await run(FFPROBE, [
    '-v',
    'error',
    '-count_frames',
    '-show_entries',
    'stream=codec_type,nb_read_frames',
    '-of',
    'json',
    path,
  ]);
  const streams = (
    JSON.parse(counted.stdout) as { streams: { codec_type: string; nb_read_frames?: string }[] }
  ).streams;
  const frames: Record<string, number> = {};
  for (const s of streams) frames[s.codec_type] = Number(s.nb_read_frames ?? 0);
  const first = await run(FFPROBE, [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-read_intervals',
    '%+#1',
    '-show_entries',
    'frame=key_frame,pict_type',
    '-of',
    'json',
    path,
  ]);
  const frame = (JSON.parse(first.stdout) as { frames: { key_frame: number }[] }).frames[0];
  return { frames, firstVideoKey: frame?.key_frame === 1, errors: counted.stderr + first.stderr };
}

/** What a viewer received: whether the response ended cleanly (the chunked body's terminator arrived), and the bytes. */
export interface Watched {
  readonly status: number;
  readonly complete: boolean;
  readonly bytes: number;
  readonly path: string;
}

/** A viewer of a live stream (in a child process) that writes what it gets to a file. */
export interface Watcher {
  /** Settles when the response is over, however it ended. */
  readonly done: Promise<Watched>;
  /** Whether `done` has settled. */
  readonly closed: boolean;
  /** Reads at full speed from now on. */
  unthrottle(): void;
}

const VIEWER_PROCESS = join(import.meta.dirname, 'viewer-process.mjs');

/**
 * GETs `url` from a child process and saves the body to `path`, so nothing
 * it receives counts toward this process's memory. With `throttle`, it
 * reads at most `bytes` every `everyMs` from a paused response: the socket
 * stays full and the server sees a slow link.
 */
export function watch(
  url: string,
  path: string,
  throttle?: { bytes: number; everyMs: number },
): Watcher {
  const args = throttle === undefined ? [] : [String(throttle.bytes), String(throttle.everyMs)];
  const child = spawn(process.execPath, [VIEWER_PROCESS, url, path, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let closed = false;
  let output = '';
  // The child may be gone (its response over) by the time the test unthrottles it.
  child.stdin?.on('error', () => {});
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const done = new Promise<Watched>((resolve, reject) => {
    child.on('close', () => {
      closed = true;
      try {
        const result = JSON.parse(output) as { status: number; complete: boolean; bytes: number };
        resolve({ ...result, path });
      } catch (error) {
        reject(
          new Error(`viewer process for ${url} printed ${JSON.stringify(output)}`, {
            cause: error,
          }),
        );
      }
    });
  });
  return {
    done,
    get closed() {
      return closed;
    },
    unthrottle: () => {
      if (!closed && child.stdin?.writable) child.stdin.write('unthrottle\n');
    },
  };
}

/** Polls `test` every 50 ms until it holds; fails after `timeoutMs` naming `what`. */
export async function until(
  what: string,
  test: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The init segment and the fragments (moof + mdat) of a fragmented MP4 file, as views of it. */
export function unitsOf(bytes: Uint8Array): { init: Uint8Array; fragments: Uint8Array[] } {
  const { boxes } = topLevelBoxes(bytes);
  const moov = boxes.find((b) => b.type === 'moov');
  if (moov === undefined) throw new Error('no moov');
  const fragments: Uint8Array[] = [];
  for (const [i, box] of boxes.entries()) {
    const mdat = boxes[i + 1];
    if (box.type === 'moof' && mdat?.type === 'mdat') {
      fragments.push(bytes.subarray(box.start, mdat.start + mdat.size));
    }
  }
  return { init: bytes.subarray(0, moov.start + moov.size), fragments };
}

/** An in-process viewer that keeps what it receives in memory; `stall()` stops reading (the socket fills up). */
export interface MemoryViewer {
  readonly response: Promise<{ status: number; headers: Record<string, unknown>; body?: string }>;
  readonly done: Promise<{ complete: boolean; bytes: Buffer }>;
  readonly received: number;
  stall(): void;
  resume(): void;
}

/** GETs `url` and collects the body (or, for a non-200 answer, its text). */
export function viewInMemory(url: string, options: { stalled?: boolean } = {}): MemoryViewer {
  const chunks: Buffer[] = [];
  let received = 0;
  let res: IncomingMessage | undefined;
  let stalled = options.stalled ?? false;
  let resolveResponse: (value: {
    status: number;
    headers: Record<string, unknown>;
    body?: string;
  }) => void;
  const response = new Promise<{ status: number; headers: Record<string, unknown>; body?: string }>(
    (resolve) => {
      resolveResponse = resolve;
    },
  );
  const done = new Promise<{ complete: boolean; bytes: Buffer }>((resolve, reject) => {
    const req = requestGet(url, (r) => {
      res = r;
      let ended = false;
      if (r.statusCode !== 200) {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => {
          body += d;
        });
        r.on('end', () => {
          resolveResponse({ status: r.statusCode ?? 0, headers: r.headers, body });
          resolve({ complete: true, bytes: Buffer.alloc(0) });
        });
        return;
      }
      resolveResponse({ status: 200, headers: r.headers });
      r.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
      });
      if (stalled) r.pause();
      r.on('end', () => {
        ended = true;
      });
      r.on('error', () => {});
      r.on('close', () => resolve({ complete: ended && r.complete, bytes: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
  });
  return {
    response,
    done,
    get received() {
      return received;
    },
    stall() {
      stalled = true;
      res?.pause();
    },
    resume() {
      stalled = false;
      res?.resume();
    },
  };
}
