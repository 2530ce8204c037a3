import { createCRC32, createMD5, createSHA1, createSHA256, type IHasher } from 'hash-wasm';
import { InvalidArgumentError } from './errors';

/**
 * Checksum algorithms the protocols use: tus `Upload-Checksum` (sha1,
 * sha256, md5), S3 (`Content-MD5`, CRC32), GCS (`x-goog-hash` crc32c, md5).
 *
 * @example
 * ```ts
 * import type { ChecksumAlgorithm } from 'chunked-uploader';
 * const algorithm: ChecksumAlgorithm = 'crc32c';
 * ```
 */
export type ChecksumAlgorithm = 'md5' | 'sha1' | 'sha256' | 'crc32' | 'crc32c';

/** The Castagnoli polynomial (reversed) that turns CRC32 into CRC32C. */
const CRC32C_POLYNOMIAL = 0x82f63b78;

/**
 * An incremental hash: feed chunks with `update`, read the digest once.
 * Backed by hash-wasm (WebAssembly), so it runs the same in Node and in
 * browsers and never holds more than the bytes of one `update`.
 *
 * @example
 * ```ts
 * import { Checksum } from 'chunked-uploader';
 * const sum = await Checksum.create('sha256');
 * sum.update(chunkA);
 * sum.update(chunkB);
 * sum.base64(); // '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' for no bytes
 * ```
 */
export class Checksum {
  /** The algorithm. */
  readonly algorithm: ChecksumAlgorithm;
  readonly #hasher: IHasher;
  #digest: Uint8Array | undefined;

  private constructor(algorithm: ChecksumAlgorithm, hasher: IHasher) {
    this.algorithm = algorithm;
    this.#hasher = hasher;
  }

  /**
   * A fresh hasher for `algorithm`.
   *
   * @example
   * ```ts
   * const md5 = await Checksum.create('md5');
   * ```
   */
  static async create(algorithm: ChecksumAlgorithm): Promise<Checksum> {
    let hasher: IHasher;
    switch (algorithm) {
      case 'md5':
        hasher = await createMD5();
        break;
      case 'sha1':
        hasher = await createSHA1();
        break;
      case 'sha256':
        hasher = await createSHA256();
        break;
      case 'crc32':
        hasher = await createCRC32();
        break;
      case 'crc32c':
        hasher = await createCRC32(CRC32C_POLYNOMIAL);
        break;
      default:
        throw new InvalidArgumentError(
          `unknown checksum algorithm ${JSON.stringify(algorithm)}: expected md5, sha1, sha256, crc32 or crc32c`,
        );
    }
    hasher.init();
    return new Checksum(algorithm, hasher);
  }

  /**
   * The digest of `bytes` in one call.
   *
   * @example
   * ```ts
   * const md5 = await Checksum.of('md5', part); // Content-MD5 is its base64
   * ```
   */
  static async of(algorithm: ChecksumAlgorithm, bytes: Uint8Array): Promise<Checksum> {
    const sum = await Checksum.create(algorithm);
    sum.update(bytes);
    return sum;
  }

  /**
   * Adds bytes.
   *
   * @example
   * ```ts
   * sum.update(chunk.bytes);
   * ```
   */
  update(bytes: Uint8Array): this {
    if (this.#digest !== undefined) {
      throw new InvalidArgumentError(
        `${this.algorithm} checksum was already finished; create a new one`,
      );
    }
    this.#hasher.update(bytes);
    return this;
  }

  /**
   * The digest bytes (finishes the hash; later `update`s throw).
   *
   * @example
   * ```ts
   * const raw = sum.bytes();
   * ```
   */
  bytes(): Uint8Array {
    this.#digest ??= this.#hasher.digest('binary');
    return this.#digest;
  }

  /**
   * The digest in base64, as tus, S3 and GCS headers carry it.
   *
   * @example
   * ```ts
   * headers['content-md5'] = (await Checksum.of('md5', part)).base64();
   * ```
   */
  base64(): string {
    let text = '';
    for (const byte of this.bytes()) text += String.fromCharCode(byte);
    return btoa(text);
  }

  /**
   * The digest in lowercase hex.
   *
   * @example
   * ```ts
   * console.log('sha256', sum.hex());
   * ```
   */
  hex(): string {
    let text = '';
    for (const byte of this.bytes()) text += byte.toString(16).padStart(2, '0');
    return text;
  }
}
