/** What the fan-out tests share: recognisable chunks and ways to watch promises settle. */

/** A chunk whose bytes encode its sequence number and position, so a misplaced or altered byte shows. */
export function chunkOf(seq: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seq * 31 + i * 7 + 1) & 0xff;
  return out;
}

/** Lets every pending promise reaction run (a woken reader takes its batch a microtask later). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Tracks a promise's outcome without awaiting it. */
export function track<T>(promise: Promise<T>): { done: boolean; value?: T; error?: unknown } {
  const state: { done: boolean; value?: T; error?: unknown } = { done: false };
  promise.then(
    (value) => {
      state.done = true;
      state.value = value;
    },
    (error: unknown) => {
      state.done = true;
      state.error = error;
    },
  );
  return state;
}
