/**
 * Bounded channels, pipelines and fan-out whose memory stays flat when a
 * fast producer meets a slow consumer. Node stream adapters live in
 * `backpressure-stream/node`.
 *
 * @packageDocumentation
 */

export { ByteBudget } from './lib/budget';
export type { ChannelEvents, ChannelOptions, WaitOptions } from './lib/channel';
export { Channel } from './lib/channel';
export type { EventMap } from './lib/emitter';
export { Emitter } from './lib/emitter';
export type {
  BackpressureErrorCode,
  BackpressureErrorOptions,
  DisconnectReason,
} from './lib/errors';
export {
  AbortedError,
  BackpressureError,
  BudgetExceededError,
  ClosedError,
  DisconnectedError,
  InvalidArgumentError,
} from './lib/errors';
export type { StageMetrics } from './lib/metrics';
export type { MetricsSource, WatchMetricsOptions } from './lib/metrics-watch';
export { watchMetrics } from './lib/metrics-watch';
export { byteSize } from './lib/size';
export type { TakeOptions, ThrottleOptions } from './lib/throttle';
export { TokenBucket, throttle } from './lib/throttle';
