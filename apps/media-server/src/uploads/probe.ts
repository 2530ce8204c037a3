import { open } from 'node:fs/promises';
import { MediaServerError } from '../errors.ts';
import { buildSeekIndex, type TrackInfo } from '../media/seek-index.ts';

/** What a finished upload turned out to be. */
export interface ProbedVideo {
  readonly size: number;
  /** Seconds. */
  readonly duration: number;
  readonly tracks: readonly TrackInfo[];
}

/**
 * Checks that the file at `path` is an MP4 the library can serve: its seek
 * index builds (so its metadata is whole and consistent, and seek works on
 * it later) and it has at least one track. Reads the metadata only, however
 * large the file is.
 *
 * @throws MediaServerError `MEDIA_TRUNCATED`, `MEDIA_CORRUPT` or `MEDIA_UNSUPPORTED`
 * with a message naming what is wrong.
 *
 * @example
 * ```ts
 * const { duration } = await probeVideo('/srv/media/uploads/Zx3…');
 * ```
 */
export async function probeVideo(path: string): Promise<ProbedVideo> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const index = await buildSeekIndex(async (offset, length) => {
      const buffer = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
      const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, offset);
      return buffer.subarray(0, bytesRead);
    }, size);
    if (index.tracks.length === 0) {
      throw new MediaServerError('MEDIA_UNSUPPORTED', 'The MP4 has no tracks, so nothing can play');
    }
    return { size, duration: index.duration, tracks: index.tracks };
  } finally {
    await handle.close();
  }
}
