import { rm } from 'node:fs/promises';
import { AwsClient } from 'aws4fetch';
import { readStreamInto } from 'buffer-view/node';
import { s3, upload } from 'chunked-uploader';
import { fromFile } from 'chunked-uploader/node';
import type { StorageConfig } from '../config.ts';
import { MediaServerError } from '../errors.ts';
import { parseMeta } from './local.ts';
import type { RangeSource, StoredObject, StoredVideo, VideoMeta, VideoStorage } from './types.ts';
import { isVideoId } from './types.ts';

type S3Config = Extract<StorageConfig, { kind: 's3' }>;

/** Part size for storing videos: S3's 5 MiB minimum with room to spare, memory-bounded by chunked-uploader. */
const PART_SIZE = 8 * 2 ** 20;

/**
 * S3-compatible storage: `<prefix>videos/<id>.mp4` plus `<id>.json`, read by
 * ranged GETs (each checked against the ETag the server first saw, so a
 * replaced object is never served as a mix of two versions) and written by
 * chunked-uploader's S3 multipart. Several server instances can share one bucket.
 *
 * @example
 * ```ts
 * const storage = s3Storage({ kind: 's3', endpoint: 'http://127.0.0.1:9000', bucket: 'media', region: 'us-east-1',
 *   accessKeyId: 'minio', secretAccessKey: 'minio123', prefix: '', forcePathStyle: true });
 * ```
 */
