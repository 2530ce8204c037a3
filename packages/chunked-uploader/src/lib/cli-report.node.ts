import { formatBytes } from './byte-size';
import { UploadError } from './errors';
import type { UploadProgress } from './progress';
import type { RetryEvent } from './retry';
import type { UploadResult } from './upload';

/**
 * @internal Where the CLI writes: `process.stdout`/`process.stderr`, or a
 * buffer in tests.
 *
 * @example
 * ```ts
 * const out: CliStream = { write: (text) => chunks.push(text), isTTY: false };
 * ```
 */
export interface CliStream {
  /** Writes text as is. */
  write(text: string): unknown;
  /**
   * Whether this is a terminal (progress bar) or not (periodic lines).
   * @default false
   */
  isTTY?: boolean | undefined;
  /**
   * The terminal's width, when it is one.
   * @default 80
   */
  columns?: number | undefined;
}

/**
 * @internal What the CLI knows when the upload starts.
 *
 * @example
 * ```ts
 * reporter.start({ file: 'a.mp4', size: 1024, protocol: 'tus', target: 'http://127.0.0.1/files/', chunkSize: 8 << 20 });
 * ```
 */
export interface StartInfo {
  /** The file as given on the command line. */
  file: string;
  /** Its size, unknown for stdin. */
  size: number | undefined;
  /** The protocol's name. */
  protocol: string;
  /** Where the upload goes. */
  target: string;
  /** The requested chunk size. */
  chunkSize: number;
}

/**
 * @internal How the CLI reports: for people (progress bar or lines) or as JSON lines.
 *
 * @example
 * ```ts
 * const reporter: Reporter = options.json ? new JsonReporter(stdout, quiet) : new HumanReporter(stdout, stderr, quiet);
 * ```
 */
export interface Reporter {
  /** The upload is about to start. */
  start(info: StartInfo): void;
  /** The server already had `bytes`. */
  resumed(bytes: number, total: number | undefined): void;
  /** Bytes sent or acknowledged changed. */
  progress(progress: UploadProgress): void;
  /** A request failed and will be retried. */
  retry(event: RetryEvent): void;
  /** The upload finished. */
  complete(result: UploadResult): void;
  /** The upload failed; `hint` says what to do next. */
  failed(error: unknown, progress: UploadProgress, hint: string | undefined): void;
  /** The upload was interrupted (SIGINT); `hint` says how to resume. */
  interrupted(progress: UploadProgress, hint: string): void;
}

/** At most ~10 redraws a second: fast enough to look live, cheap on a slow terminal. */
const REDRAW_MS = 100;
/** Without a terminal, a line this often is enough for a log and little enough to read. */
const LINE_MS = 2000;

/**
 * @internal Progress for people on stderr: a bar redrawn in place with `\r`
 * on a terminal, a line every couple of seconds elsewhere (logs, CI);
 * the final location alone on stdout, so `$(chunked-upload …)` captures it.
 *
 * @example
 * ```ts
 * const reporter = new HumanReporter(process.stdout, process.stderr, false);
 * ```
 */
export class HumanReporter implements Reporter {
  readonly #stdout: CliStream;
  readonly #stderr: CliStream;
  readonly #quiet: boolean;
  readonly #tty: boolean;
  #last: UploadProgress | undefined;
  #lastDraw = Number.NEGATIVE_INFINITY;
  #lastLineBytes = -1;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #barShown = false;
  #lastBar = '';

  /**
   * @param stdout - receives the final location.
   * @param stderr - receives progress and messages.
   * @param quiet - only errors and the location.
   */
  constructor(stdout: CliStream, stderr: CliStream, quiet: boolean) {
    this.#stdout = stdout;
    this.#stderr = stderr;
    this.#quiet = quiet;
    this.#tty = stderr.isTTY === true;
  }

