/**
 * Node.js-only parts of buffer-view: read-into from file descriptors,
 * sockets and streams, and gather-writes to sockets and files.
 *
 * @packageDocumentation
 */

// --- node io (src/lib/*.node.ts) ---
// --- end node io ---
