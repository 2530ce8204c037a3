import type { Upload } from '@tus/server';
import { MediaServerError } from '../errors.ts';
import type { Library } from '../library.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { VideoMeta } from '../storage/types.ts';
import { probeVideo } from './probe.ts';
import type { StagingStore } from './staging-store.ts';
import { toTusError } from './tus-errors.ts';

/** What {@link finishUpload} works with. */
export interface FinishDeps {
  readonly store: StagingStore;
  readonly library: Library;
  readonly metrics: Metrics;
  readonly log: Logger;
}

/** The response header naming the stored video (its id is the upload's). */
export const VIDEO_ID_HEADER = 'Video-Id';

const TITLE_MAX = 200;

/**
 * Runs when an upload's last byte has arrived, before the client gets its
 * answer: probes the staged file and hands it to the library, or deletes it
 * and throws the verdict (422 truncated or corrupt, 415 unsupported; 507 or
 * 500 if storing failed) for @tus/server to send. A success answers 204 with
 * a `Video-Id` header. Calling it again for a stored upload answers the same
 * success, so a client retrying a final request whose answer it lost learns
 * the truth.
 *
 * @example
 * ```ts
 * new Server({ path: '/uploads', datastore: store, onUploadFinish: (_req, upload) => finishUpload(deps, upload) });
 * ```
 */
export async function finishUpload(
  deps: FinishDeps,
  upload: Upload,
): Promise<{ status_code: number; headers: Record<string, string> }> {
  const { store, library, metrics, log } = deps;
  const id = upload.id;
  const done = { status_code: 204, headers: { [VIDEO_ID_HEADER]: id } };
  if (await store.isStored(id)) return done;
  const path = store.dataPath(id);
  try {
    const probe = await probeVideo(path);
    if (upload.size !== undefined && probe.size !== upload.size) {
      throw new MediaServerError(
        'CONFLICT',
        `the staged file has ${probe.size} bytes, the upload declared ${upload.size}`,
      );
    }
    const meta: VideoMeta = {
      title: titleOf(upload.metadata, id),
      contentType: 'video/mp4',
      created: new Date().toISOString(),
      duration: probe.duration,
    };
    // Not tied to the request: once every byte is here, storing finishes even if the client leaves.
    const { storage } = library;
    if (storage.moveFile !== undefined) await storage.moveFile(id, path, meta);
    else await storage.putFile(id, path, meta);
    library.invalidate(id);
    log.info('upload stored', {
      id,
      bytes: probe.size,
      duration: probe.duration,
      title: meta.title,
    });
  } catch (error) {
    await store.discard(id).catch(() => undefined);
    const verdict = MediaServerError.isInstance(error) && error.code.startsWith('MEDIA_');
    metrics.uploads.inc({ result: verdict ? 'rejected' : 'failed' });
    if (verdict) log.info('upload rejected', { id, reason: (error as Error).message });
    else log.error('upload could not be stored', { id, error });
    throw toTusError(error);
  }
  await store.markStored(upload);
  metrics.uploads.inc({ result: 'stored' });
  return done;
}

/**
 * The video's title from tus metadata: `title`, else `filename` without its
 * extension, else one made from the id; control characters dropped,
 * whitespace folded, at most 200 characters.
 *
 * @example
 * ```ts
 * titleOf({ filename: 'Holiday 2024.mp4' }, 'x'); // 'Holiday 2024'
 * ```
 */
export function titleOf(metadata: Record<string, string | null> | undefined, id: string): string {
  const clean = (value: string | null | undefined): string =>
    (value ?? '')
      .replace(/\p{Cc}+/gu, ' ')
      .replace(/\s+/g, ' ')
      .trim()
      .slice(0, TITLE_MAX);
  const title = clean(metadata?.title);
  if (title !== '') return title;
  const file = clean(metadata?.filename?.replace(/^.*[\\/]/, '').replace(/\.[^.]{1,8}$/, ''));
  return file !== '' ? file : `Upload ${id}`;
}
