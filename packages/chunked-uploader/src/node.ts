/**
 * Node.js-only parts of chunked-uploader: file and Node stream sources, and
 * a file-backed state store so a killed process resumes.
 *
 * @example
 * ```ts
 * import { upload, tus } from 'chunked-uploader';
 * import { FileStateStore, fromFile } from 'chunked-uploader/node';
 * await upload(await fromFile('movie.mp4'), {
 *   protocol: tus({ endpoint: 'https://tus.example/files/' }),
 *   stateStore: new FileStateStore(),
 * });
 * ```
 *
 * @packageDocumentation
 */

export type { FileSourceOptions, FileUploadSource } from './lib/file-source.node.ts';
export { fromFile } from './lib/file-source.node.ts';
export type { FileStateStoreOptions } from './lib/file-state-store.node.ts';
export { FileStateStore } from './lib/file-state-store.node.ts';
export { fromNodeReadable } from './lib/node-readable-source.node.ts';
