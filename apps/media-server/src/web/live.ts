/**
 * The live page: lists the live streams from /api/live (polled), plays one
 * with Media Source Extensions from the /live/:name body stream, keeps the
 * page's buffer bounded, jumps to the live edge when it falls behind, and
 * shows viewers and a latency estimate.
 */

import { byId } from './format.ts';

interface LiveRow {
  name: string;
  state: 'waiting' | 'live' | 'reconnecting' | 'ended';
  mimeCodec: string | null;
  width: number | null;
  height: number | null;
  viewers: number;
  generation: number;
  ingest: { bitsPerSecond: number };
  edge: { mediaSeconds: number; at: number } | null;
}

interface LiveAnswer {
  serverTime: number;
  streams: LiveRow[];
}

/** Media kept behind the playhead; older buffered media is removed so the page's memory stays flat. */
const KEEP_BEHIND_S = 10;
/** Buffered media ahead of the playhead beyond which the player jumps to the live edge. */
const MAX_BEHIND_S = 3;
/** Where a jump lands, short of the buffered end, so playback does not stall at once. */
const EDGE_MARGIN_S = 0.5;

const $ = byId;

const player = $<HTMLVideoElement>('player');
const list = $<HTMLUListElement>('streams');
const noStreams = $<HTMLParagraphElement>('no-streams');
const nowPlaying = $<HTMLHeadingElement>('now-playing');
const status = $<HTMLParagraphElement>('live-status');
const playback = $<HTMLDListElement>('playback');

let rows: LiveRow[] = [];
/** Server clock minus ours, from the last poll, to read the server's timestamps. */
let clockOffset = 0;
let session: Session | undefined;

/** One playback of one stream: a MediaSource fed from one fetch. */
class Session {
  readonly name: string;
  readonly #abort = new AbortController();
  readonly #source = new MediaSource();
  readonly #url: string;
  #buffer: SourceBuffer | undefined;
  #jumps = 0;
  ended = false;

  constructor(name: string) {
    this.name = name;
    this.#url = URL.createObjectURL(this.#source);
  }

  get jumps(): number {
    return this.#jumps;
  }

