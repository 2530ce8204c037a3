import { MediaServerError } from '../errors.ts';

/**
 * Reads `length` bytes at `offset` of a file. It may return fewer bytes only
 * where the file ends; the index treats any other short read as a file that
 * is shorter than the size it was given.
 *
 * @example
 * ```ts
 * import { open } from 'node:fs/promises';
 * const handle = await open('movie.mp4');
 * const readAt: ReadAt = async (offset, length) => {
 *   const buffer = new Uint8Array(length);
 *   const { bytesRead } = await handle.read(buffer, 0, length, offset);
 *   return buffer.subarray(0, bytesRead);
 * };
 * ```
 */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>;

/**
 * An ISO BMFF box header. `start` and `size` are absolute file offsets for
 * top-level boxes and offsets into the parent's bytes for children; `size`
 * includes the header, and a size-0 box ("to the end") gets its real size.
 *
 * @example
 * ```ts
 * const box: BoxHeader = { type: 'moov', start: 28, size: 1249, headerSize: 8 };
 * const payload = box.start + box.headerSize; // first byte after the header
 * ```
 */
export interface BoxHeader {
  readonly type: string;
  readonly start: number;
  readonly size: number;
  readonly headerSize: number;
}

/**
 * A top-level box met by {@link walkTopLevelBoxes}; `bytes` holds the whole
 * box (header included) when the walk was asked to load its type.
 *
 * @example
 * ```ts
 * const box: TopLevelBox = { type: 'mdat', start: 40, size: 477704, headerSize: 8, bytes: undefined };
 * ```
 */
export interface TopLevelBox extends BoxHeader {
  readonly bytes: Uint8Array | undefined;
}

/**
 * Options of {@link walkTopLevelBoxes}.
 *
 * @example
 * ```ts
 * const options: WalkOptions = { load: (type) => type === 'moov', maxLoadBytes: 64 * 1024 * 1024 };
 * ```
 */
export interface WalkOptions {
  /** Which box types to read whole; every other box costs one header read at most. */
  readonly load: (type: string) => boolean;
  /** A loaded box larger than this is refused with `MEDIA_UNSUPPORTED`. */
  readonly maxLoadBytes: number;
}

/**
 * Types a real MP4 or QuickTime file can start with. Anything else at offset 0
 * means the bytes are not an MP4, which is worth saying rather than reporting
 * a nonsensical box size.
 */
const FIRST_BOX_TYPES = new Set([
  'ftyp',
  'styp',
  'moov',
  'mdat',
  'free',
  'skip',
  'wide',
  'pdin',
  'uuid',
  'sidx',
  'moof',
  'meta',
  'pnot',
  'junk',
]);

/**
 * After a `moof`, the next header read takes this much more than the last
 * moof's size, so one read usually covers the following `moof` and the `mdat`
 * header after it: one request per fragment instead of three.
 */
const MOOF_LOOKAHEAD_FACTOR = 1.25;
const MAX_LOOKAHEAD = 64 * 1024;
const HEADER_BYTES = 16;

