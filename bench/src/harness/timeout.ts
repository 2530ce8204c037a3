/** How long a teardown may take before the run moves on without it. */
export const TEARDOWN_TIMEOUT_MS = 15_000;

/** Resolves with `promise`, or rejects after `ms` so a stuck teardown cannot hang the run. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
