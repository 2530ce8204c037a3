// Loads the built CommonJS entries by package name, the way users `require` them.
const assert = require('node:assert/strict');
const { test } = require('node:test');

test('require buffer-view resolves the CJS build', () => {
  assert.match(require.resolve('buffer-view'), /[\\/]dist[\\/]index\.cjs$/);
  const { ByteView, ByteStore, BufferViewError } = require('buffer-view');
  const view = ByteView.from([new Uint8Array([0, 0]), new Uint8Array([1, 0])]);
  assert.equal(view.getUint32(0), 256);
  assert.equal(ByteStore.alloc(16).length, 16);
  assert.throws(
    () => view.view(0, 5),
    (err) => BufferViewError.isInstance(err),
  );
});

test('require buffer-view/node resolves the CJS build', () => {
  assert.match(require.resolve('buffer-view/node'), /[\\/]dist[\\/]node\.cjs$/);
  assert.ok(Object.keys(require('buffer-view/node')).length > 0);
});
