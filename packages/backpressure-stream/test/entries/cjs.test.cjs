// Loads the built CommonJS entries by package name, the way users `require` them.
const assert = require('node:assert/strict');
const { test } = require('node:test');

test('require backpressure-stream resolves the CJS build', async () => {
  assert.match(require.resolve('backpressure-stream'), /[\\/]dist[\\/]index\.cjs$/);
  const { Channel, BackpressureError } = require('backpressure-stream');
  const ch = new Channel({ capacity: 2 });
  assert.equal(ch.write(new Uint8Array(2)), false);
  ch.abort(new Error('stop'));
  await assert.rejects(ch.read(), (err) => BackpressureError.isInstance(err));
});

test('require backpressure-stream/node resolves the CJS build', () => {
  assert.match(require.resolve('backpressure-stream/node'), /[\\/]dist[\\/]node\.cjs$/);
  assert.ok(Object.keys(require('backpressure-stream/node')).length > 0);
});
