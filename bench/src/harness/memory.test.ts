import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { childExecArgv } from './child';
import { parseVmHwm, peakRssBytes } from './memory';

describe('parseVmHwm', () => {
  it('reads the peak RSS line of /proc/<pid>/status, in bytes', () => {
    const status = 'Name:\tnode\nVmPeak:\t 1234 kB\nVmHWM:\t   40412 kB\nVmRSS:\t 39000 kB\n';
    expect(parseVmHwm(status)).toBe(40412 * 1024);
    expect(parseVmHwm('Name:\tnode\n')).toBeNull();
  });
});

describe('peakRssBytes', () => {
  it('is at least the RSS right now', () => {
    const now = process.memoryUsage.rss();
    expect(peakRssBytes()).toBeGreaterThanOrEqual(now * 0.99);
  });

  it.runIf(process.platform === 'linux')(
    "is a child's own peak, not its large parent's RSS at the fork",
    () => {
      // The parent holds 256 MiB of touched memory while the child starts.
      const held = Buffer.alloc(256 * 2 ** 20, 1);
      const memory = fileURLToPath(new URL('./memory.ts', import.meta.url));
      const script = `import(${JSON.stringify(memory)}).then((m) => console.log(JSON.stringify({ peak: m.peakRssBytes(), maxRss: process.resourceUsage().maxRSS * 1024 })))`;
      const child = spawnSync(process.execPath, [...childExecArgv(), '-e', script], {
        encoding: 'utf8',
      });
      expect(child.status, child.stderr).toBe(0);
      const { peak, maxRss } = JSON.parse(child.stdout) as { peak: number; maxRss: number };
      expect(held[0]).toBe(1);
      // The child itself is well under 256 MiB; Linux's ru_maxrss carries the parent's size over.
      expect(peak).toBeLessThan(200 * 2 ** 20);
      expect(maxRss).toBeGreaterThan(256 * 2 ** 20);
    },
  );
});
