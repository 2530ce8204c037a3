import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Checksum } from './checksum';
import { InvalidArgumentError } from './errors';

const data = new TextEncoder().encode('The quick brown fox jumps over the lazy dog');

describe('Checksum', () => {
  it.each(['md5', 'sha1', 'sha256'] as const)(
    '%s matches node:crypto, fed in pieces',
    async (alg) => {
      const sum = await Checksum.create(alg);
      sum.update(data.subarray(0, 7)).update(data.subarray(7));
      expect(sum.base64()).toBe(createHash(alg).update(data).digest('base64'));
      expect(sum.hex()).toBe(createHash(alg).update(data).digest('hex'));
    },
  );

  it('computes CRC32 and CRC32C with their published check values', async () => {
    const check = new TextEncoder().encode('123456789');
    expect((await Checksum.of('crc32', check)).hex()).toBe('cbf43926');
    expect((await Checksum.of('crc32c', check)).hex()).toBe('e3069283');
    // GCS documents the CRC32C of the empty object as AAAAAA==.
    expect((await Checksum.of('crc32c', new Uint8Array(0))).base64()).toBe('AAAAAA==');
  });

  it('refuses updates after the digest and unknown algorithms', async () => {
    const sum = await Checksum.of('md5', data);
    sum.base64();
    expect(() => sum.update(data)).toThrow(InvalidArgumentError);
    await expect(Checksum.create('sha512' as never)).rejects.toThrow(/sha512/);
  });
});
