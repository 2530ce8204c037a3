import { InvalidLengthError, OutOfRangeError } from './errors';

/** Largest offset or length the package accepts: offsets are plain numbers. */
export const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

/** Throws unless `value` is an integer in `[min, max]`. */
export function checkOffset(what: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OutOfRangeError(what, value, min, max);
  }
}

/** Throws unless `value` is an integer in `[0, limit]`. */
export function checkLength(what: string, value: number, limit: number = MAX_OFFSET): void {
  if (!Number.isInteger(value) || value < 0 || value > limit) {
    throw new InvalidLengthError(what, value, limit);
  }
}
