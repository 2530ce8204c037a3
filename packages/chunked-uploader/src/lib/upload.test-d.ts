import { describe, expectTypeOf, it } from 'vitest';
import {
  type ProtocolCapabilities,
  tus,
  Upload,
  type UploadErrorCode,
  type UploadProgress,
  type UploadProtocol,
  type UploadResult,
  upload,
} from '../index';

describe('public types', () => {
  it('protocol factories satisfy the protocol contract', () => {
    expectTypeOf(tus({ endpoint: 'http://127.0.0.1/files/' })).toExtend<UploadProtocol>();
    expectTypeOf<ProtocolCapabilities['placement']>().toEqualTypeOf<'offset' | 'part'>();
  });

  it('upload resolves to a result and emits typed progress', () => {
    const protocol = tus({ endpoint: 'http://127.0.0.1/files/' });
    expectTypeOf(upload(new Blob(['x']), { protocol })).resolves.toEqualTypeOf<UploadResult>();
    const job = new Upload(new Uint8Array(1), { protocol });
    job.on('progress', (p) => expectTypeOf(p).toEqualTypeOf<UploadProgress>());
    // @ts-expect-error a file path is not a source in the default entry (use fromFile from /node)
    new Upload('movie.mp4', { protocol });
    // @ts-expect-error the protocol is required
    new Upload(new Uint8Array(1), {});
    expectTypeOf<'UPLOAD_RETRIES_EXHAUSTED'>().toExtend<UploadErrorCode>();
  });
});
