// Loads the built ESM entries by package name, the way users `import` them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Channel, ClosedError } from 'backpressure-stream';
import * as nodeEntry from 'backpressure-stream/node';

test('import backpressure-stream resolves the ESM build', async () => {
  assert.match(import.meta.resolve('backpressure-stream'), /\/dist\/index\.js$/);
  const ch = new Channel({ capacity: 4 });
  assert.equal(ch.write(new Uint8Array(4)), false);
  ch.close();
  assert.throws(
    () => ch.write(new Uint8Array(1)),
    (err) => ClosedError.isInstance(err),
  );
  assert.equal((await ch.read()).value.length, 4);
});

test('import backpressure-stream/node resolves the ESM build', () => {
  assert.match(import.meta.resolve('backpressure-stream/node'), /\/dist\/node\.js$/);
  assert.ok(Object.keys(nodeEntry).length > 0);
});
