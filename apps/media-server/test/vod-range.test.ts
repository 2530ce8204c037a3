import { get as httpGet } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMultipart, storeBytes } from './files.ts';
import { startServer, type TestServer } from './server.ts';

const SIZE = 3 * 2 ** 20 + 123;
let server: TestServer;
let bytes: Uint8Array;
let etag: string;
let lastModified: string;

beforeAll(async () => {
  server = await startServer({ CACHE_ADMIT_AFTER: '1000' });
  ({ bytes } = await storeBytes(server.storage, server.dir, 'clip', SIZE));
  const head = await fetch(`${server.url}/videos/clip`, { method: 'HEAD' });
  etag = head.headers.get('etag') ?? '';
  lastModified = head.headers.get('last-modified') ?? '';
});
afterAll(() => server.close());

const get = (headers: Record<string, string> = {}, path = '/videos/clip', method = 'GET') =>
  fetch(`${server.url}${path}`, { headers, method });
const body = async (response: Response) => new Uint8Array(await response.arrayBuffer());

describe('GET /videos/:id', () => {
  it('serves the whole file with validators and Accept-Ranges', async () => {
    const response = await get();
    expect(response.status).toBe(200);
    expect(response.headers.get('accept-ranges')).toBe('bytes');
    expect(response.headers.get('content-length')).toBe(String(SIZE));
    expect(response.headers.get('content-type')).toBe('video/mp4');
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(new Date(lastModified).toUTCString()).toBe(lastModified);
    expect(Buffer.compare(await body(response), bytes)).toBe(0);
  });

  it('answers HEAD with the same headers and no body', async () => {
    const response = await get({}, '/videos/clip', 'HEAD');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(SIZE));
    expect(response.headers.get('etag')).toBe(etag);
    expect((await body(response)).byteLength).toBe(0);
  });

  it.each([
    ['bytes=0-499', 0, 499],
    ['bytes=1000-1999', 1000, 1999],
    ['bytes=-500', SIZE - 500, SIZE - 1],
    [`bytes=${SIZE - 10}-`, SIZE - 10, SIZE - 1],
    [`bytes=100-${SIZE + 5000}`, 100, SIZE - 1],
    ['bytes=-99999999', 0, SIZE - 1],
    ['BYTES=5-9', 5, 9],
  ])('serves %s as 206 with Content-Range', async (range, start, end) => {
    const response = await get({ range });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end}/${SIZE}`);
    expect(response.headers.get('content-length')).toBe(String(end - start + 1));
    expect(Buffer.compare(await body(response), bytes.subarray(start, end + 1))).toBe(0);
  });

  it('serves several ranges as multipart/byteranges, in request order, exact to the byte', async () => {
    const response = await get({ range: 'bytes=2000000-2000099, 0-9, -5' });
    expect(response.status).toBe(206);
    const type = response.headers.get('content-type') ?? '';
    expect(type).toMatch(/^multipart\/byteranges; boundary=/);
    const raw = await body(response);
    expect(raw.byteLength).toBe(Number(response.headers.get('content-length')));
    const parts = parseMultipart(raw, type);
    expect(parts.map((p) => p.headers['content-range'])).toEqual([
      `bytes 2000000-2000099/${SIZE}`,
      `bytes 0-9/${SIZE}`,
      `bytes ${SIZE - 5}-${SIZE - 1}/${SIZE}`,
    ]);
    expect(parts.every((p) => p.headers['content-type'] === 'video/mp4')).toBe(true);
    expect(
      Buffer.compare(parts[0]?.body ?? new Uint8Array(), bytes.subarray(2000000, 2000100)),
    ).toBe(0);
    expect(Buffer.compare(parts[1]?.body ?? new Uint8Array(), bytes.subarray(0, 10))).toBe(0);
    expect(Buffer.compare(parts[2]?.body ?? new Uint8Array(), bytes.subarray(SIZE - 5))).toBe(0);
  });

  it('answers an unsatisfiable range with 416 and bytes */length', async () => {
    const response = await get({ range: `bytes=${SIZE}-` });
    expect(response.status).toBe(416);
    expect(response.headers.get('content-range')).toBe(`bytes */${SIZE}`);
  });

  it.each(['bytes=5-1', 'bytes=abc', 'pages=1-2', 'bytes=', 'bytes=--1', 'bytes=1-2-3'])(
    'ignores the invalid Range %j and serves 200',
    async (range) => {
      const response = await get({ range });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-length')).toBe(String(SIZE));
      await response.body?.cancel();
    },
  );

  it('ignores a Range with more parts than MAX_RANGES', async () => {
    const many = Array.from({ length: 17 }, (_, i) => `${i * 1000}-${i * 1000 + 10}`).join(',');
    const response = await get({ range: `bytes=${many}` });
    expect(response.status).toBe(200);
    await response.body?.cancel();
  });

  it('honours If-Range: a matching ETag gets the range, a stale one the whole file', async () => {
    const match = await get({ range: 'bytes=0-9', 'if-range': etag });
    expect(match.status).toBe(206);
    await match.body?.cancel();
    const stale = await get({ range: 'bytes=0-9', 'if-range': '"not-it"' });
    expect(stale.status).toBe(200);
    expect(stale.headers.get('content-length')).toBe(String(SIZE));
    await stale.body?.cancel();
    const date = await get({ range: 'bytes=0-9', 'if-range': lastModified });
    expect(date.status).toBe(206);
    await date.body?.cancel();
  });

  it('answers If-None-Match and If-Modified-Since with 304', async () => {
    const byTag = await get({ 'if-none-match': `"other", ${etag}` });
    expect(byTag.status).toBe(304);
    expect(byTag.headers.get('etag')).toBe(etag);
    const byDate = await get({ 'if-modified-since': lastModified });
    expect(byDate.status).toBe(304);
    const changed = await get({ 'if-none-match': '"other"' });
    expect(changed.status).toBe(200);
    await changed.body?.cancel();
  });

  it('answers a failed If-Match with 412', async () => {
    const response = await get({ 'if-match': '"other"', range: 'bytes=0-1' });
    expect(response.status).toBe(412);
    await response.body?.cancel();
  });

  it.each([
    '/videos/..%2F..%2Fetc%2Fpasswd',
    '/videos/%2e%2e',
    '/videos/a%00b',
    '/videos/nope',
    `/videos/${'x'.repeat(65)}`,
  ])('never maps %s to a path: 404', async (path) => {
    // Sent exactly as written: a URL string (fetch's or http.get's) would normalise the dot segments away.
    const { status, body } = await new Promise<{ status: number; body: string }>(
      (resolve, reject) => {
        const { hostname, port } = new URL(server.url);
        httpGet({ host: hostname, port, path }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        }).on('error', reject);
      },
    );
    expect(status).toBe(404);
    expect((JSON.parse(body) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('answers other methods with 405 and Allow', async () => {
    const response = await get({}, '/videos/clip', 'DELETE');
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    await response.body?.cancel();
  });
});
