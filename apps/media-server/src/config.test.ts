import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';

const load = (env: Record<string, string>, argv: string[] = []) => loadConfig(argv, env, '/srv');

describe('loadConfig', () => {
  it('starts on 127.0.0.1:8080 with local storage under ./data when nothing is set', () => {
    const config = load({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      dataDir: '/srv/data',
      storage: { kind: 'local', dir: '/srv/data/videos' },
      cacheBytes: 512 * 2 ** 20,
      cacheMaxFileBytes: 256 * 2 ** 20,
      sample: true,
    });
  });

  it('takes flags over environment variables', () => {
    const config = load({ PORT: '9000', HOST: '0.0.0.0' }, [
      '--port',
      '9001',
      '--host',
      '::1',
      '--no-sample',
    ]);
    expect(config).toMatchObject({ port: 9001, host: '::1', sample: false });
  });

  it('reads sizes with units', () => {
    expect(load({ CACHE_BYTES: '2GiB' }).cacheBytes).toBe(2 * 2 ** 30);
    expect(load({ CACHE_BYTES: '1.5 MiB' }).cacheBytes).toBe(1.5 * 2 ** 20);
    expect(load({ CACHE_BYTES: '1000kb' }).cacheBytes).toBe(1_000_000);
  });

  it('reports every problem at once, naming the value and the limit', () => {
    let message = '';
    try {
      load({ PORT: '70000', CACHE_BYTES: 'lots', LOG_LEVEL: 'loud', MAX_RANGES: '0' });
    } catch (error) {
      expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
      message = (error as Error).message;
    }
    expect(message).toContain('PORT="70000": expected an integer in 0..65535');
    expect(message).toContain('CACHE_BYTES="lots"');
    expect(message).toContain('LOG_LEVEL="loud"');
    expect(message).toContain('MAX_RANGES="0": expected an integer in 1..1000');
  });

  it('rejects unknown flags with the usage text', () => {
    expect(() => load({}, ['--prot', '1'])).toThrow(
      /Unknown option '--prot'[\s\S]*Usage: media-server/,
    );
  });

  it('turns on S3 storage with S3_BUCKET and demands credentials', () => {
    expect(() => load({ S3_BUCKET: 'media' })).toThrow(
      /S3_ACCESS_KEY_ID[\s\S]*S3_SECRET_ACCESS_KEY/,
    );
    const config = load({
      S3_BUCKET: 'media',
      S3_ENDPOINT: 'http://127.0.0.1:9000',
      AWS_ACCESS_KEY_ID: 'id',
      AWS_SECRET_ACCESS_KEY: 'secret',
      S3_PREFIX: 'tenant-a/',
    });
    expect(config.storage).toEqual({
      kind: 's3',
      bucket: 'media',
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      accessKeyId: 'id',
      secretAccessKey: 'secret',
      prefix: 'tenant-a/',
      forcePathStyle: true,
    });
  });

  it('rejects a bad bucket name, endpoint and prefix', () => {
    expect(() =>
      load({
        S3_BUCKET: 'Bad_Bucket',
        S3_ENDPOINT: 'ftp://x',
        S3_ACCESS_KEY_ID: 'a',
        S3_SECRET_ACCESS_KEY: 'b',
        S3_PREFIX: '../',
      }),
    ).toThrow(/S3_BUCKET="Bad_Bucket"[\s\S]*S3_ENDPOINT="ftp:\/\/x"[\s\S]*S3_PREFIX="..\/"/);
  });
});
