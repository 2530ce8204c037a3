/**
 * The shapes a benchmark is written in and the shapes the runner reports.
 * Benchmarks are plain objects made with `defineBenchmark`; everything the
 * runner produces is plain JSON so a child process can send it back and the
 * report writers can re-read it from `results/<name>.json`.
 */

/** Who a case stands for: our packages, a library users would pick instead, or a floor/ceiling. */
export type Role = 'ours' | 'peer' | 'baseline';

/** How throughput is expressed. `MiB/s` needs `bytesPerOp`. */
export type Unit = 'MiB/s' | 'ops/s';

/** What a benchmark's `setup` is told about the run. */
export interface SetupContext {
  /** True for `--quick` (CI smoke) runs: a benchmark may use smaller inputs. */
  quick: boolean;
}

/** One contender in a benchmark. `S` is the state the benchmark's `setup` returned. */
export interface BenchCase<S> {
  /** Unique within the benchmark; shown in tables and charts. Keep it under ~40 characters. */
  name: string;
  role: Role;
  /** One line saying what exactly is measured (and any caveat: copy vs view semantics). */
  description?: string;
  /** Cases of one group are compared with each other (e.g. one size, one operation). */
  group?: string;
  /** Name of the case this one's ratio is computed against. Defaults to the benchmark's `reference`. */
  reference?: string;
  /** Overrides the benchmark's unit, for benchmarks that mix operations. */
  unit?: Unit;
  /** Overrides the benchmark's bytes per operation. */
  bytesPerOp?: number;
  /**
   * One operation. May return a promise (socket cases); the runner awaits it.
   * Whatever it returns is kept in a sink so the work cannot be optimised away.
   */
  run: (state: S) => unknown;
  /** Runs once before this case's warm-up, after the benchmark's setup. */
  setup?: (state: S) => void | Promise<void>;
  /** Runs once after this case's last round. */
  teardown?: (state: S) => void | Promise<void>;
  /**
   * Single-shot scenarios only: runs after each run, outside its timing, with
   * the value the run resolved to. Check the output here (and clean it up)
   * so a broken run cannot look fast; throwing fails the case. In an
   * isolated case it runs in the child, so keep it light on memory: the
   * child's peak RSS is its whole life's.
   */
  check?: (state: S, result: unknown) => void | Promise<void>;
  /**
   * Run this case in its own child process (its own heap and RSS), still
   * alternating with the others round by round. The benchmark must set
   * `moduleUrl` so the child can load it.
   * @default false
   */
  isolate?: boolean;
  /**
   * Isolated cases only: what the child process runs. `'sources'` runs it
   * under tsx with workspace packages loaded from their TypeScript sources,
   * like the parent (tsx's loader thread and the sources add about 40 MiB
   * to the child's RSS). `'built'` runs plain `node`, no loader, on an
   * esbuild bundle of the harness's child entry and of the benchmark's
   * module in which every package (workspace or npm) stays an import by
   * name, so it loads as published: workspace packages from their `dist`
   * builds. Build them first (`pnpm build`; turbo's bench task depends on
   * `^build`). Use it where the child's own memory is what is measured.
   * @default 'sources'
   */
  runtime?: ChildRuntime;
  /**
   * Report buffer-view's `copyStats()` delta per operation.
   * @default role === 'ours'
   */
  countCopies?: boolean;
  /**
   * For cases buffer-view's counters cannot see (peers): bytes the operation
   * copies by construction (a copying slice copies its length). Shown as
   * "declared" beside counted figures.
   */
  declaredCopyBytesPerOp?: number;
}

/** What an isolated case's child process runs: see {@link BenchCase.runtime}. */
export type ChildRuntime = 'sources' | 'built';

/** A figure a target can be stated on. Throughput is higher-is-better; the rest lower-is-better. */
export type Metric =
  | 'throughput'
  | 'p50Ns'
  | 'p99Ns'
  | 'peakRssBytes'
  | 'rssGrowthBytes'
  /** Isolated cases only: peak RSS less the child's baseline RSS (see `CaseResult.baselineRssBytes`). */
  | 'rssAboveBaselineBytes'
  | 'bytesCopiedPerOp';

/**
 * A goal stated in the issue (e.g. "ours ≥ 0.8× raw"). A miss is reported,
 * never thrown.
 */
export type Target =
  | {
      /** `metric(case) / metric(vs)` must be within bounds. */
      kind: 'ratio';
      case: string;
      vs: string;
      /** @default 'throughput' */
      metric?: Metric;
      atLeast?: number;
      atMost?: number;
      /** Shown instead of the generated description. */
      label?: string;
    }
  | {
      /** `metric(case)` must be within bounds. */
      kind: 'limit';
      case: string;
      metric: Metric;
      atLeast?: number;
      atMost?: number;
      label?: string;
    };

