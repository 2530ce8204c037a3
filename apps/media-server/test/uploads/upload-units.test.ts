import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { titleOf } from '../../src/uploads/finish-upload.ts';
import { uploadKeyCheck } from '../../src/uploads/upload-key.ts';

describe('titleOf', () => {
  it('prefers the title, then the file name without its extension, then the id', () => {
    expect(titleOf({ title: ' My  clip ', filename: 'x.mp4' }, 'id1')).toBe('My clip');
    expect(titleOf({ filename: 'C:\\videos\\Holiday 2024.mp4' }, 'id1')).toBe('Holiday 2024');
    expect(titleOf({ filename: null, title: '' }, 'id1')).toBe('Upload id1');
    expect(titleOf(undefined, 'id2')).toBe('Upload id2');
  });

  it('drops control characters and caps the length', () => {
    expect(titleOf({ title: 'a\u0000b\nc\u007f' }, 'x')).toBe('a b c');
    expect(titleOf({ title: 'x'.repeat(500) }, 'x')).toHaveLength(200);
  });
});

describe('uploadKeyCheck', () => {
  const check = uploadKeyCheck('0123456789abcdef-secret');

  it('accepts exactly the configured bearer token', () => {
    expect(check('Bearer 0123456789abcdef-secret')).toBe(true);
    expect(check('bearer 0123456789abcdef-secret')).toBe(true);
    expect(check('Bearer 0123456789abcdef-secreT')).toBe(false);
    expect(check('Bearer 0123456789abcdef-secret0')).toBe(false);
    expect(check('Basic 0123456789abcdef-secret')).toBe(false);
    expect(check('0123456789abcdef-secret')).toBe(false);
    expect(check(undefined)).toBe(false);
    expect(check('Bearer ')).toBe(false);
  });

  it('lets everything through without a key', () => {
    expect(uploadKeyCheck(undefined)(undefined)).toBe(true);
  });
});

describe('upload configuration', () => {
  it('reads UPLOAD_MAX_BYTES, UPLOAD_KEY and UPLOAD_EXPIRY_MS with their defaults', () => {
    const defaults = loadConfig([], {}, '/srv');
    expect(defaults.uploadMaxBytes).toBe(4 * 2 ** 30);
    expect(defaults.uploadKey).toBeUndefined();
    expect(defaults.uploadExpiryMs).toBe(86_400_000);
    const set = loadConfig(
      [],
      { UPLOAD_MAX_BYTES: '2GiB', UPLOAD_KEY: 'a-long-enough-key-123', UPLOAD_EXPIRY_MS: '60000' },
      '/srv',
    );
    expect(set).toMatchObject({
      uploadMaxBytes: 2 * 2 ** 30,
      uploadKey: 'a-long-enough-key-123',
      uploadExpiryMs: 60_000,
    });
  });

  it('reports every bad upload setting at once, without echoing the key', () => {
    let message = '';
    try {
      loadConfig(
        [],
        { UPLOAD_MAX_BYTES: 'lots', UPLOAD_KEY: 'short key', UPLOAD_EXPIRY_MS: '5' },
        '/srv',
      );
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('UPLOAD_MAX_BYTES="lots"');
    expect(message).toMatch(/UPLOAD_KEY: expected 16 to 1024 visible ASCII/);
    expect(message).not.toContain('short key');
    expect(message).toContain('UPLOAD_EXPIRY_MS="5"');
  });
});
