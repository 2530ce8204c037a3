import { InvalidArgumentError } from './errors';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 2 ** 10,
  kib: 2 ** 10,
  kb: 1e3,
  m: 2 ** 20,
  mib: 2 ** 20,
  mb: 1e6,
  g: 2 ** 30,
  gib: 2 ** 30,
  gb: 1e9,
  t: 2 ** 40,
  tib: 2 ** 40,
  tb: 1e12,
};

/**
 * @internal Parses a human byte size: `8MiB`, `512 KiB`, `1.5GiB`, `1GB`,
 * `4096`. `KiB`/`MiB`/`GiB`/`TiB` are powers of 1024 and `KB`/`MB`/`GB`/`TB`
 * powers of 1000 (IEC and SI, as `ls --si` and the S3 console read them);
 * a bare `K`/`M`/`G`/`T` is binary, as in curl and dd. Units are case-insensitive.
 * Throws {@link InvalidArgumentError} naming `what` and the value.
 *
 * @example
 * ```ts
 * parseByteSize('8MiB', '--chunk-size'); // 8388608
 * parseByteSize('1GB', '--chunk-size'); // 1000000000
 * ```
 */
export function parseByteSize(text: string, what: string): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match === null ? undefined : UNITS[(match[2] as string).toLowerCase()];
  if (match === null || unit === undefined) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(text)} is not a size: use a number with an optional unit, like 8MiB, 512KiB, 1GB or 4096`,
    );
  }
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes)) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(text)} is ${bytes} bytes, which is not a whole number of bytes up to 2^53`,
    );
  }
  return bytes;
}

/**
 * @internal Formats bytes for people, in binary units with one decimal
 * (`64.0 MiB`), bytes below 1 KiB.
 *
 * @example
 * ```ts
 * formatBytes(12_582_912); // '12.0 MiB'
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value.toFixed(1)} ${units[i]}`;
}
