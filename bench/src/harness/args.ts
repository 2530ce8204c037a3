/** What the command line asks for. */
export type CliCommand =
  | { kind: 'help' }
  | { kind: 'list' }
  | { kind: 'run'; names: string[]; quick: boolean; timeMs: number | null; outDir: string | null }
  | { kind: 'error'; message: string };

/** The help text. */
export function usage(names: readonly string[]): string {
  return [
    'Usage: pnpm bench [<name>...] [--quick] [--time <seconds>] [--out <dir>]',
    '       pnpm bench --list',
    '',
    'Runs the named benchmarks (all when none is named) and writes bench/results/.',
    '',
    '  --quick           short rounds, for a CI smoke run (figures are indicative only)',
    '  --time <seconds>  measured time per case (default 2)',
    '  --out <dir>       write results there instead of bench/results (e.g. for a CI smoke run)',
    '  --list            print the benchmark names and summaries',
    '  -h, --help        print this help',
    '',
    `Benchmarks: ${names.join(', ')}`,
  ].join('\n');
}

function suggestion(name: string, known: readonly string[]): string {
  const close = known.filter((k) => k.startsWith(name) || k.includes(name) || name.startsWith(k));
  return close.length > 0 ? ` (did you mean ${close.map((c) => `'${c}'`).join(' or ')}?)` : '';
}

/**
 * Parses the arguments after the script name. Unknown options and unknown
 * benchmark names are errors that list what exists.
 */
export function parseArgs(argv: readonly string[], known: readonly string[]): CliCommand {
  const names: string[] = [];
  let quick = false;
  let list = false;
  let timeMs: number | null = null;
  let outDir: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') continue;
    if (arg === '-h' || arg === '--help') return { kind: 'help' };
    if (arg === '--list') {
      list = true;
    } else if (arg === '--quick') {
      quick = true;
    } else if (arg === '--time' || arg.startsWith('--time=')) {
      const raw = arg === '--time' ? argv[++i] : arg.slice('--time='.length);
      const seconds = Number(raw);
      if (raw === undefined || raw === '' || !Number.isFinite(seconds) || seconds <= 0) {
        return {
          kind: 'error',
          message: `--time needs a positive number of seconds, got ${raw === undefined ? 'nothing' : `'${raw}'`}`,
        };
      }
      timeMs = seconds * 1000;
    } else if (arg === '--out' || arg.startsWith('--out=')) {
      const dir = arg === '--out' ? argv[++i] : arg.slice('--out='.length);
      if (dir === undefined || dir === '')
        return { kind: 'error', message: '--out needs a directory' };
      outDir = dir;
    } else if (arg.startsWith('-')) {
      return { kind: 'error', message: `unknown option '${arg}'\n\n${usage(known)}` };
    } else if (!names.includes(arg)) {
      names.push(arg);
    }
  }
  if (list) return { kind: 'list' };
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    const what = unknown.map((n) => `'${n}'${suggestion(n, known)}`).join(', ');
    return {
      kind: 'error',
      message: `unknown benchmark${unknown.length > 1 ? 's' : ''} ${what}\nAvailable benchmarks: ${known.join(', ')}`,
    };
  }
  return { kind: 'run', names: names.length > 0 ? names : [...known], quick, timeMs, outDir };
}
