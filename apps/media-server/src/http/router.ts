import type { IncomingMessage, ServerResponse } from 'node:http';
import { MediaServerError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** What a route handler gets for one request. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** The route's captured path segments, decoded. */
  readonly params: readonly string[];
  /** Aborted when the client goes away before the response is complete. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Body bytes the handler handed to the socket (for metrics). */
  sent: number;
}

/** A route: a name for metrics and logs, the methods it answers, a path pattern and a handler. */
export interface Route {
  readonly name: string;
  readonly methods: readonly string[];
  readonly pattern: RegExp;
  readonly handler: (ctx: RequestContext) => Promise<void> | void;
  /**
   * The request body may legitimately last for hours (a live broadcast), so
   * the request timeout does not apply; the idle timeout still does.
   * @default false
   */
  readonly longLived?: boolean;
}

/** Options of {@link createRouter}. */
export interface RouterOptions {
  /** Called once per request when its response has closed. */
  readonly observe?: RequestObserver | undefined;
  /**
   * Time a request body may take to arrive in full (0: no limit). Enforced
   * here rather than by Node's `requestTimeout`, which has no per-route
   * exemption for long-lived uploads such as a live broadcast.
   * @default 0
   */
  readonly requestTimeoutMs?: number | undefined;
}

/** Called once per request when its response has closed, whatever happened. */
export type RequestObserver = (info: {
  route: string;
  method: string;
  status: number;
  sent: number;
  seconds: number;
  aborted: boolean;
}) => void;

/**
 * A small method-and-pattern router over `node:http`: the server needs full
 * control of the socket writes (zero-copy views, drain, slab release), which
 * is what a framework would hide.
 *
 * @example
 * ```ts
 * const handle = createRouter([{ name: 'health', methods: ['GET'], pattern: /^\/healthz$/, handler: ({ res }) => res.end('ok') }], log);
 * createServer(handle).listen(8080);
 * ```
 */
export function createRouter(routes: readonly Route[], log: Logger, options: RouterOptions = {}) {
  const { observe, requestTimeoutMs = 0 } = options;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const controller = new AbortController();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      url = new URL('http://localhost/');
    }
    const method = req.method ?? 'GET';
    // Routes match the path as sent: WHATWG URL parsing would resolve `%2e%2e` segments first.
    const rawPath = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const match = findRoute(routes, rawPath.startsWith('/') ? rawPath : url.pathname, method);
    const ctx: RequestContext = {
      req,
      res,
      url,
      params: match.params,
      signal: controller.signal,
      log,
      sent: 0,
    };
    res.once('close', () => {
      const aborted = !res.writableFinished;
      if (aborted) controller.abort(new Error('client closed the connection'));
      // Handlers that stream count their own bytes; small bodies written whole are counted here.
      if (ctx.sent === 0 && !aborted && method !== 'HEAD') {
        const length = Number(res.getHeader('content-length'));
        if (Number.isSafeInteger(length)) ctx.sent = length;
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      log.info('request', {
        method,
        path: url.pathname,
        route: match.name,
        status: res.statusCode,
        bytes: ctx.sent,
        ms: Math.round(seconds * 1000),
        ...(aborted ? { aborted } : {}),
        ...(req.headers.range === undefined
          ? {}
          : { range: String(req.headers.range).slice(0, 100) }),
      });
      observe?.({
        route: match.name,
        method,
        status: res.statusCode,
        sent: ctx.sent,
        seconds,
        aborted,
      });
    });
    if (requestTimeoutMs > 0 && match.route?.longLived !== true && hasBody(req)) {
      const timer = setTimeout(() => {
        if (req.complete) return;
        log.info('request body timed out', {
          method,
          path: url.pathname,
          timeoutMs: requestTimeoutMs,
        });
        if (res.headersSent) {
          res.destroy();
          return;
        }
        res.setHeader('connection', 'close');
        sendError(
          ctx,
          new MediaServerError(
            'REQUEST_TIMEOUT',
            `the request body took longer than ${requestTimeoutMs} ms`,
          ),
        );
        req.socket.destroySoon();
      }, requestTimeoutMs);
      timer.unref();
      const clear = (): void => clearTimeout(timer);
      req.once('end', clear);
      res.once('close', clear);
    }
    const run = async (): Promise<void> => {
      if (match.route === undefined) {
        if (match.allowed.length > 0) {
          res.setHeader('allow', match.allowed.join(', '));
          throw new MediaServerError(
            'METHOD_NOT_ALLOWED',
            `${method} is not allowed on ${url.pathname}`,
          );
        }
        throw new MediaServerError('NOT_FOUND', `no route for ${url.pathname}`);
      }
      await match.route.handler(ctx);
    };
    run().catch((error: unknown) => sendError(ctx, error));
  };
}

function findRoute(routes: readonly Route[], path: string, method: string) {
  const allowed: string[] = [];
  for (const route of routes) {
    const found = route.pattern.exec(path);
    if (found === null) continue;
    let params: string[];
    try {
      params = found.slice(1).map((p) => decodeURIComponent(p ?? ''));
    } catch {
      continue;
    }
    if (route.methods.includes(method)) return { route, name: route.name, params, allowed };
    allowed.push(...route.methods);
  }
  return {
    route: undefined,
    name: allowed.length > 0 ? 'method-not-allowed' : 'not-found',
    params: [],
    allowed,
  };
}

/** Sends an error as JSON `{ error: { code, message } }`, or cuts the connection if the body had started. */
export function sendError(ctx: RequestContext, error: unknown): void {
  const { res, log } = ctx;
  if (ctx.signal.aborted) return;
  const known = MediaServerError.isInstance(error);
  if (!known)
    log.error('request failed', { method: ctx.req.method, path: ctx.url.pathname, error });
  if (res.headersSent) {
    // Half a body with a Content-Length the client trusts must not look complete.
    res.destroy(error instanceof Error ? error : undefined);
    return;
  }
  const status = known ? error.status : 500;
  const code = known ? error.code : 'INTERNAL';
  const message = known ? error.message : 'internal server error';
  sendJson(res, status, { error: { code, message } });
}

/** Writes a JSON response (no-store by default: it describes live state). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(res.req?.method === 'HEAD' ? undefined : text);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