/** A benchmark as written, with its state type. */
export interface BenchmarkDefinition<S> {
  /** Used on the command line and as the results file name: kebab-case. */
  name: string;
  /** One line for `--list` and the results index. */
  summary: string;
  /** What is compared and how (a paragraph; shown above the table). */
  description: string;
  unit: Unit;
  /**
   * Bytes one operation moves; turns ops into MiB/s. A function when the
   * input depends on the run (a smaller file for `--quick`).
   */
  bytesPerOp: number | ((context: SetupContext) => number);
  /** Default case ratios are computed against. */
  reference: string;
  cases: readonly BenchCase<S>[];
  /** Builds the shared state once per process (the parent, and each isolated child). */
  setup?: (context: SetupContext) => S | Promise<S>;
  teardown?: (state: S) => void | Promise<void>;
  targets?: readonly Target[];
  /** `import.meta.url` of the defining module: needed when a case is isolated. */
  moduleUrl?: string;
  /** Debian packages (servers, load tools) to install when their command is missing. */
  debianPackages?: readonly string[];
  /**
   * Run as a single-shot scenario instead of timed rounds, for operations
   * that take seconds (gzip a 2 GiB file): no warm-up, no batching, no time
   * box (`--time` does not apply); every case runs exactly `runs`
   * operations, each timed alone, one per round, still alternating with the
   * other cases. Isolate the cases so each reports its own process's peak RSS.
   * @default undefined (timed rounds)
   */
  singleShot?: { runs: number };
}

/** How a benchmark was measured: time-boxed rounds, or a fixed number of single operations. */
export type RunMode = 'timed' | 'single-shot';

/** A benchmark with its state type erased, as the runner and registry hold it. */
export type Benchmark = BenchmarkDefinition<unknown>;

/** How long and how finely the runner measures. */
export interface RunOptions {
  /** Warm-up per case before any measured round (also calibrates the batch size). */
  warmupMs: number;
  /** Measured time per case, split over `rounds` slices. */
  timeMs: number;
  /** Round-robin rounds: every case runs one slice per round. */
  rounds: number;
  /** A sample is a batch of operations lasting at least this long (per-op timing for slower ops). */
  minSampleNs: number;
  /** Interval of the RSS sampler: per batch for sync cases, a timer for async ones. */
  rssIntervalMs: number;
  /** Force a full garbage collection after each warm-up and slice (untimed) so no case pays for another's garbage. */
  gcBetweenSlices: boolean;
  quick: boolean;
}

/** Buffer-view copy counters per operation. */
export interface CopyFigures {
  source: 'counted' | 'declared';
  bytesCopiedPerOp: number;
  /** Only when counted. */
  bytesAllocatedPerOp?: number;
  copiesPerOp?: number;
}

/** Percentiles of the per-operation time, in nanoseconds. */
export interface TimeSummary {
  mean: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
}

/** Everything measured for one case. */
export interface CaseResult {
  name: string;
  role: Role;
  description: string | null;
  group: string | null;
  unit: Unit;
  bytesPerOp: number;
  isolated: boolean;
  /** Isolated cases: what their child ran (see `BenchCase.runtime`). Absent in older reports. */
  runtime?: ChildRuntime | null;
  /** Measured operations (warm-up excluded). */
  ops: number;
  samples: number;
  /** Operations per sample (1 = every op timed alone). */
  batch: number;
  /** Sum of the timed samples, in nanoseconds. */
  timeNs: number;
  /** In `unit`, from total ops over total timed time. Null when the case failed. */
  throughput: number | null;
  perOpNs: TimeSummary | null;
  /** Highest RSS seen while this case ran (whole process; the child's own for isolated cases). */
  peakRssBytes: number | null;
  /** Highest rise of RSS above its value at the start of a slice. */
  rssGrowthBytes: number | null;
  /**
   * Isolated cases: the child's RSS after loading the benchmark and running
   * its setup, before the case's own setup (after a full GC): the process
   * floor the case's memory comes on top of. Null for cases run in the parent.
   */
  baselineRssBytes: number | null;
  copies: CopyFigures | null;
  reference: string;
  /** throughput / reference throughput. */
  ratio: number | null;
  error: string | null;
}

/** The verdict on one target. */
export interface TargetResult {
  label: string;
  met: boolean;
  actual: number | null;
  detail: string;
}

/** The machine the run happened on. */
export interface MachineInfo {
  platform: string;
  arch: string;
  cpu: string;
  cores: number;
  totalMemoryBytes: number;
  node: string;
  v8: string;
}

/** What `results/<name>.json` holds. */
export interface BenchmarkReport {
  schema: 1;
  name: string;
  summary: string;
  description: string;
  unit: Unit;
  /** Resolved for this run (see `BenchmarkDefinition.bytesPerOp`). */
  bytesPerOp: number;
  reference: string;
  /** `'single-shot'` for scenario benchmarks (then `options` holds the rounds actually run and no warm-up). */
  mode: RunMode;
  date: string;
  durationMs: number;
  machine: MachineInfo;
  options: RunOptions;
  cases: CaseResult[];
  targets: TargetResult[];
  allTargetsMet: boolean;
}
