// Loads the built CommonJS entries by package name, the way users `require` them.
const assert = require('node:assert/strict');
const { test } = require('node:test');

test('require chunked-uploader resolves the CJS build', () => {
  assert.match(require.resolve('chunked-uploader'), /[\\/]dist[\\/]index\.cjs$/);
  const { s3, gcs, httpPut } = require('chunked-uploader');
  assert.equal(
    s3({
      endpoint: 'http://127.0.0.1:1',
      bucket: 'b',
      key: 'k',
      credentials: { accessKeyId: 'a', secretAccessKey: 's' },
    }).name,
    's3',
  );
  assert.equal(gcs({ bucket: 'b', name: 'n', accessToken: 't' }).name, 'gcs');
  assert.equal(httpPut({ url: 'http://127.0.0.1:1/x' }).name, 'http');
});

test('require chunked-uploader/node resolves the CJS build', () => {
  assert.match(require.resolve('chunked-uploader/node'), /[\\/]dist[\\/]node\.cjs$/);
  assert.equal(typeof require('chunked-uploader/node').FileStateStore, 'function');
});
