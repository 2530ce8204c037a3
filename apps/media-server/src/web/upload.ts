/**
 * The upload page: sends an MP4 to `/uploads` with chunked-uploader (tus,
 * a Blob source, resume state in localStorage so a reloaded page picks up
 * where the server stopped), shows bytes, rate and ETA, then plays the
 * stored video.
 */
import {
  fromBlob,
  HttpError,
  LocalStorageStateStore,
  tus,
  Upload,
  type UploadProgress,
} from 'chunked-uploader';
import { byId, formatBytes } from './format.ts';

/** What the page remembers about an upload in flight, to offer its resume after a reload. */
interface Pending {
  name: string;
  size: number;
  lastModified: number;
}

const STATE_PREFIX = 'media-server:upload:';
const PENDING_KEY = 'media-server:pending-upload';
const KEY_KEY = 'media-server:upload-key';
const MiB = 2 ** 20;

const $ = byId;

const form = $<HTMLFormElement>('upload-form');
const fileInput = $<HTMLInputElement>('file');
const titleInput = $<HTMLInputElement>('title');
const keyInput = $<HTMLInputElement>('key');
const startButton = $<HTMLButtonElement>('start');
const pauseButton = $<HTMLButtonElement>('pause');
const cancelButton = $<HTMLButtonElement>('cancel');
const resumeHint = $<HTMLParagraphElement>('resume-hint');
const progress = $<HTMLProgressElement>('progress');
const progressText = $<HTMLParagraphElement>('progress-text');
const status = $<HTMLParagraphElement>('upload-status');
const result = $<HTMLElement>('result');
const resultTitle = $<HTMLHeadingElement>('result-title');
const resultPlayer = $<HTMLVideoElement>('result-player');
const resultLink = $<HTMLAnchorElement>('result-link');

// The shared stylesheet has no rule for it, and the CSP forbids style attributes (not the CSSOM).
progress.style.width = '100%';

const stateStore = new LocalStorageStateStore(STATE_PREFIX);
let job: Upload | undefined;

const bytes = formatBytes;

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function say(text: string, error = false): void {
  status.textContent = text;
  status.classList.toggle('error', error);
}

/** Small files get many chunks (a progress bar that moves), big ones chunks of up to 32 MiB. */
function chunkSizeFor(size: number): number {
  return Math.min(32 * MiB, Math.max(256 * 1024, Math.ceil(size / 50)));
}

function readPending(): Pending | undefined {
  try {
    const value = JSON.parse(localStorage.getItem(PENDING_KEY) ?? 'null') as Pending | null;
    return value !== null && typeof value.name === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

function showResumeHint(): void {
  const pending = readPending();
  resumeHint.hidden = pending === undefined;
  if (pending !== undefined) {
    resumeHint.textContent = `The upload of “${pending.name}” (${bytes(pending.size)}) did not finish. Choose the same file and press Upload to resume it.`;
  }
}

function render(p: UploadProgress): void {
  const total = p.bytesTotal ?? 0;
  progress.max = Math.max(1, total);
  progress.value = p.bytesAcknowledged;
  const parts = [`${bytes(p.bytesAcknowledged)} of ${bytes(total)}`];
  if (p.bytesPerSecond > 0) parts.push(`${bytes(p.bytesPerSecond)}/s`);
  if (p.etaMs !== undefined && p.bytesAcknowledged < total) parts.push(`ETA ${duration(p.etaMs)}`);
  if (p.bytesResumed > 0) parts.push(`resumed at ${bytes(p.bytesResumed)}`);
  progressText.textContent = parts.join(' · ');
  progressText.dataset.bytesResumed = String(p.bytesResumed);
  if (total > 0 && p.bytesSent >= total && p.bytesAcknowledged < total) {
    say('All bytes sent; the server is checking and storing the video…');
  }
}

/** The server's `{ error: { code, message } }` out of an upload failure, or its message. */
function explain(error: unknown): string {
  if (HttpError.isInstance(error)) {
    const detail = error.message.slice(error.message.indexOf(': ') + 2);
    const code = /"code":"([A-Z_]+)"/.exec(detail)?.[1];
    const message = /"message":"((?:[^"\\]|\\.)*)/.exec(detail)?.[1];
    if (code !== undefined && message !== undefined) {
      return `${code}: ${message.replace(/\\(.)/g, '$1')} (HTTP ${error.status})`;
    }
    return `HTTP ${error.status}: ${error.message}`;
  }
  // Retries that ran out carry the last failure, which says more than the count of attempts.
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  if (HttpError.isInstance(cause)) return explain(cause);
  return error instanceof Error ? error.message : String(error);
}

