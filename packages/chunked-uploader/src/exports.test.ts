import { describe, expect, it } from 'vitest';
import * as main from './index';
import * as node from './node';

// An accidental addition or removal of a public name must show up in review.
describe('public API', () => {
  it('chunked-uploader exports exactly these names', () => {
    expect(Object.keys(main).sort()).toMatchInlineSnapshot(`
      [
        "Checksum",
        "ChecksumMismatchError",
        "HttpError",
        "InvalidArgumentError",
        "LocalStorageStateStore",
        "MemoryStateStore",
        "NetworkError",
        "OffsetConflictError",
        "ProtocolError",
        "RetriesExhaustedError",
        "SourceError",
        "Upload",
        "UploadAbortedError",
        "UploadError",
        "fromBlob",
        "fromBytes",
        "fromStream",
        "gcs",
        "httpPut",
        "s3",
        "toUploadSource",
        "tus",
        "upload",
      ]
    `);
  });

  it('chunked-uploader/node exports exactly these names', () => {
    expect(Object.keys(node).sort()).toMatchInlineSnapshot(`
      [
        "FileStateStore",
        "fromFile",
        "fromNodeReadable",
      ]
    `);
  });
});
