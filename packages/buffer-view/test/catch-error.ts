/** Runs `fn`, which must throw, and returns what it threw (for assertions on error fields). */
export function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}
