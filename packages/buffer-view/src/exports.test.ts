import { describe, expect, it } from 'vitest';
import * as main from './index';
import * as node from './node';

// An accidental addition or removal of a public name must show up in review.
describe('public API', () => {
  it('buffer-view exports exactly these names', () => {
    expect(Object.keys(main).sort()).toMatchInlineSnapshot();
  });

  it('buffer-view/node exports exactly these names', () => {
    expect(Object.keys(node).sort()).toMatchInlineSnapshot();
  });
});
