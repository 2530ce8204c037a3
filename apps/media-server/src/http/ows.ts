/** Strips OWS (SP and HTAB, RFC 9110 §5.6.3): not String#trim, which takes any Unicode space. */
export function trimOws(text: string): string {
  let from = 0;
  let to = text.length;
  while (from < to && isOws(text.charCodeAt(from))) from++;
  while (to > from && isOws(text.charCodeAt(to - 1))) to--;
  return text.slice(from, to);
}

/** True for SP and HTAB, the only whitespace HTTP field values allow around tokens. */
export function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
