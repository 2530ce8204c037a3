/**
 * Large uploads in chunks with bounded memory: prefetching, parallel parts,
 * resume across crashes, retries with one shared budget, checksums and
 * adaptive chunk size, over tus, S3 multipart, GCS resumable and plain HTTP.
 * File paths and Node streams are in `chunked-uploader/node`.
 *
 * @packageDocumentation
 */

export type { AdaptiveOptions, AdaptiveSample } from './lib/adaptive';
export type { ChecksumAlgorithm } from './lib/checksum';
export { Checksum } from './lib/checksum';
export type { UploadErrorCode, UploadErrorOptions } from './lib/errors';
export {
  ChecksumMismatchError,
  HttpError,
  InvalidArgumentError,
  NetworkError,
  OffsetConflictError,
  ProtocolError,
  RetriesExhaustedError,
  SourceError,
  UploadAbortedError,
  UploadError,
} from './lib/errors';
export type { FetchLike } from './lib/http';
export type { UploadProgress } from './lib/progress';
export type { RetryEvent, RetryOptions } from './lib/retry';
export type { SourceInput, StreamSourceOptions } from './lib/sources';
export { fromBlob, fromBytes, fromStream, toUploadSource } from './lib/sources';
export type { StateStore, UploadState } from './lib/state-store';
export { LocalStorageStateStore, MemoryStateStore } from './lib/state-store';
export type {
  Acknowledged,
  ChunkPayload,
  ChunkReceipt,
  CompletionInfo,
  JsonValue,
  OpenOptions,
  ProtocolCapabilities,
  ProtocolSession,
  SendOptions,
  StoredPart,
  UploadProtocol,
  UploadSource,
} from './lib/types';
export type { ChunkEvent, UploadEvents, UploadOptions, UploadResult } from './lib/upload';
export { Upload, upload } from './lib/upload';
export type { GcsOptions } from './protocols/gcs';
export { gcs } from './protocols/gcs';
export type { HttpPutOptions } from './protocols/http-put';
export { httpPut } from './protocols/http-put';
export type { S3ChecksumMode, S3Credentials, S3Options, S3UploadState } from './protocols/s3';
export { s3 } from './protocols/s3';
export type { TusOptions, TusProtocol } from './protocols/tus';
export { tus } from './protocols/tus';
export type { TusServerInfo } from './protocols/tus-discovery';
export type { TusSession } from './protocols/tus-session';
