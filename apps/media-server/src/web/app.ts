/**
 * The library page: lists videos, plays one with Range requests (the browser
 * does those by itself), seeks by timecode through the seek endpoint, and
 * shows the server's cache and bytes-served figures.
 */

import { byId, formatBytes } from './format.ts';

interface VideoRow {
  id: string;
  title: string;
  size: number;
  duration: number | null;
  contentType: string;
  created: string;
}

interface SeekAnswer {
  requestedTime: number;
  keyframeTime: number;
  byteOffset: number;
}

interface Stats {
  rssBytes: number;
  served: { cache: number; storage: number };
  cache: {
    bytes: number;
    budgetBytes: number;
    entries: number;
    hits: number;
    misses: number;
    pins: number;
  };
  readBuffers: { inUse: number; allocated: number };
}

const $ = byId;

const player = $<HTMLVideoElement>('player');
const library = $<HTMLUListElement>('library');
const nowPlaying = $<HTMLHeadingElement>('now-playing');
const seekForm = $<HTMLFormElement>('seek-form');
const timecode = $<HTMLInputElement>('timecode');
const fps = $<HTMLInputElement>('fps');
const seekResult = $<HTMLParagraphElement>('seek-result');
const stats = $<HTMLDListElement>('stats');

let current: VideoRow | undefined;

const bytes = formatBytes;

function clock(seconds: number): string {
  const s = Math.floor(seconds);
  const hh = String(Math.floor(s / 3600)).padStart(2, '0');
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  const ms = String(Math.round((seconds - s) * 1000)).padStart(3, '0');
  return `${hh}:${mm}:${ss}.${ms}`;
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  const body = (await response.json()) as T | { error: { code: string; message: string } };
  if (!response.ok) {
    const error = (body as { error?: { code: string; message: string } }).error;
    throw new Error(error ? `${error.code}: ${error.message}` : `HTTP ${response.status}`);
  }
  return body as T;
}

function select(video: VideoRow): void {
  current = video;
  player.src = `/videos/${encodeURIComponent(video.id)}`;
  nowPlaying.textContent = video.title;
  seekResult.textContent = '';
  for (const button of library.querySelectorAll('button')) {
    button.setAttribute('aria-current', String(button.dataset.id === video.id));
  }
  const url = new URL(location.href);
  url.searchParams.set('v', video.id);
  history.replaceState(null, '', url);
}

async function loadLibrary(): Promise<void> {
  const videos = await getJson<VideoRow[]>('/api/videos');
  library.replaceChildren(
    ...videos.map((video) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.id = video.id;
      button.textContent = video.title;
      const detail = document.createElement('small');
      detail.textContent = `${video.id} · ${video.duration === null ? 'unindexed' : clock(video.duration)} · ${bytes(video.size)}`;
      button.append(detail);
      button.addEventListener('click', () => select(video));
      item.append(button);
      return item;
    }),
  );
  const wanted = new URL(location.href).searchParams.get('v');
  const first = videos.find((v) => v.id === wanted) ?? videos[0];
  if (first !== undefined && current === undefined) select(first);
  if (videos.length === 0) nowPlaying.textContent = 'The library is empty';
}

seekForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (current === undefined) return;
  const query = new URLSearchParams({ t: timecode.value.trim() });
  if (fps.value.trim() !== '') query.set('fps', fps.value.trim());
  seekResult.classList.remove('error');
  getJson<SeekAnswer>(`/videos/${encodeURIComponent(current.id)}/seek?${query}`).then(
    (answer) => {
      player.currentTime = answer.keyframeTime;
      seekResult.textContent = `requested ${clock(answer.requestedTime)} → keyframe ${clock(answer.keyframeTime)} at byte ${answer.byteOffset.toLocaleString('en')}`;
      seekResult.dataset.keyframeTime = String(answer.keyframeTime);
    },
    (error: Error) => {
      seekResult.classList.add('error');
      seekResult.textContent = error.message;
    },
  );
});

async function refreshStats(): Promise<void> {
  const s = await getJson<Stats>('/api/stats');
  const rows: [string, string][] = [
    ['Served from cache', bytes(s.served.cache)],
    ['Served from storage', bytes(s.served.storage)],
    ['Cache', `${bytes(s.cache.bytes)} of ${bytes(s.cache.budgetBytes)}`],
    ['Cached files', String(s.cache.entries)],
    ['Hits / misses', `${s.cache.hits} / ${s.cache.misses}`],
    ['Read buffers in use', `${s.readBuffers.inUse} of ${s.readBuffers.allocated}`],
    ['Server RSS', bytes(s.rssBytes)],
  ];
  stats.replaceChildren(
    ...rows.flatMap(([name, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

loadLibrary().catch((error: Error) => {
  nowPlaying.textContent = `Could not load the library: ${error.message}`;
});
refreshStats().catch(() => undefined);
setInterval(() => refreshStats().catch(() => undefined), 2000);
