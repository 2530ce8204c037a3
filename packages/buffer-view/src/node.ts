/**
 * Node.js-only parts of buffer-view: read-into from file descriptors,
 * sockets and streams, gather-writes to sockets and files, and Buffer
 * interop.
 *
 * @packageDocumentation
 */

export { fromBuffer, toBuffer, toBufferCopy } from './lib/buffer-interop.node.ts';
export type { ReadFdIntoOptions, SegmentsLike, WriteFdGatherOptions } from './lib/fd-io.node.ts';
export {
  readFdInto,
  readFdIntoSync,
  writeFdGather,
  writeFdGatherSync,
} from './lib/fd-io.node.ts';
export type { ReadStreamIntoOptions, StreamSource } from './lib/read-stream.node.ts';
export { readStreamInto } from './lib/read-stream.node.ts';
export type {
  ReadTarget,
  ReadTargetLike,
  RegionTarget,
  RingTargetOptions,
  StoreTarget,
  StoreTargetOptions,
} from './lib/read-target.node.ts';
export { regionTarget, ringTarget, storeTarget } from './lib/read-target.node.ts';
export type {
  ConnectIntoOptions,
  ReceiveOptions,
  SocketReceiverOptions,
} from './lib/socket-receiver.node.ts';
export { connectInto, SocketReceiver } from './lib/socket-receiver.node.ts';
export { writeGather, writeGatherAsync } from './lib/write-gather.node.ts';