  async start(mimeCodec: string): Promise<void> {
    if (!MediaSource.isTypeSupported(mimeCodec)) {
      throw new Error(`this browser cannot play ${mimeCodec}`);
    }
    player.src = this.#url;
    await new Promise<void>((resolve) =>
      this.#source.addEventListener('sourceopen', () => resolve(), { once: true }),
    );
    const buffer = this.#source.addSourceBuffer(mimeCodec);
    this.#buffer = buffer;
    const response = await fetch(`/live/${encodeURIComponent(this.name)}`, {
      signal: this.#abort.signal,
    });
    if (!response.ok || response.body === null) {
      const body = (await response.json().catch(() => ({}))) as {
        error?: { code: string; message: string };
      };
      throw new Error(
        body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${response.status}`,
      );
    }
    const reader = response.body.getReader();
    // One chunk at a time: the next read waits for the append, so the fetch's own
    // backpressure keeps the page from queueing what the decoder has not taken.
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      await this.#append(value);
      this.#followEdge();
    }
    this.ended = true;
    if (this.#source.readyState === 'open' && !buffer.updating) this.#source.endOfStream();
  }

  stop(): void {
    this.#abort.abort();
    URL.revokeObjectURL(this.#url);
  }

  async #append(bytes: Uint8Array): Promise<void> {
    const buffer = this.#buffer as SourceBuffer;
    await this.#trim();
    try {
      buffer.appendBuffer(bytes as Uint8Array<ArrayBuffer>);
    } catch (error) {
      if ((error as DOMException).name !== 'QuotaExceededError') throw error;
      await this.#trim(0);
      buffer.appendBuffer(bytes as Uint8Array<ArrayBuffer>);
    }
    await updated(buffer);
  }

  /** Removes media more than `keep` seconds behind the playhead. */
  async #trim(keep = KEEP_BEHIND_S): Promise<void> {
    const buffer = this.#buffer as SourceBuffer;
    const ranges = buffer.buffered;
    if (ranges.length === 0) return;
    const start = ranges.start(0);
    const cut = player.currentTime - keep;
    if (cut - start < 1) return;
    buffer.remove(start, cut);
    await updated(buffer);
  }

  /** Starts at the first buffered media, and jumps to the live edge when playback fell behind. */
  #followEdge(): void {
    const ranges = (this.#buffer as SourceBuffer).buffered;
    if (ranges.length === 0) return;
    const end = ranges.end(ranges.length - 1);
    const start = ranges.start(0);
    if (player.currentTime < start || end - player.currentTime > MAX_BEHIND_S) {
      if (player.currentTime >= start) this.#jumps++;
      player.currentTime = Math.max(start, end - EDGE_MARGIN_S);
    }
    if (player.paused) player.play().catch(() => undefined);
  }
}

function updated(buffer: SourceBuffer): Promise<void> {
  if (!buffer.updating) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      buffer.removeEventListener('error', failed);
      resolve();
    };
    const failed = () => {
      buffer.removeEventListener('updateend', done);
      reject(new Error('the browser could not decode the stream'));
    };
    buffer.addEventListener('updateend', done, { once: true });
    buffer.addEventListener('error', failed, { once: true });
  });
}

function play(row: LiveRow): void {
  session?.stop();
  const current = new Session(row.name);
  session = current;
  nowPlaying.textContent = row.name;
  status.classList.remove('error');
  status.textContent = 'connecting…';
  status.dataset.state = 'connecting';
  const url = new URL(location.href);
  url.searchParams.set('s', row.name);
  history.replaceState(null, '', url);
  renderList();
  current.start(row.mimeCodec ?? 'video/mp4').then(
    () => {
      if (session !== current) return;
      status.textContent = 'the broadcast ended';
      status.dataset.state = 'ended';
    },
    (error: Error) => {
      if (session !== current || error.name === 'AbortError') return;
      status.classList.add('error');
      status.textContent = error.message;
      status.dataset.state = 'error';
    },
  );
}

function renderList(): void {
  noStreams.hidden = rows.length > 0;
  list.replaceChildren(
    ...rows.map((row) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.name = row.name;
      button.setAttribute('aria-current', String(session?.name === row.name));
      button.textContent = row.name;
      const detail = document.createElement('small');
      const size = row.width === null ? '' : ` · ${row.width}×${row.height}`;
      detail.textContent = ` ${row.state}${size} · ${(row.ingest.bitsPerSecond / 1e6).toFixed(2)} Mbit/s · ${row.viewers} watching`;
      button.append(detail);
      button.addEventListener('click', () => play(row));
      item.append(button);
      return item;
    }),
  );
}

async function poll(): Promise<void> {
  const asked = Date.now();
  const response = await fetch('/api/live', { headers: { accept: 'application/json' } });
  const answer = (await response.json()) as LiveAnswer;
  clockOffset = answer.serverTime - (asked + Date.now()) / 2;
  rows = answer.streams.filter((s) => s.mimeCodec !== null);
  renderList();
  const wanted = new URL(location.href).searchParams.get('s');
  const pick = rows.find((r) => r.name === wanted) ?? rows[0];
  // Start the first stream, or pick the selected one up again when its broadcaster is back.
  if (
    pick !== undefined &&
    (session === undefined || (session.ended && session.name === pick.name))
  ) {
    if (pick.state === 'live') play(pick);
  }
}

function showPlayback(): void {
  const row = rows.find((r) => r.name === session?.name);
  const ranges = player.buffered;
  const bufferedAhead =
    ranges.length > 0 ? Math.max(0, ranges.end(ranges.length - 1) - player.currentTime) : 0;
  const entries: [string, string][] = [
    ['Playing at', `${player.currentTime.toFixed(2)} s`],
    ['Buffered ahead', `${bufferedAhead.toFixed(2)} s`],
  ];
  if (row?.edge) {
    // The broadcaster is about as far as its newest fragment's end plus the time since it arrived.
    const edge = row.edge.mediaSeconds + (Date.now() + clockOffset - row.edge.at) / 1000;
    entries.push(['Latency (est.)', `${Math.max(0, edge - player.currentTime).toFixed(1)} s`]);
  }
  if (row) entries.push(['Viewers', String(row.viewers)]);
  entries.push(['Jumps to live edge', String(session?.jumps ?? 0)]);
  playback.replaceChildren(
    ...entries.flatMap(([name, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    }),
  );
  if (session !== undefined && !session.ended && player.currentTime > 0) {
    status.textContent = 'live';
    status.dataset.state = 'live';
  }
}

const command = document.getElementById('broadcast-command');
if (command !== null)
  command.textContent = command.textContent?.replace('HOST', location.host) ?? '';
poll().catch(() => undefined);
setInterval(() => poll().catch(() => undefined), 2000);
setInterval(showPlayback, 500);
