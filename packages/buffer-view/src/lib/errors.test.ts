import { describe, expect, it } from 'vitest';
import {
  BufferViewError,
  DetachedBufferError,
  InvalidArgumentError,
  InvalidLengthError,
  NotContiguousError,
  OutOfRangeError,
  PoolExhaustedError,
  ReleasedError,
  RingFullError,
  RingOverrunError,
  StaleViewError,
  TransferError,
  UnexpectedEofError,
} from './errors';

const cases: [BufferViewError, string, { isInstance(v: unknown): boolean }][] = [
  [new OutOfRangeError('offset', 9, 0, 8), 'BUFFER_VIEW_OUT_OF_RANGE', OutOfRangeError],
  [new InvalidLengthError('length', -1, 8), 'BUFFER_VIEW_INVALID_LENGTH', InvalidLengthError],
  [new InvalidArgumentError('bad'), 'BUFFER_VIEW_INVALID_ARGUMENT', InvalidArgumentError],
  [new NotContiguousError(3), 'BUFFER_VIEW_NOT_CONTIGUOUS', NotContiguousError],
  [new RingOverrunError(10, 50), 'BUFFER_VIEW_RING_OVERRUN', RingOverrunError],
  [new RingFullError(100, 10), 'BUFFER_VIEW_RING_FULL', RingFullError],
  [new ReleasedError('slab'), 'BUFFER_VIEW_RELEASED', ReleasedError],
  [new DetachedBufferError(), 'BUFFER_VIEW_DETACHED', DetachedBufferError],
  [new StaleViewError('moved'), 'BUFFER_VIEW_STALE_VIEW', StaleViewError],
  [new PoolExhaustedError(4), 'BUFFER_VIEW_POOL_EXHAUSTED', PoolExhaustedError],
  [new UnexpectedEofError(100, 60), 'BUFFER_VIEW_UNEXPECTED_EOF', UnexpectedEofError],
  [
    new TransferError('read', 10, 100, 'EIO', { cause: new Error('EIO') }),
    'BUFFER_VIEW_TRANSFER_FAILED',
    TransferError,
  ],
];

describe('errors', () => {
  it.each(cases)('%s has a stable code and is recognised by its class only', (err, code, cls) => {
    expect(err.code).toBe(code);
    expect(err).toBeInstanceOf(Error);
    expect(BufferViewError.isInstance(err)).toBe(true);
    expect(cls.isInstance(err)).toBe(true);
    for (const [other, , otherCls] of cases) {
      if (other !== err) expect(otherCls.isInstance(err)).toBe(false);
    }
    expect(err.name).not.toBe('Error');
  });

  it('names the offending value and the limit', () => {
    expect(new OutOfRangeError('view end', 21, 0, 20).message).toBe(
      'view end 21 is out of range: must be an integer >= 0 and <= 20',
    );
    expect(new InvalidLengthError('grow size', -5, 100).message).toContain('-5');
    expect(new RingOverrunError(10, 50).message).toContain('40 bytes lost');
    expect(new UnexpectedEofError(100, 60).message).toBe(
      'source ended after 60 of 100 expected bytes',
    );
  });

  it('recognises errors from another copy of the package by brand, not identity', () => {
    const foreign = Object.assign(new Error('x'), { code: 'BUFFER_VIEW_OUT_OF_RANGE' });
    expect(BufferViewError.isInstance(foreign)).toBe(false);
    Object.defineProperty(foreign, Symbol.for('buffer-view.error'), { value: true });
    expect(BufferViewError.isInstance(foreign)).toBe(true);
    expect(OutOfRangeError.isInstance(foreign)).toBe(true);
    expect(RingOverrunError.isInstance(foreign)).toBe(false);
    expect(BufferViewError.isInstance(null)).toBe(false);
    expect(BufferViewError.isInstance('BUFFER_VIEW_OUT_OF_RANGE')).toBe(false);
  });

  it('keeps the cause', () => {
    const cause = new Error('root');
    expect(new InvalidArgumentError('wrapped', { cause }).cause).toBe(cause);
  });
});
