import { describe, expect, it } from 'vitest';
import * as main from './index';
import * as node from './node';

// An accidental addition or removal of a public name must show up in review.
describe('public API', () => {
  it('buffer-view exports exactly these names', () => {
    expect(Object.keys(main).sort()).toMatchInlineSnapshot(`
      [
        "BufferViewError",
        "ByteRing",
        "ByteStore",
        "ByteView",
        "DetachedBufferError",
        "InvalidArgumentError",
        "InvalidLengthError",
        "KeptView",
        "NotContiguousError",
        "OutOfRangeError",
        "PoolExhaustedError",
        "ReleasedError",
        "RingFullError",
        "RingOverrunError",
        "RingReader",
        "Slab",
        "SlabPool",
        "StaleViewError",
        "TransferError",
        "UnexpectedEofError",
        "copyStats",
        "measureCopies",
        "resetCopyStats",
      ]
    `);
  });

  it('buffer-view/node exports exactly these names', () => {
    expect(Object.keys(node).sort()).toMatchInlineSnapshot(`
      [
        "SocketReceiver",
        "connectInto",
        "fromBuffer",
        "readFdInto",
        "readFdIntoSync",
        "readStreamInto",
        "regionTarget",
        "ringTarget",
        "storeTarget",
        "toBuffer",
        "toBufferCopy",
        "writeFdGather",
        "writeFdGatherSync",
        "writeGather",
        "writeGatherAsync",
      ]
    `);
  });
});