function isFourCC(bytes: Uint8Array, at: number): boolean {
  for (let i = at; i < at + 4; i++) {
    const c = bytes[i];
    if (c === undefined || c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

function fourCC(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(
    bytes[at] ?? 0,
    bytes[at + 1] ?? 0,
    bytes[at + 2] ?? 0,
    bytes[at + 3] ?? 0,
  );
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** The declared header of the box at `at`, before it is checked against its container. */
interface DeclaredHeader {
  readonly type: string;
  readonly typeOk: boolean;
  /** `undefined` for size 0, "to the end of the container". */
  readonly size: number | undefined;
  /** The size as written, exact even past 2^53, for messages. */
  readonly sizeText: string;
  readonly headerSize: number;
  /** Size field 1 needs 8 more header bytes than are present. */
  readonly needsLargeSize: boolean;
}

function declaredHeader(
  view: DataView,
  bytes: Uint8Array,
  at: number,
  available: number,
): DeclaredHeader {
  const size32 = view.getUint32(at);
  const type = fourCC(bytes, at + 4);
  const typeOk = isFourCC(bytes, at + 4);
  const uuidExtra = type === 'uuid' ? 16 : 0;
  if (size32 === 1) {
    if (available < 16) {
      return {
        type,
        typeOk,
        size: undefined,
        sizeText: '1',
        headerSize: 16 + uuidExtra,
        needsLargeSize: true,
      };
    }
    const large = view.getBigUint64(at + 8);
    // Past 2^53 the rounding does not matter: any such box runs past any real file.
    return {
      type,
      typeOk,
      size: Number(large),
      sizeText: String(large),
      headerSize: 16 + uuidExtra,
      needsLargeSize: false,
    };
  }
  return {
    type,
    typeOk,
    size: size32 === 0 ? undefined : size32,
    sizeText: String(size32),
    headerSize: 8 + uuidExtra,
    needsLargeSize: false,
  };
}

/**
 * Reads through a window of the last bytes fetched, so a header that a
 * previous read already covered costs no second request.
 */
class WindowedReader {
  readonly #readAt: ReadAt;
  readonly #fileSize: number;
  #window: Uint8Array = new Uint8Array(0);
  #windowStart = 0;

  constructor(readAt: ReadAt, fileSize: number) {
    this.#readAt = readAt;
    this.#fileSize = fileSize;
  }

  /** Exactly `length` bytes at `offset` (the caller keeps it within the file), reading `readLength` if it must read. */
  async get(offset: number, length: number, readLength: number): Promise<Uint8Array> {
    const windowEnd = this.#windowStart + this.#window.length;
    if (offset >= this.#windowStart && offset + length <= windowEnd) {
      return this.#window.subarray(offset - this.#windowStart, offset - this.#windowStart + length);
    }
    const wanted = Math.min(Math.max(length, readLength), this.#fileSize - offset);
    const got = await this.#readAt(offset, wanted);
    if (got.length < length) {
      throw new MediaServerError(
        'MEDIA_TRUNCATED',
        `Reading ${length} bytes at offset ${offset} returned only ${got.length}: the file is shorter than its size of ${this.#fileSize} bytes`,
      );
    }
    this.#window = got.length > wanted ? got.subarray(0, wanted) : got;
    this.#windowStart = offset;
    return this.#window.subarray(0, length);
  }
}

/**
 * Walks the top-level boxes of an MP4 of `fileSize` bytes by reading only their
 * headers (size, type, 64-bit largesize, size 0 meaning "to the end"), and
 * reads whole only the boxes `options.load` asks for, so a many-GiB `mdat` is
 * never read. Boxes are yielded in file order.
 *
 * @throws MediaServerError `MEDIA_TRUNCATED` for an empty file, a header cut
 * by the end of the file, a box running past the end or a short read;
 * `MEDIA_CORRUPT` for bytes that are not a box (a type that is not four
 * printable characters, a first box that no MP4 starts with, a size smaller
 * than its header); `MEDIA_UNSUPPORTED` for a box to load that is larger than
 * `options.maxLoadBytes`. Errors of `readAt` itself pass through unchanged.
 *
 * @example
 * ```ts
 * for await (const box of walkTopLevelBoxes(readAt, size, { load: (t) => t === 'moov', maxLoadBytes: 1 << 26 })) {
 *   if (box.bytes) console.log(`${box.type} at ${box.start}: ${box.bytes.length} bytes loaded`);
 * }
 * ```
 */
export async function* walkTopLevelBoxes(
  readAt: ReadAt,
  fileSize: number,
  options: WalkOptions,
): AsyncGenerator<TopLevelBox, void, undefined> {
  if (fileSize === 0) {
    throw new MediaServerError(
      'MEDIA_TRUNCATED',
      'The file is empty (0 bytes); an MP4 needs at least one 8-byte box header',
    );
  }
  const reader = new WindowedReader(readAt, fileSize);
  let readHint = HEADER_BYTES;
  let position = 0;
  while (position < fileSize) {
    const remaining = fileSize - position;
    if (remaining < 8) {
      throw new MediaServerError(
        'MEDIA_TRUNCATED',
        `The file of ${fileSize} bytes ends ${remaining} bytes into a box header at offset ${position}; a header needs 8 bytes`,
      );
    }
    const head = await reader.get(position, Math.min(HEADER_BYTES, remaining), readHint);
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    const declared = declaredHeader(view, head, 0, head.length);
    if (!declared.typeOk) {
      throw new MediaServerError(
        'MEDIA_CORRUPT',
        `The bytes at offset ${position} are not an MP4 box: type ${hex(head.subarray(4, 8))} is not four printable characters`,
      );
    }
    if (position === 0 && !FIRST_BOX_TYPES.has(declared.type)) {
      throw new MediaServerError(
        'MEDIA_CORRUPT',
        `The file is not an MP4: it starts with a '${declared.type}' box, not one of ${[...FIRST_BOX_TYPES].join(', ')}`,
      );
    }
    if (declared.needsLargeSize) {
      throw new MediaServerError(
        'MEDIA_TRUNCATED',
        `The file of ${fileSize} bytes ends inside the 16-byte header of the '${declared.type}' box at offset ${position}`,
      );
    }
    const size = declared.size ?? remaining;
    const sizeText = declared.size === undefined ? String(remaining) : declared.sizeText;
    if (size < declared.headerSize) {
      throw new MediaServerError(
        'MEDIA_CORRUPT',
        `The '${declared.type}' box at offset ${position} declares a size of ${sizeText} bytes, smaller than its ${declared.headerSize}-byte header`,
      );
    }
    if (size > remaining) {
      throw new MediaServerError(
        'MEDIA_TRUNCATED',
        `The '${declared.type}' box at offset ${position} declares ${sizeText} bytes but only ${remaining} of the ${fileSize}-byte file remain from there`,
      );
    }
    let bytes: Uint8Array | undefined;
    if (options.load(declared.type)) {
      if (size > options.maxLoadBytes) {
        throw new MediaServerError(
          'MEDIA_UNSUPPORTED',
          `The '${declared.type}' box at offset ${position} is ${size} bytes, more than the ${options.maxLoadBytes}-byte limit for metadata`,
        );
      }
      // The 16 extra bytes are the next box's header, saving a request for it.
      bytes = await reader.get(position, size, size + HEADER_BYTES);
      if (declared.type === 'moof') {
        readHint = Math.min(
          MAX_LOOKAHEAD,
          Math.max(HEADER_BYTES, Math.ceil(size * MOOF_LOOKAHEAD_FACTOR) + HEADER_BYTES),
        );
      }
    }
    yield { type: declared.type, start: position, size, headerSize: declared.headerSize, bytes };
    position += size;
  }
}

/**
 * The child boxes of the container whose payload is `bytes[from, to)`, in
 * order. `where` names the container for error messages; `fileOffset` is the
 * file position of `bytes[0]`, so messages give real file offsets.
 *
 * @throws MediaServerError `MEDIA_CORRUPT` when a child is not a box or runs
 * past its container: the container was read whole, so its content is wrong.
 *
 * @example
 * ```ts
 * for (const child of childBoxes(moofBytes, 8, moofBytes.length, 'moof', moofStart)) {
 *   if (child.type === 'traf') console.log('track fragment at', moofStart + child.start);
 * }
 * ```
 */
export function* childBoxes(
  bytes: Uint8Array,
  from: number,
  to: number,
  where: string,
  fileOffset: number,
): Generator<BoxHeader, void, undefined> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = from;
  while (at < to) {
    const left = to - at;
    const corrupt = (what: string) =>
      new MediaServerError(
        'MEDIA_CORRUPT',
        `In the ${where}, the child box at offset ${fileOffset + at} ${what}`,
      );
    if (left < 8) throw corrupt(`has only ${left} bytes left for its 8-byte header`);
    const declared = declaredHeader(view, bytes, at, left);
    if (!declared.typeOk)
      throw corrupt(
        `has type ${hex(bytes.subarray(at + 4, at + 8))}, not four printable characters`,
      );
    if (declared.needsLargeSize)
      throw corrupt(`'${declared.type}' has only ${left} bytes for its 16-byte header`);
    const size = declared.size ?? left;
    if (size < declared.headerSize || size > left) {
      throw corrupt(
        `'${declared.type}' declares ${size} bytes, outside the ${declared.headerSize} to ${left} bytes its container allows`,
      );
    }
    yield { type: declared.type, start: at, size, headerSize: declared.headerSize };
    at += size;
  }
}
