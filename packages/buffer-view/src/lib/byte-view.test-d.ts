import { describe, expectTypeOf, it } from 'vitest';
import {
  type BufferViewErrorCode,
  ByteStore,
  type BytesLike,
  ByteView,
  OutOfRangeError,
} from '../index';

describe('public types', () => {
  it('accepts every zero-copy input shape', () => {
    expectTypeOf<Uint8Array>().toExtend<BytesLike>();
    expectTypeOf<DataView>().toExtend<BytesLike>();
    expectTypeOf<ArrayBuffer>().toExtend<BytesLike>();
    expectTypeOf<SharedArrayBuffer>().toExtend<BytesLike>();
    expectTypeOf<ByteView[]>().toExtend<BytesLike>();
    expectTypeOf<string>().not.toExtend<BytesLike>();
  });

  it('returns views from slicing and plain arrays only from copies', () => {
    const view = ByteView.from(new Uint8Array(8));
    expectTypeOf(view.view(0, 4)).toEqualTypeOf<ByteView>();
    expectTypeOf(view.copy()).toEqualTypeOf<Uint8Array>();
    expectTypeOf(view.getBigUint64(0)).toEqualTypeOf<bigint>();
    expectTypeOf(view.getSafeUint64(0)).toEqualTypeOf<number>();
    // @ts-expect-error there is deliberately no copying `slice` to reach for by habit
    view.slice(0, 4);
    expectTypeOf(ByteStore.alloc(8).grow(4)).toEqualTypeOf<ByteView>();
  });

  it('narrows errors to stable codes', () => {
    const err = new OutOfRangeError('offset', 1, 0, 0);
    expectTypeOf(err.code).toEqualTypeOf<BufferViewErrorCode>();
    expectTypeOf(err.limit).toEqualTypeOf<number>();
    expectTypeOf<'BUFFER_VIEW_OUT_OF_RANGE'>().toExtend<BufferViewErrorCode>();
  });
});
