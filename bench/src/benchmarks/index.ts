import type { Benchmark } from '../harness/types';
import { adaptiveChunk } from './adaptive-chunk';
import { blCompare } from './bl-compare';
import { fanOut } from './fan-out';
import { gatherWrite } from './gather-write';
import { gzipGuide } from './gzip-guide';
import { loopback } from './loopback';
import { pipeline3stage } from './pipeline-3stage';
import { s3Upload } from './s3-upload';
import { socketIngest } from './socket-ingest';
import { splice } from './splice';
import { tusUpload } from './tus-upload';
import { viewSlice } from './view-slice';

/**
 * Every benchmark, in the order `pnpm bench` runs them and the results index
 * lists them. Add new ones here.
 */
export const benchmarks: readonly Benchmark[] = [
  viewSlice,
  splice,
  blCompare,
  loopback,
  socketIngest,
  gatherWrite,
  pipeline3stage,
  gzipGuide,
  fanOut,
  tusUpload,
  s3Upload,
  adaptiveChunk,
];
