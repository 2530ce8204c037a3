/**
 * Node.js stream adapters for backpressure-stream.
 *
 * @packageDocumentation
 */

export type {
  FromNodeOptions,
  ToNodeDuplexOptions,
  ToNodeReadableOptions,
  ToNodeWritableOptions,
} from './lib/node-streams.node.ts';
export {
  fromNodeReadable,
  fromNodeWritable,
  toNodeDuplex,
  toNodeReadable,
  toNodeWritable,
} from './lib/node-streams.node.ts';
