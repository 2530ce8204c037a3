import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type DetailedError, type HttpResponse, Upload, type UploadOptions } from 'tus-js-client';

const run = promisify(execFile);
const FFMPEG = process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';

/** 4 s of 640x360 test card with a tone, at a bitrate that makes it about 2.3 MB. */
const VIDEO_ARGS = [
  ['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=4'],
  ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=4'],
  ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25'],
  ['-b:v', '6M', '-maxrate', '6M', '-bufsize', '2M', '-c:a', 'aac', '-b:a', '64k', '-shortest'],
].flat();

const DIR = join(
  tmpdir(),
  `media-server-upload-fixtures-${createHash('sha256')
    .update(JSON.stringify([VIDEO_ARGS, 'long-18s']))
    .digest('hex')
    .slice(0, 12)}`,
);

/** Files the upload tests send. */
export interface UploadFixtures {
  /** A playable MP4 (moov at the end, FFmpeg's default). */
  readonly video: string;
  /** The same video cut at 60%: its moov is gone. */
  readonly truncated: string;
  /** Random bytes named like a video. */
  readonly notVideo: string;
  /** 18 s of the same card, about 13 MB: more than one 8 MiB S3 part. */
  readonly long: string;
}

let made: Promise<UploadFixtures> | undefined;

/** Generates (once per machine) the upload fixtures with the real FFmpeg. */
export function uploadFixtures(): Promise<UploadFixtures> {
  made ??= (async () => {
    const paths = {
      video: join(DIR, 'card.mp4'),
      truncated: join(DIR, 'card-truncated.mp4'),
      notVideo: join(DIR, 'noise.mp4'),
      long: join(DIR, 'card-long.mp4'),
    };
    if (await exists(paths.notVideo)) return paths;
    await mkdir(DIR, { recursive: true });
    const partial = (): string =>
      join(DIR, `card.${process.pid}.${randomBytes(4).toString('hex')}.mp4`);
    const short = partial();
    const long = partial();
    await run(FFMPEG, ['-v', 'error', '-nostdin', '-y', ...VIDEO_ARGS, short]);
    const longArgs = VIDEO_ARGS.map((arg) => arg.replace('duration=4', 'duration=18'));
    await run(FFMPEG, ['-v', 'error', '-nostdin', '-y', ...longArgs, long]);
    const bytes = await readFile(short);
    await writeFile(paths.truncated, bytes.subarray(0, Math.floor(bytes.byteLength * 0.6)));
    await rename(short, paths.video);
    await rename(long, paths.long);
    // Written last: its presence says the set is complete.
    await writeFile(paths.notVideo, randomBytes(300_000));
    return paths;
  })();
  return made;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).size > 0;
  } catch {
    return false;
  }
}

/** Hex SHA-256 of some bytes. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Hex SHA-256 of what `GET url` returns, and the status. */
export async function fetchSha256(url: string): Promise<{ status: number; sha256: string }> {
  const response = await fetch(url);
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, sha256: sha256(body) };
}

/** How a tus-js-client upload ended. */
export type TusOutcome =
  | { readonly ok: true; readonly url: string; readonly response: HttpResponse }
  | { readonly ok: false; readonly url: string | null; readonly error: DetailedError };

/**
 * Runs a tus-js-client upload to the end: success or its final error (no
 * retries unless `options.retryDelays` asks for them).
 */
export function tusUpload(
  bytes: Buffer,
  options: UploadOptions & { onStarted?: (upload: Upload) => void },
): Promise<TusOutcome> {
  return new Promise((resolve) => {
    const upload: Upload = new Upload(bytes, {
      retryDelays: null,
      ...options,
      onSuccess: ({ lastResponse }) =>
        resolve({ ok: true, url: upload.url ?? '', response: lastResponse }),
      onError: (error) => resolve({ ok: false, url: upload.url, error: error as DetailedError }),
    });
    options.onStarted?.(upload);
    upload.start();
  });
}

/** The status of a tus-js-client error's response (0 when there was none). */
export function statusOf(error: DetailedError): number {
  return error.originalResponse?.getStatus() ?? 0;
}

/** `{ error: { code, message } }` from a tus-js-client error's response body. */
export function errorBody(error: DetailedError): { code: string; message: string } | undefined {
  try {
    return (
      JSON.parse(error.originalResponse?.getBody() ?? '') as {
        error?: { code: string; message: string };
      }
    ).error;
  } catch {
    return undefined;
  }
}

/** `HEAD` on a tus upload: its status and offset. */
export async function headUpload(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; offset: number; length: number }> {
  const response = await fetch(url, {
    method: 'HEAD',
    headers: { 'tus-resumable': '1.0.0', ...headers },
  });
  return {
    status: response.status,
    offset: Number(response.headers.get('upload-offset') ?? Number.NaN),
    length: Number(response.headers.get('upload-length') ?? Number.NaN),
  };
}

/** Creates an upload with a raw `POST` and returns the response. */
export function createUpload(
  base: string,
  length: number,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}/uploads`, {
    method: 'POST',
    headers: { 'tus-resumable': '1.0.0', 'upload-length': String(length), ...headers },
  });
}

/** Appends `bytes` at `offset` with a raw `PATCH`. */
export function patchUpload(
  url: string,
  offset: number,
  bytes: Uint8Array,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: 'PATCH',
    headers: {
      'tus-resumable': '1.0.0',
      'upload-offset': String(offset),
      'content-type': 'application/offset+octet-stream',
      ...headers,
    },
    body: new Uint8Array(bytes),
  });
}

/** The row of `GET /api/videos` for `id`, if listed. */
export async function listed(
  base: string,
  id: string,
): Promise<{ id: string; title: string; size: number; duration: number | null } | undefined> {
  const rows = (await (await fetch(`${base}/api/videos`)).json()) as {
    id: string;
    title: string;
    size: number;
    duration: number | null;
  }[];
  return rows.find((row) => row.id === id);
}

/** The last path segment of an upload URL: the upload's (and video's) id. */
export function idOf(uploadUrl: string): string {
  return new URL(uploadUrl, 'http://x').pathname.split('/').pop() ?? '';
}
