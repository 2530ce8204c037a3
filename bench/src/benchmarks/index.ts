import type { Benchmark } from '../harness/types';
import { blCompare } from './bl-compare';
import { loopback } from './loopback';
import { splice } from './splice';
import { viewSlice } from './view-slice';

/**
 * Every benchmark, in the order `pnpm bench` runs them and the results index
 * lists them. Add new ones here.
 */
export const benchmarks: readonly Benchmark[] = [viewSlice, splice, blCompare, loopback];
