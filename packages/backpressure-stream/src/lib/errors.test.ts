import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  BackpressureError,
  BudgetExceededError,
  ClosedError,
  DisconnectedError,
  InvalidArgumentError,
} from './errors';

const cases: [BackpressureError, string, { isInstance(v: unknown): boolean }][] = [
  [new ClosedError('ingest'), 'BACKPRESSURE_CLOSED', ClosedError],
  [new AbortedError('ingest', { cause: new Error('x') }), 'BACKPRESSURE_ABORTED', AbortedError],
  [
    new DisconnectedError('viewer-1', 'lagged', 900, 500),
    'BACKPRESSURE_DISCONNECTED',
    DisconnectedError,
  ],
  [
    new BudgetExceededError('ingest', 2000, 1000),
    'BACKPRESSURE_BUDGET_EXCEEDED',
    BudgetExceededError,
  ],
  [new InvalidArgumentError('bad'), 'BACKPRESSURE_INVALID_ARGUMENT', InvalidArgumentError],
];

describe('errors', () => {
  it.each(cases)('%s has a stable code and is recognised by its class only', (err, code, cls) => {
    expect(err.code).toBe(code);
    expect(BackpressureError.isInstance(err)).toBe(true);
    expect(cls.isInstance(err)).toBe(true);
    for (const [other, , otherCls] of cases) {
      if (other !== err) expect(otherCls.isInstance(err)).toBe(false);
    }
  });

  it('says why, with the numbers', () => {
    const d = new DisconnectedError('viewer-1', 'lagged', 900, 500);
    expect(d.message).toBe('consumer viewer-1 disconnected (lagged): 900 bytes behind, limit 500');
    expect([d.reason, d.lag, d.limit]).toEqual(['lagged', 900, 500]);
    expect(new AbortedError('ingest', { cause: new Error('client went away') }).message).toBe(
      'ingest was aborted: client went away',
    );
    expect(new BudgetExceededError('ingest', 2000, 1000).message).toContain(
      '2000 bytes, over its limit of 1000',
    );
  });

  it('recognises errors across package copies by brand', () => {
    const foreign = Object.assign(new Error('x'), { code: 'BACKPRESSURE_CLOSED' });
    expect(ClosedError.isInstance(foreign)).toBe(false);
    Object.defineProperty(foreign, Symbol.for('backpressure-stream.error'), { value: true });
    expect(ClosedError.isInstance(foreign)).toBe(true);
    expect(AbortedError.isInstance(foreign)).toBe(false);
  });
});
