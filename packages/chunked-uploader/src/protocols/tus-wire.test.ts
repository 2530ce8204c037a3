import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../lib/errors';
import type { JsonValue } from '../lib/types';
import { parseState } from './tus-state';
import {
  checksumHeader,
  decodeMetadata,
  encodeMetadata,
  parseExpires,
  parseList,
} from './tus-wire';

describe('tus wire helpers, checked against the examples in the tus 1.0 text', () => {
  it('encodes and decodes Upload-Metadata as the spec example shows', () => {
    const header = 'filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential';
    expect(decodeMetadata(header)).toEqual({
      filename: 'world_domination_plan.pdf',
      is_confidential: '',
    });
    expect(encodeMetadata({ filename: 'world_domination_plan.pdf', is_confidential: '' })).toBe(
      header,
    );
    expect(decodeMetadata(encodeMetadata({ title: 'été ✓ 日本' }) ?? null)).toEqual({
      title: 'été ✓ 日本',
    });
    expect(encodeMetadata({})).toBeUndefined();
  });

  it('refuses metadata keys the spec forbids', () => {
    for (const key of ['', 'a b', 'a,b', 'clé']) {
      expect(() => encodeMetadata({ [key]: 'x' })).toThrow(InvalidArgumentError);
    }
  });

  it('computes Upload-Checksum as the spec example shows', async () => {
    const body = new TextEncoder().encode('hello world');
    expect(await checksumHeader('sha1', body)).toBe('sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=');
    expect(await checksumHeader(undefined, body)).toBeUndefined();
  });

  it('parses Upload-Expires and comma lists', () => {
    expect(parseExpires('Wed, 25 Jun 2014 16:00:00 GMT')?.toISOString()).toBe(
      '2014-06-25T16:00:00.000Z',
    );
    expect(parseExpires('soon')).toBeUndefined();
    expect(parseExpires(null)).toBeUndefined();
    expect(parseList('1.0.0,0.2.2, 0.2.1')).toEqual(['1.0.0', '0.2.2', '0.2.1']);
    expect(parseList(null)).toEqual([]);
  });

  it('reads back persisted state, a bare URL, and nothing else', () => {
    expect(parseState('https://tus.example/files/abc')).toEqual({
      v: 1,
      mode: 'core',
      url: 'https://tus.example/files/abc',
      expires: null,
    });
    const concat: JsonValue = {
      v: 1,
      mode: 'concatenation',
      parts: [{ index: 0, url: 'https://tus.example/files/a', size: 5 }],
      final: null,
      expires: '2030-01-01T00:00:00.000Z',
    };
    expect(parseState(concat)).toEqual(concat);
    expect(
      parseState({ ...concat, parts: [{ index: -1, url: 'https://x/a', size: 5 }] }),
    ).toBeUndefined();
    expect(parseState({ v: 1, mode: 'other' })).toBeUndefined();
    expect(parseState([])).toBeUndefined();
  });
});
