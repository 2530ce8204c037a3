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
export type { EventMap, Listener } from './lib/emitter';
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
export type {
  BroadcastEvents,
  BroadcastMetrics,
  BroadcastOptions,
  BroadcastSendOptions,
  BroadcastWriteOptions,
} from './lib/fan-out';
export { Broadcast } from './lib/fan-out';
export type {
  BroadcastBatchHandler,
  BroadcastChunk,
  BroadcastCoalesceOptions,
  BroadcastConsumerEvents,
  BroadcastConsumerMetrics,
  BroadcastConsumerOptions,
  BroadcastPipeOptions,
  BroadcastStart,
  SlowConsumerPolicy,
  WritableLike,
} from './lib/fan-out-consumer';
export { BroadcastConsumer } from './lib/fan-out-consumer';
export type { StageMetrics } from './lib/metrics';
export type { MetricsSource, WatchMetricsOptions } from './lib/metrics-watch';
export { watchMetrics } from './lib/metrics-watch';
export type { NodeDuplexLike, NodeReadableLike, NodeWritableLike } from './lib/node-stage';
export type {
  ChunkMapper,
  PipelineOptions,
  PipelineResult,
  PipelineSink,
  PipelineSource,
  PipelineTransform,
  StageContext,
  StageInput,
  TransformStreamLike,
} from './lib/pipeline';
export { mapChunks, pipeline } from './lib/pipeline';
export { SinkChannel } from './lib/sink-channel';
export { byteSize } from './lib/size';
export type { TakeOptions, ThrottleOptions } from './lib/throttle';
export { TokenBucket, throttle } from './lib/throttle';
export type {
  FromStreamOptions,
  ToReadableStreamOptions,
  ToWritableStreamOptions,
} from './lib/web-streams';
export {
  fromReadableStream,
  fromWritableStream,
  toReadableStream,
  toWritableStream,
} from './lib/web-streams';
