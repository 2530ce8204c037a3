// Loads the built ESM entries by package name, the way users `import` them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Checksum, tus, UploadError, upload } from 'chunked-uploader';
import * as nodeEntry from 'chunked-uploader/node';

test('import chunked-uploader resolves the ESM build', async () => {
  assert.match(import.meta.resolve('chunked-uploader'), /\/dist\/index\.js$/);
  assert.equal(typeof upload, 'function');
  assert.equal(tus({ endpoint: 'http://127.0.0.1:1/files/' }).name, 'tus');
  assert.equal(
    (await Checksum.of('crc32c', new TextEncoder().encode('123456789'))).hex(),
    'e3069283',
  );
  assert.equal(UploadError.isInstance(new Error('x')), false);
});

test('import chunked-uploader/node resolves the ESM build', () => {
  assert.match(import.meta.resolve('chunked-uploader/node'), /\/dist\/node\.js$/);
  assert.equal(typeof nodeEntry.fromFile, 'function');
});
