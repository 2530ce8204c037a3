import { ProtocolError } from '../lib/errors';
import { integerHeader } from '../lib/http';
import { parseList, release, TUS_VERSION, type TusContext, tusRequest } from './tus-wire';

/**
 * What a tus server advertised in its answer to `OPTIONS` on the endpoint.
 *
 * @example
 * ```ts
 * import { tus } from 'chunked-uploader';
 * const info = await tus({ endpoint: 'https://tus.example/files/' }).discover();
 * if (info.extensions.includes('termination')) console.log('uploads can be deleted');
 * console.log(info.maxSize ?? 'no size limit');
 * ```
 */
export interface TusServerInfo {
  /** `Tus-Version`, most preferred first; empty when the server did not answer `OPTIONS`. */
  readonly versions: readonly string[];
  /** `Tus-Extension`, lowercase (`creation`, `creation-with-upload`, `checksum`...). */
  readonly extensions: readonly string[];
  /** `Tus-Max-Size`: the largest upload the server accepts, in bytes. */
  readonly maxSize: number | undefined;
  /** `Tus-Checksum-Algorithm`, lowercase. */
  readonly checksumAlgorithms: readonly string[];
  /**
   * Whether the server answered `OPTIONS` at all. When it did not (404, 405,
   * 501: a proxy or a server that skips feature detection), the client
   * assumes only the creation extension, as clients that never ask do.
   */
  readonly advertised: boolean;
}

/**
 * @internal Asks the server what it supports (`OPTIONS` on the endpoint)
 * and refuses a server that lists versions but not 1.0.0.
 *
 * @example
 * ```ts
 * const info = await discover(ctx, AbortSignal.timeout(10_000));
 * ```
 */
export async function discover(ctx: TusContext, signal: AbortSignal): Promise<TusServerInfo> {
  const response = await tusRequest(ctx, {
    method: 'OPTIONS',
    url: ctx.endpoint,
    signal,
    ok: [200, 204, 404, 405, 501],
  });
  await release(response);
  if (response.status !== 200 && response.status !== 204) {
    // OPTIONS is a MAY in the spec: a server that does not answer it can still take uploads.
    return {
      versions: [],
      extensions: ['creation'],
      maxSize: undefined,
      checksumAlgorithms: [],
      advertised: false,
    };
  }
  const versions = parseList(response.headers.get('tus-version'));
  if (versions.length > 0 && !versions.includes(TUS_VERSION)) {
    throw new ProtocolError(
      `OPTIONS ${ctx.endpoint}: the server speaks tus ${versions.join(', ')}, not ${TUS_VERSION}`,
    );
  }
  return {
    versions,
    extensions: parseList(response.headers.get('tus-extension')),
    maxSize: integerHeader(response, 'tus-max-size'),
    checksumAlgorithms: parseList(response.headers.get('tus-checksum-algorithm')),
    advertised: true,
  };
}
