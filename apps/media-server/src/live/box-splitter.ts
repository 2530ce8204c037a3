import { ByteView } from 'buffer-view';
import { MediaServerError } from '../errors.ts';
import { type FragmentInfo, type InitInfo, parseInit, parseMoof } from './fmp4.ts';

/**
 * The init segment of a live stream: `ftyp` + `moov`, as a zero-copy view
 * of the pushed chunks it arrived in.
 *
 * @example
 * ```ts
 * const onInit = (init: InitSegment) => console.log(init.bytes.length, init.info.mimeCodec);
 * ```
 */
export interface InitSegment {
  readonly bytes: ByteView;
  readonly info: InitInfo;
}

/**
 * One whole fragment: the boxes that lead it (`styp`, `sidx`, `prft`,
 * `emsg`), its `moof` and its `mdat`, as a zero-copy view of the pushed
 * chunks it arrived in.
 *
 * @example
 * ```ts
 * const onFragment = (f: Fragment) => broadcast.write(f.bytes, { marker: f.info.keyframe });
 * ```
 */
export interface Fragment {
  readonly bytes: ByteView;
  readonly info: FragmentInfo;
}

/**
 * Options of {@link BoxSplitter}.
 *
 * @example
 * ```ts
 * const options: BoxSplitterOptions = { maxUnitBytes: 4 * 2 ** 20, onInit, onFragment };
 * ```
 */
export interface BoxSplitterOptions {
  /** Largest init segment or fragment, and so largest box; a bigger one is PAYLOAD_TOO_LARGE. */
  readonly maxUnitBytes: number;
  readonly onInit: (init: InitSegment) => void;
  readonly onFragment: (fragment: Fragment) => void;
}

type Role = 'init' | 'prefix' | 'moof' | 'mdat' | 'discard';

/** The box whose payload is streaming past: kept for the unit or dropped, and how much is left. */
interface OpenBox {
  readonly type: string;
  readonly keep: boolean;
  left: number;
}

/** Top-level boxes a fragmented MP4 stream may carry; anything else is taken for garbage. */
const ROLES: Record<string, Role> = {
  ftyp: 'init',
  moov: 'init',
  styp: 'prefix',
  sidx: 'prefix',
  ssix: 'prefix',
  prft: 'prefix',
  emsg: 'prefix',
  moof: 'moof',
  mdat: 'mdat',
  free: 'discard',
  skip: 'discard',
  wide: 'discard',
  mfra: 'discard',
  uuid: 'discard',
  pdin: 'discard',
  meta: 'discard',
  udta: 'discard',
};

/**
 * Splits a pushed fragmented-MP4 byte stream at top-level box boundaries,
 * however it is chunked: it reports the init segment once, then every
 * `moof`+`mdat` fragment whole, with whether it starts with a keyframe.
 * Nothing is copied: units are views of the chunks pushed (which it keeps
 * referenced until the unit is complete, so at most `maxUnitBytes` of
 * them). Boxes that mean nothing to a live viewer (`mfra`, `free`) are
 * dropped as they stream past, without being kept.
 *
 * Malformed input throws a MediaServerError (MEDIA_CORRUPT for sizes that
 * do not add up, unknown box types or boxes out of order,
 * PAYLOAD_TOO_LARGE past `maxUnitBytes`, MEDIA_TRUNCATED from `end()` in
 * the middle of a unit) and the splitter must not be used afterwards.
 *
 * @example
 * ```ts
 * const splitter = new BoxSplitter({
 *   maxUnitBytes: 4 * 2 ** 20,
 *   onInit: (init) => stream.setInit(init),
 *   onFragment: (fragment) => stream.publish(fragment),
 * });
 * req.on('data', (chunk) => splitter.push(chunk));
 * req.on('end', () => splitter.end());
 * ```
 */
export class BoxSplitter {
  readonly #options: BoxSplitterOptions;
  /** Header bytes of the box being started, copied (at most 16) only to decode them. */
  readonly #header = new Uint8Array(16);
  #headerLength = 0;
  #headerNeed = 8;
  /** The same header bytes as views of their chunks, for the unit they may belong to. */
  #headerPieces: Uint8Array[] = [];
  #box: OpenBox | undefined;
  #pieces: Uint8Array[] = [];
  #unitBytes = 0;
  #moof: { at: number; size: number } | undefined;
  #init: InitInfo | undefined;
  #offset = 0;
  #discarded = 0;
  #failed = false;

  constructor(options: BoxSplitterOptions) {
    this.#options = options;
  }

  /** Bytes pushed so far. */
  get bytesIn(): number {
    return this.#offset;
  }

  /** Bytes of boxes dropped because viewers have no use for them (`mfra`, `free`, ...). */
  get discardedBytes(): number {
    return this.#discarded;
  }

  /** The init segment's description, once it has arrived. */
  get init(): InitInfo | undefined {
    return this.#init;
  }

