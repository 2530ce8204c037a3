import { arch, cpus, platform, totalmem } from 'node:os';
import type { MachineInfo } from './types';

/** The machine, for the report header: results only compare within one machine. */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    platform: platform(),
    arch: arch(),
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    totalMemoryBytes: totalmem(),
    node: process.version,
    v8: process.versions.v8,
  };
}
