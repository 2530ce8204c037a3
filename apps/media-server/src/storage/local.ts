import { randomBytes } from 'node:crypto';
import {
  copyFile,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { readFdInto } from 'buffer-view/node';
import { strongEtag } from '../http/conditional.ts';
import type { RangeSource, StoredObject, StoredVideo, VideoMeta, VideoStorage } from './types.ts';
import { isVideoId } from './types.ts';

/**
 * The default storage: `<dir>/<id>.mp4` plus a `<id>.json` metadata file.
 * Writes go to a temporary name and are renamed into place, so a crash never
 * leaves a half-written video that looks complete.
 *
 * @example
 * ```ts
 * const storage = await localStorage('/srv/media/videos');
 * for (const video of await storage.list()) console.log(video.id, video.size);
 * ```
 */
export async function localStorage(dir: string): Promise<VideoStorage> {
  await mkdir(dir, { recursive: true });
  const mediaPath = (id: string): string => join(dir, `${id}.mp4`);
  const metaPath = (id: string): string => join(dir, `${id}.json`);

  const describe = async (id: string): Promise<StoredVideo | undefined> => {
    if (!isVideoId(id)) return undefined;
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(mediaPath(id));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if (!info.isFile()) return undefined;
    return {
      id,
      size: info.size,
      mtimeMs: Math.floor(info.mtimeMs),
      etag: strongEtag({ size: info.size, mtimeMs: info.mtimeMs, id: `${id}.${info.ino}` }),
      meta: await readMeta(metaPath(id), id, info.mtimeMs),
    };
  };

  const place = async (
    id: string,
    path: string,
    meta: VideoMeta,
    move: boolean,
  ): Promise<StoredVideo> => {
    if (!isVideoId(id)) throw new TypeError(`invalid video id ${JSON.stringify(id)}`);
    const tmp = join(dir, `.${id}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeFile(`${tmp}.json`, JSON.stringify(meta, null, 2));
      // A rename is atomic only within one filesystem; the source may live elsewhere.
      if (!move || !(await renamed(path, tmp))) await copyFile(path, tmp);
      await rename(`${tmp}.json`, metaPath(id));
      await rename(tmp, mediaPath(id));
    } finally {
      await rm(tmp, { force: true });
      await rm(`${tmp}.json`, { force: true });
    }
    const stored = await describe(id);
    if (stored === undefined) throw new Error(`video ${id} vanished right after it was stored`);
    return stored;
  };

  return {
    kind: 'local',
    location: dir,
    async list() {
      const names = await readdir(dir);
      const ids = names.filter((n) => n.endsWith('.mp4')).map((n) => n.slice(0, -4));
      const videos = await Promise.all(ids.filter(isVideoId).map(describe));
      return videos.filter((v): v is StoredVideo => v !== undefined);
    },
    stat: describe,
    async open(video: StoredObject): Promise<RangeSource> {
      const handle = await open(mediaPath(video.id), 'r');
      let closed: Promise<void> | undefined;
      return {
        object: video,
        readInto: (target, offset, signal) =>
          readFdInto(handle, target, offset, signal === undefined ? {} : { signal }),
        close: () => {
          closed ??= handle.close();
          return closed;
        },
      };
    },
    putFile: (id, path, meta: VideoMeta) => place(id, path, meta, false),
    async moveFile(id, path, meta: VideoMeta) {
      try {
        return await place(id, path, meta, true);
      } finally {
        await rm(path, { force: true });
      }
    },
    async delete(id) {
      if (!isVideoId(id)) return;
      await rm(mediaPath(id), { force: true });
      await rm(metaPath(id), { force: true });
    },
  };
}

/** Renames `from` to `to`; false (nothing moved) when they are on different filesystems. */
async function renamed(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EXDEV') return false;
    throw error;
  }
}

async function readMeta(path: string, id: string, mtimeMs: number): Promise<VideoMeta> {
  const fallback: VideoMeta = {
    title: id,
    contentType: 'video/mp4',
    created: new Date(mtimeMs).toISOString(),
  };
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch {
    return fallback;
  }
  return parseMeta(raw, fallback);
}

/** Metadata from its JSON form, keeping only well-typed fields (the file may be hand-edited). */
export function parseMeta(raw: string, fallback: VideoMeta): VideoMeta {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return fallback;
  }
  if (typeof value !== 'object' || value === null) return fallback;
  const v = value as Record<string, unknown>;
  const duration =
    typeof v.duration === 'number' && Number.isFinite(v.duration) ? v.duration : undefined;
  return {
    title: typeof v.title === 'string' && v.title !== '' ? v.title.slice(0, 200) : fallback.title,
    contentType:
      typeof v.contentType === 'string' && /^video\/[\w.+-]+$/.test(v.contentType)
        ? v.contentType
        : fallback.contentType,
    created:
      typeof v.created === 'string' && !Number.isNaN(Date.parse(v.created))
        ? v.created
        : fallback.created,
    ...(duration === undefined ? {} : { duration }),
  };
}
