import { describe, expect, it } from 'vitest';
import { ByteView } from 'buffer-view';

describe('smoke', () => {
  it('reads across edges', () => {
    const v = ByteView.from([new Uint8Array([0, 0]), new Uint8Array([0, 24])]);
    expect(v.getUint32(0)).toBe(24);
  });
});