export function s3Storage(config: S3Config): VideoStorage {
  const client = new AwsClient({
    accessKeyId: config.accessKeyId,
    secretAccessKey: config.secretAccessKey,
    region: config.region,
    service: 's3',
    retries: 3,
  });
  const base = bucketUrl(config);
  const key = (id: string, ext: 'mp4' | 'json'): string => `${config.prefix}videos/${id}.${ext}`;
  const objectUrl = (k: string): string =>
    `${base}/${k.split('/').map(encodeURIComponent).join('/')}`;

  const request = async (url: string, init: RequestInit, what: string): Promise<Response> => {
    let response: Response;
    try {
      response = await client.fetch(url, init);
    } catch (error) {
      throw new MediaServerError('STORAGE_FAILED', `S3 ${what}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return response;
  };
  const fail = async (response: Response, what: string): Promise<never> => {
    const body = await response.text().catch(() => '');
    const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? '';
    throw new MediaServerError(
      'STORAGE_FAILED',
      `S3 ${what}: HTTP ${response.status} ${code}`.trim(),
    );
  };

  // Metadata is written before its video and never rewritten in place, so it is
  // cached per video version: a range request then costs one HEAD, not a HEAD and a GET.
  const metaCache = new Map<string, Promise<VideoMeta>>();
  const cachedMeta = (id: string, etag: string, mtimeMs: number, signal?: AbortSignal) => {
    const cacheKey = `${id}\0${etag}`;
    let meta = metaCache.get(cacheKey);
    if (meta === undefined) {
      meta = readMeta(id, mtimeMs, signal);
      metaCache.set(cacheKey, meta);
      meta.catch(() => metaCache.delete(cacheKey));
      if (metaCache.size > 4096) metaCache.delete(metaCache.keys().next().value as string);
    }
    return meta;
  };

  const readMeta = async (
    id: string,
    mtimeMs: number,
    signal?: AbortSignal,
  ): Promise<VideoMeta> => {
    const fallback: VideoMeta = {
      title: id,
      contentType: 'video/mp4',
      created: new Date(mtimeMs).toISOString(),
    };
    const response = await request(
      objectUrl(key(id, 'json')),
      signal ? { signal } : {},
      `GET ${id}.json`,
    );
    if (response.status === 404) {
      await response.body?.cancel();
      return fallback;
    }
    if (!response.ok) return fail(response, `GET ${id}.json`);
    return parseMeta(await response.text(), fallback);
  };

  const head = async (id: string, signal?: AbortSignal): Promise<StoredVideo | undefined> => {
    if (!isVideoId(id)) return undefined;
    const init: RequestInit = { method: 'HEAD', ...(signal ? { signal } : {}) };
    const response = await request(objectUrl(key(id, 'mp4')), init, `HEAD ${id}`);
    if (response.status === 404) return undefined;
    if (!response.ok) return fail(response, `HEAD ${id}`);
    const size = Number(response.headers.get('content-length'));
    const mtimeMs = Date.parse(response.headers.get('last-modified') ?? '');
    const etag = response.headers.get('etag');
    if (!Number.isSafeInteger(size) || Number.isNaN(mtimeMs) || etag === null) {
      throw new MediaServerError(
        'STORAGE_FAILED',
        `S3 HEAD ${id}: missing Content-Length, Last-Modified or ETag`,
      );
    }
    const tag = strongTag(etag);
    return { id, size, mtimeMs, etag: tag, meta: await cachedMeta(id, tag, mtimeMs, signal) };
  };

  const storage: VideoStorage = {
    kind: 's3',
    location: `s3://${config.bucket}/${config.prefix}`,
    async list(signal) {
      const videos: StoredVideo[] = [];
      let token: string | undefined;
      do {
        const url = new URL(base);
        url.searchParams.set('list-type', '2');
        url.searchParams.set('prefix', `${config.prefix}videos/`);
        if (token !== undefined) url.searchParams.set('continuation-token', token);
        const response = await request(url.toString(), signal ? { signal } : {}, 'ListObjectsV2');
        if (!response.ok) return fail(response, 'ListObjectsV2');
        const page = parseListing(await response.text());
        const prefix = `${config.prefix}videos/`;
        const listed = page.items.filter((item) => {
          const name = item.key.slice(prefix.length);
          return name.endsWith('.mp4') && isVideoId(name.slice(0, -4));
        });
        // One page's metadata in parallel (and mostly from the cache), not one GET after another.
        const rows = await Promise.all(
          listed.map(async (item): Promise<StoredVideo> => {
            const id = item.key.slice(prefix.length, -4);
            const etag = strongTag(item.etag);
            const meta = await cachedMeta(id, etag, item.mtimeMs, signal);
            return { id, size: item.size, mtimeMs: item.mtimeMs, etag, meta };
          }),
        );
        videos.push(...rows);
        token = page.nextToken;
      } while (token !== undefined);
      return videos;
    },
    stat: head,
    async open(video: StoredObject): Promise<RangeSource> {
      const url = objectUrl(key(video.id, 'mp4'));
      return {
        object: video,
        async readInto(target, offset, signal) {
          const end = Math.min(video.size, offset + target.byteLength);
          if (end <= offset) return 0;
          const init: RequestInit = {
            headers: { range: `bytes=${offset}-${end - 1}`, 'if-match': video.etag },
            ...(signal ? { signal } : {}),
          };
          const response = await request(url, init, `GET ${video.id} bytes=${offset}-${end - 1}`);
          // If-Match is checked twice: some S3-compatible stores ignore it on GET.
          const served = response.headers.get('etag');
          if (
            response.status === 412 ||
            (response.ok && served !== null && strongTag(served) !== video.etag)
          ) {
            await response.body?.cancel();
            throw new MediaServerError(
              'CONFLICT',
              `video ${video.id} changed in storage while it was being read`,
            );
          }
          if (
            response.status !== 206 &&
            !(response.status === 200 && offset === 0 && end === video.size)
          ) {
            return fail(response, `GET ${video.id} bytes=${offset}-${end - 1}`);
          }
          if (response.body === null)
            throw new MediaServerError('STORAGE_FAILED', `S3 GET ${video.id}: no body`);
          const region = target.subarray(0, end - offset);
          const read = await readStreamInto(
            response.body,
            region,
            signal === undefined ? {} : { signal },
          );
          if (read !== region.byteLength) {
            throw new MediaServerError(
              'STORAGE_FAILED',
              `S3 GET ${video.id}: got ${read} of ${region.byteLength} bytes at offset ${offset}`,
            );
          }
          return read;
        },
        close: () => Promise.resolve(),
      };
    },
    async putFile(id, path, meta, signal) {
      if (!isVideoId(id)) throw new TypeError(`invalid video id ${JSON.stringify(id)}`);
      const credentials = {
        accessKeyId: config.accessKeyId,
        secretAccessKey: config.secretAccessKey,
      };
      // Metadata first: a listing that sees the video then finds its title, never the reverse.
      const metaInit: RequestInit = {
        method: 'PUT',
        body: JSON.stringify(meta),
        headers: { 'content-type': 'application/json' },
        ...(signal ? { signal } : {}),
      };
      const put = await request(objectUrl(key(id, 'json')), metaInit, `PUT ${id}.json`);
      if (!put.ok) return fail(put, `PUT ${id}.json`);
      await put.body?.cancel();
      // Multipart completes atomically: the object is invisible until CompleteMultipartUpload.
      await upload(await fromFile(path), {
        protocol: s3({
          endpoint: config.endpoint,
          bucket: config.bucket,
          key: key(id, 'mp4'),
          region: config.region,
          credentials,
          forcePathStyle: config.forcePathStyle,
          contentType: meta.contentType,
        }),
        chunkSize: PART_SIZE,
        parallel: 2,
        prefetch: 1,
        ...(signal ? { signal } : {}),
      });
      const stored = await head(id, signal);
      if (stored === undefined)
        throw new MediaServerError('STORAGE_FAILED', `S3 PUT ${id}: not visible after upload`);
      return stored;
    },
    async moveFile(id, path, meta, signal) {
      try {
        return await storage.putFile(id, path, meta, signal);
      } finally {
        await rm(path, { force: true });
      }
    },
    async delete(id) {
      if (!isVideoId(id)) return;
      for (const k of [key(id, 'mp4'), key(id, 'json')]) {
        const response = await request(objectUrl(k), { method: 'DELETE' }, `DELETE ${k}`);
        if (!response.ok && response.status !== 404) await fail(response, `DELETE ${k}`);
        await response.body?.cancel();
      }
    },
  };
  return storage;
}

function bucketUrl(config: S3Config): string {
  const endpoint = new URL(config.endpoint);
  const origin = `${endpoint.protocol}//${endpoint.host}${endpoint.pathname.replace(/\/+$/, '')}`;
  if (config.forcePathStyle) return `${origin}/${config.bucket}`;
  return `${endpoint.protocol}//${config.bucket}.${endpoint.host}${endpoint.pathname.replace(/\/+$/, '')}`;
}

/** S3 sends ETags quoted; some compatible stores do not. A weak one never matches If-Match, so it is made strong only if it is not weak. */
function strongTag(etag: string): string {
  const trimmed = etag.trim();
  if (trimmed.startsWith('"')) return trimmed;
  return `"${trimmed.replace(/^W\//, '')}"`;
}

interface ListItem {
  readonly key: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly etag: string;
}

/** Just the fields of a ListObjectsV2 result the library needs. */
export function parseListing(xml: string): { items: ListItem[]; nextToken: string | undefined } {
  const items: ListItem[] = [];
  for (const match of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const body = match[1] ?? '';
    const field = (name: string): string | undefined =>
      new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(body)?.[1];
    const key = decodeXml(field('Key') ?? '');
    const size = Number(field('Size'));
    const mtimeMs = Date.parse(field('LastModified') ?? '');
    const etag = decodeXml(field('ETag') ?? '');
    if (key === '' || !Number.isSafeInteger(size) || Number.isNaN(mtimeMs)) continue;
    items.push({ key, size, mtimeMs, etag });
  }
  const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
  const token = /<NextContinuationToken>([\s\S]*?)<\/NextContinuationToken>/.exec(xml)?.[1];
  return { items, nextToken: truncated && token !== undefined ? decodeXml(token) : undefined };
}

function decodeXml(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&');
}
