/**
 * Native byte search and compare. Node's Buffer methods run in C++ and accept
 * any Uint8Array as `this`; browsers fall back to a native first-byte scan
 * (`Uint8Array.prototype.indexOf`) plus a short verify loop.
 */

type BufferStatics = {
  prototype: {
    indexOf(this: Uint8Array, value: Uint8Array | number, byteOffset?: number): number;
    lastIndexOf(this: Uint8Array, value: Uint8Array | number, byteOffset?: number): number;
  };
  compare(a: Uint8Array, b: Uint8Array): number;
};

const NodeBuffer = (globalThis as { Buffer?: BufferStatics }).Buffer;
const nativeIndexOf = NodeBuffer?.prototype.indexOf;

/** Index of `needle` in `haystack` at or after `from`, or -1. */
export function searchBytes(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const n = needle.length;
  if (n === 0) return from <= haystack.length ? from : -1;
  if (from + n > haystack.length) return -1;
  if (nativeIndexOf !== undefined) {
    return nativeIndexOf.call(haystack, n === 1 ? (needle[0] as number) : needle, from);
  }
  const first = needle[0] as number;
  const last = haystack.length - n;
  let i = haystack.indexOf(first, from);
  while (i !== -1 && i <= last) {
    let j = 1;
    while (j < n && haystack[i + j] === needle[j]) j++;
    if (j === n) return i;
    i = haystack.indexOf(first, i + 1);
  }
  return -1;
}

/** Three-way comparison of two byte ranges, like `Buffer.compare`. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  if (NodeBuffer !== undefined) return NodeBuffer.compare(a, b);
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