  start(info: StartInfo): void {
    const size = info.size === undefined ? 'unknown size' : formatBytes(info.size);
    this.#message(
      `uploading ${info.file} (${size}) to ${info.target} over ${info.protocol}, ${formatBytes(info.chunkSize)} chunks`,
    );
  }

  resumed(bytes: number, total: number | undefined): void {
    const of = total === undefined ? '' : ` of ${formatBytes(total)}`;
    const exact = total === undefined ? `${bytes} bytes` : `${bytes} of ${total} bytes`;
    this.#message(`resuming at ${formatBytes(bytes)}${of} (${exact} already on the server)`);
  }

  progress(progress: UploadProgress): void {
    this.#last = progress;
    if (this.#quiet) return;
    const now = performance.now();
    const wait = (this.#tty ? REDRAW_MS : LINE_MS) - (now - this.#lastDraw);
    if (wait <= 0) {
      this.#draw(now);
    } else if (this.#timer === undefined) {
      // A trailing draw, so the last state before a pause is shown too.
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#draw(performance.now());
      }, wait);
      this.#timer.unref?.();
    }
  }

  retry(event: RetryEvent): void {
    const what = event.chunk < 0 ? 'request' : `chunk ${event.chunk}`;
    this.#message(
      `retrying ${what} in ${(event.delayMs / 1000).toFixed(1)} s (${event.remaining} retries left): ${event.error.message}`,
    );
  }

  complete(result: UploadResult): void {
    this.#stopTimer();
    if (this.#last !== undefined && !this.#quiet) this.#draw(performance.now(), true);
    this.#endBar();
    const seconds = result.durationMs / 1000;
    const sent = result.bytes - result.resumedFrom;
    const rate = seconds > 0 ? `, ${formatBytes(sent / seconds)}/s` : '';
    const resumed =
      result.resumedFrom > 0 ? `, resumed from ${formatBytes(result.resumedFrom)}` : '';
    const verified = result.verified.length > 0 ? `, verified ${result.verified.join('+')}` : '';
    this.#message(
      `done: ${formatBytes(result.bytes)} in ${seconds.toFixed(1)} s${rate}${resumed}${verified}, ${result.retries} retries`,
    );
    if (result.location !== undefined) this.#stdout.write(`${result.location}\n`);
  }

  failed(error: unknown, _progress: UploadProgress, hint: string | undefined): void {
    this.#stopTimer();
    this.#endBar();
    this.#stderr.write(`chunked-upload: upload failed ${describeError(error)}\n`);
    if (hint !== undefined) this.#stderr.write(`${hint}\n`);
  }

  interrupted(progress: UploadProgress, hint: string): void {
    this.#stopTimer();
    this.#endBar();
    const total =
      progress.bytesTotal === undefined ? '' : ` of ${formatBytes(progress.bytesTotal)}`;
    this.#stderr.write(
      `chunked-upload: interrupted with ${formatBytes(progress.bytesAcknowledged)}${total} acknowledged. ${hint}\n`,
    );
  }

  #message(text: string): void {
    if (this.#quiet) return;
    if (this.#barShown) {
      this.#stderr.write(`\r\x1b[K${text}\n`);
      this.#barShown = false;
      if (this.#last !== undefined) this.#draw(performance.now(), true);
    } else {
      this.#stderr.write(`${text}\n`);
    }
  }

  #draw(now: number, force = false): void {
    const p = this.#last;
    if (p === undefined) return;
    this.#lastDraw = now;
    if (this.#tty) {
      // A pseudo-terminal may report 0 columns; 80 is what terminals default to.
      const line = progressBar(p, this.#stderr.columns || 80);
      if (!force && this.#barShown && line === this.#lastBar) return;
      this.#lastBar = line;
      this.#stderr.write(`\r${line}\x1b[K`);
      this.#barShown = true;
    } else if (force || p.bytesAcknowledged !== this.#lastLineBytes) {
      this.#lastLineBytes = p.bytesAcknowledged;
      this.#stderr.write(`progress: ${progressText(p)}\n`);
    }
  }

  #endBar(): void {
    if (this.#barShown) this.#stderr.write('\n');
    this.#barShown = false;
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * @internal One JSON object per line on stdout, for programs: `start`,
 * `resumed`, `progress` (every engine event), `retry`, and a final
 * `complete`, `error` or `interrupted`.
 *
 * @example
 * ```ts
 * const reporter = new JsonReporter(process.stdout, false);
 * ```
 */
export class JsonReporter implements Reporter {
  readonly #stdout: CliStream;
  readonly #quiet: boolean;

  /**
   * @param stdout - receives the lines.
   * @param quiet - leave out `progress` and `retry` lines.
   */
  constructor(stdout: CliStream, quiet: boolean) {
    this.#stdout = stdout;
    this.#quiet = quiet;
  }

  start(info: StartInfo): void {
    this.#line({ type: 'start', ...info });
  }

  resumed(bytes: number, total: number | undefined): void {
    this.#line({ type: 'resumed', bytes, total });
  }

  progress(progress: UploadProgress): void {
    if (!this.#quiet) this.#line({ type: 'progress', ...progress });
  }

  retry(event: RetryEvent): void {
    if (this.#quiet) return;
    const { error, ...rest } = event;
    this.#line({ type: 'retry', ...rest, code: error.code, message: error.message });
  }

  complete(result: UploadResult): void {
    this.#line({ type: 'complete', ...result });
  }

  failed(error: unknown, progress: UploadProgress, hint: string | undefined): void {
    this.#line({ type: 'error', ...errorJson(error), progress, hint });
  }

  interrupted(progress: UploadProgress, hint: string): void {
    this.#line({ type: 'interrupted', progress, hint });
  }

  #line(value: Record<string, unknown>): void {
    this.#stdout.write(`${JSON.stringify(value)}\n`);
  }
}

/** `[CODE] message`, then each cause on its own line, so the root of a retry exhaustion shows. */
function describeError(error: unknown): string {
  const lines: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const code = UploadError.isInstance(current)
      ? current.code
      : ((current as { code?: unknown }).code ?? undefined);
    const message = current instanceof Error ? current.message : String(current);
    const label = typeof code === 'string' ? `[${code}] ` : '';
    lines.push(depth === 0 ? `${label}${message}` : `  caused by ${label}${message}`);
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines.join('\n');
}

function errorJson(error: unknown): Record<string, unknown> {
  const causes: { code?: string; message: string }[] = [];
  let current: unknown = error instanceof Error ? error.cause : undefined;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    const entry: { code?: string; message: string } = {
      message: current instanceof Error ? current.message : String(current),
    };
    if (typeof code === 'string') entry.code = code;
    causes.push(entry);
    current = current instanceof Error ? current.cause : undefined;
  }
  const out: Record<string, unknown> = {
    code: UploadError.isInstance(error) ? error.code : 'UNKNOWN',
    message: error instanceof Error ? error.message : String(error),
    causes,
  };
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number') out.status = status;
  return out;
}

/**
 * @internal `45.2% [#########.........] 28.9 MiB / 64.0 MiB  12.3 MiB/s  ETA 0:03`,
 * the bar filling whatever width the terminal leaves.
 *
 * @example
 * ```ts
 * progressBar(progress, process.stderr.columns);
 * ```
 */
export function progressBar(p: UploadProgress, columns: number): string {
  const total = p.bytesTotal;
  if (total === undefined) return progressText(p);
  const fraction = total === 0 ? 1 : p.bytesAcknowledged / total;
  const pct = `${(fraction * 100).toFixed(1).padStart(5)}%`;
  const tail = `${formatBytes(p.bytesAcknowledged)} / ${formatBytes(total)}  ${formatRate(p)}  ETA ${formatEta(p)}`;
  const width = Math.max(10, Math.min(40, columns - pct.length - tail.length - 6));
  const filled = Math.min(width, Math.floor(fraction * width));
  return `${pct} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${tail}`;
}

/**
 * @internal The same facts as one log line.
 *
 * @example
 * ```ts
 * progressText(progress); // '28.9 MiB / 64.0 MiB (45.2%), 12.3 MiB/s, ETA 0:03'
 * ```
 */
export function progressText(p: UploadProgress): string {
  const total = p.bytesTotal;
  if (total === undefined) return `${formatBytes(p.bytesAcknowledged)}, ${formatRate(p)}`;
  const pct = total === 0 ? 100 : (p.bytesAcknowledged / total) * 100;
  return `${formatBytes(p.bytesAcknowledged)} / ${formatBytes(total)} (${pct.toFixed(1)}%), ${formatRate(p)}, ETA ${formatEta(p)}`;
}

function formatRate(p: UploadProgress): string {
  return p.bytesPerSecond > 0 ? `${formatBytes(Math.round(p.bytesPerSecond))}/s` : '-- /s';
}

function formatEta(p: UploadProgress): string {
  if (p.bytesTotal !== undefined && p.bytesAcknowledged >= p.bytesTotal) return '0:00';
  if (p.etaMs === undefined || !Number.isFinite(p.etaMs)) return '--:--';
  const s = Math.ceil(p.etaMs / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}
