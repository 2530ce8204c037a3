/**
 * Node.js stream adapters for backpressure-stream.
 *
 * @packageDocumentation
 */