async function showResult(id: string): Promise<void> {
  resultPlayer.src = `/videos/${encodeURIComponent(id)}`;
  resultLink.href = `/?v=${encodeURIComponent(id)}`;
  result.dataset.id = id;
  result.hidden = false;
  try {
    const rows = (await (await fetch('/api/videos')).json()) as { id: string; title: string }[];
    const row = rows.find((r) => r.id === id);
    if (row !== undefined) resultTitle.textContent = row.title;
  } catch {
    // The player works without the title.
  }
}

function setRunning(running: boolean): void {
  startButton.disabled = running;
  fileInput.disabled = running;
  pauseButton.disabled = !running;
  cancelButton.disabled = !running;
  pauseButton.textContent = 'Pause';
}

async function run(file: File): Promise<void> {
  const key = keyInput.value.trim();
  sessionStorage.setItem(KEY_KEY, key);
  const title = titleInput.value.trim();
  const pending: Pending = { name: file.name, size: file.size, lastModified: file.lastModified };
  localStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  result.hidden = true;
  const current = new Upload(fromBlob(file), {
    protocol: tus({
      endpoint: '/uploads',
      headers: key === '' ? {} : { authorization: `Bearer ${key}` },
      metadata: title === '' ? {} : { title },
    }),
    chunkSize: chunkSizeFor(file.size),
    stateStore,
    // chunked-uploader's own fingerprint is a SHA-256 by hash-wasm, and compiling WebAssembly is
    // what this page's CSP (script-src 'self', no 'wasm-unsafe-eval') forbids. The file's name,
    // size and modification time identify it just as well for a resume.
    fingerprint: JSON.stringify([file.name, file.size, file.lastModified]),
  });
  job = current;
  current.on('progress', render);
  current.on('resumed', (at) => say(`Resuming: the server already has ${bytes(at)}.`));
  current.on('retry', (r) => say(`Retrying in ${duration(r.delayMs)}: ${explain(r.error)}`));
  setRunning(true);
  say('Uploading…');
  try {
    const done = await current.start();
    localStorage.removeItem(PENDING_KEY);
    const id = new URL(done.location ?? '', location.href).pathname.split('/').pop() ?? '';
    render(current.progress);
    say(`Stored as ${id}.`);
    await showResult(id);
  } catch (error) {
    if (HttpError.isInstance(error) && error.status < 500) localStorage.removeItem(PENDING_KEY);
    say(`Upload failed: ${explain(error)}`, true);
  } finally {
    if (job === current) job = undefined;
    setRunning(false);
    showResumeHint();
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const file = fileInput.files?.[0];
  if (file === undefined || job !== undefined) return;
  resumeHint.hidden = true;
  void run(file);
});

pauseButton.addEventListener('click', () => {
  if (job === undefined) return;
  if (pauseButton.textContent === 'Pause') {
    job.pause();
    pauseButton.textContent = 'Resume';
    say('Paused.');
  } else {
    job.resume();
    pauseButton.textContent = 'Pause';
    say('Uploading…');
  }
});

cancelButton.addEventListener('click', () => {
  // Deletes the upload on the server (tus termination) and the saved state.
  job?.abort(new Error('cancelled'), { terminate: true });
  localStorage.removeItem(PENDING_KEY);
});

keyInput.value = sessionStorage.getItem(KEY_KEY) ?? '';
showResumeHint();
