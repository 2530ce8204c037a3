import { describe, expect, it } from 'vitest';
import { hasCommand, missingPackages } from './system';

describe('missingPackages', () => {
  it('keeps the packages whose command is missing, once each', () => {
    const present = new Set(['nginx']);
    const has = (command: string) => present.has(command);
    expect(missingPackages(['nginx', 'wrk', 'ffmpeg', 'wrk'], has)).toEqual(['wrk', 'ffmpeg']);
  });

  it('checks the command a package provides', () => {
    const asked: string[] = [];
    missingPackages(['nginx-light'], (c) => {
      asked.push(c);
      return true;
    });
    expect(asked).toEqual(['nginx']);
  });

  it('finds real commands on PATH', () => {
    expect(hasCommand('sh')).toBe(true);
    expect(hasCommand('no-such-command-for-bench')).toBe(false);
  });
});
