// Loads the built ESM entries by package name, the way users `import` them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteStore, ByteView, copyStats } from 'buffer-view';
import * as nodeEntry from 'buffer-view/node';

test('import buffer-view resolves the ESM build', async () => {
  const resolved = import.meta.resolve('buffer-view');
  assert.match(resolved, /\/dist\/index\.js$/);
  const view = ByteView.from([new Uint8Array([0, 0]), new Uint8Array([1, 0])]);
  assert.equal(view.getUint32(0), 256);
  const store = ByteStore.from([new TextEncoder().encode('mo'), new TextEncoder().encode('of')]);
  assert.equal(store.bytes.indexOf('moof'), 0);
  assert.equal(typeof copyStats().bytesCopied, 'number');
});

test('import buffer-view/node resolves the ESM build', () => {
  assert.match(import.meta.resolve('buffer-view/node'), /\/dist\/node\.js$/);
  assert.ok(Object.keys(nodeEntry).length > 0);
});