  /** Takes the next chunk of the stream; reports every unit it completes before returning. */
  push(chunk: Uint8Array): void {
    if (this.#failed) throw new MediaServerError('MEDIA_CORRUPT', 'the stream already failed');
    try {
      this.#push(chunk);
    } catch (error) {
      this.#failed = true;
      throw error;
    }
  }

  /** The stream ended: throws MEDIA_TRUNCATED if it ended inside a box or a fragment. */
  end(): void {
    if (this.#failed) return;
    const partial = this.#box !== undefined || this.#headerLength > 0 || this.#pieces.length > 0;
    if (partial) {
      this.#failed = true;
      throw new MediaServerError(
        'MEDIA_TRUNCATED',
        `the stream ended inside ${this.#box === undefined ? 'a box header' : `a ${this.#box.type} box`} at byte ${this.#offset}; the unfinished ${this.#init === undefined ? 'init segment' : 'fragment'} was dropped`,
      );
    }
  }

  #push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      const box = this.#box;
      if (box === undefined) {
        const take = Math.min(this.#headerNeed - this.#headerLength, chunk.length - at);
        const piece = chunk.subarray(at, at + take);
        this.#header.set(piece, this.#headerLength);
        this.#headerPieces.push(piece);
        this.#headerLength += take;
        at += take;
        this.#offset += take;
        if (this.#headerLength === 8 && this.#size32() === 1) this.#headerNeed = 16;
        if (this.#headerLength === this.#headerNeed) this.#begin();
        continue;
      }
      const take = Math.min(box.left, chunk.length - at);
      if (box.keep) this.#pieces.push(chunk.subarray(at, at + take));
      else this.#discarded += take;
      box.left -= take;
      at += take;
      this.#offset += take;
      if (box.left === 0) this.#finish();
    }
  }

  #size32(): number {
    return uint32(this.#header, 0);
  }

  /** A whole box header is in: check it against the stream so far and decide the box's fate. */
  #begin(): void {
    const h = this.#header;
    const start = this.#offset - this.#headerLength;
    const headerSize = this.#headerLength;
    for (let i = 4; i < 8; i++) {
      const c = h[i] as number;
      if (c < 0x20 || c > 0x7e) {
        corrupt(`garbage at byte ${start}: bytes ${hex(h.subarray(0, 8))} are not a box header`);
      }
    }
    const type = String.fromCharCode(
      h[4] as number,
      h[5] as number,
      h[6] as number,
      h[7] as number,
    );
    let size = this.#size32();
    if (size === 1) {
      // Past 2^53 the sum loses precision, but such a size fails the limit check anyway.
      size = uint32(h, 8) * 2 ** 32 + uint32(h, 12);
    }
    const role = ROLES[type];
    if (role === undefined) {
      corrupt(
        `unexpected top-level box "${printable(type)}" at byte ${start}: expected fragmented MP4 (ftyp, moov, then moof+mdat fragments)`,
      );
    }
    if (size === 0)
      corrupt(
        `the ${type} box at byte ${start} claims to run to the end of the stream, which a live stream has not`,
      );
    if (size < headerSize)
      corrupt(`the ${type} box at byte ${start} has an impossible size of ${size} bytes`);
    const max = this.#options.maxUnitBytes;
    if (size > max) {
      throw new MediaServerError(
        'PAYLOAD_TOO_LARGE',
        `the ${type} box at byte ${start} is ${size} bytes; the largest box and fragment allowed is ${max} bytes (LIVE_MAX_FRAGMENT_BYTES)`,
      );
    }
    const keep = this.#accept(type, role, start);
    if (keep) {
      if (this.#unitBytes + size > max) {
        throw new MediaServerError(
          'PAYLOAD_TOO_LARGE',
          `the ${this.#init === undefined ? 'init segment' : 'fragment'} reaching byte ${start + size} is over ${max} bytes (LIVE_MAX_FRAGMENT_BYTES)`,
        );
      }
      if (type === 'moof') this.#moof = { at: this.#unitBytes, size };
      this.#unitBytes += size;
      this.#pieces.push(...this.#headerPieces);
    } else {
      this.#discarded += headerSize;
    }
    this.#headerPieces = [];
    this.#headerLength = 0;
    this.#headerNeed = 8;
    this.#box = { type, keep, left: size - headerSize };
    if (size === headerSize) this.#finish();
  }

  /** Whether a box joins the unit being collected; throws where it cannot appear. */
  #accept(type: string, role: Role, start: number): boolean {
    if (this.#init === undefined) {
      if (role === 'init') return true;
      if (role === 'discard') return false;
      corrupt(`a ${type} box at byte ${start} comes before the init segment (ftyp + moov)`);
    }
    switch (role) {
      case 'init':
        corrupt(
          `a second ${type} box at byte ${start}: one broadcast carries one init segment (reconnect to change it)`,
        );
        break;
      case 'prefix':
        if (this.#moof !== undefined)
          corrupt(`a ${type} box at byte ${start} sits between a moof and its mdat`);
        return true;
      case 'moof':
        if (this.#moof !== undefined)
          corrupt(`the moof at byte ${start} follows a moof that had no mdat`);
        return true;
      case 'mdat':
        if (this.#moof === undefined) corrupt(`the mdat at byte ${start} has no moof before it`);
        return true;
      case 'discard':
        // Inside a fragment the box must stay: moof data offsets may count its bytes.
        return this.#moof !== undefined;
    }
    return false;
  }

  #finish(): void {
    const box = this.#box as OpenBox;
    this.#box = undefined;
    if (box.type === 'moov') {
      const bytes = this.#takeUnit();
      const info = parseInit(bytes);
      this.#init = info;
      this.#options.onInit({ bytes, info });
    } else if (box.type === 'mdat') {
      const moof = this.#moof as { at: number; size: number };
      const bytes = this.#takeUnit();
      const info = parseMoof(bytes.view(moof.at, moof.at + moof.size), this.#init as InitInfo);
      this.#options.onFragment({ bytes, info });
    }
  }

  #takeUnit(): ByteView {
    const bytes = ByteView.from(this.#pieces);
    this.#pieces = [];
    this.#unitBytes = 0;
    this.#moof = undefined;
    return bytes;
  }
}

function uint32(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at] as number) * 2 ** 24 +
    (((bytes[at + 1] as number) << 16) |
      ((bytes[at + 2] as number) << 8) |
      (bytes[at + 3] as number))
  );
}

function corrupt(message: string): never {
  throw new MediaServerError('MEDIA_CORRUPT', message);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

function printable(type: string): string {
  return type.replace(/[^\x20-\x7e]/g, '?');
}
