/**
 * `pnpm bench [<name>...] [--quick] [--list]`: runs the benchmarks and writes
 * bench/results/. Run through tsx with `--conditions=@streaming-primitives/source`
 * so workspace packages load from their sources, and `--expose-gc`.
 */
import { fileURLToPath } from 'node:url';
import { benchmarks } from './benchmarks/index';
import { runCli } from './harness/main';

const code = await runCli(process.argv.slice(2), benchmarks, {
  resultsDir: fileURLToPath(new URL('../results/', import.meta.url)),
  out: (text) => console.log(text),
  err: (text) => console.error(text),
});
// Exit explicitly: a benchmark's stray handle must not keep the process alive.
process.exit(code);
