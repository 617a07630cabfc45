/**
 * CPU time of this process, and of its main thread where the system tells (Linux:
 * /proc/self/task/<pid>/schedstat), for the benches. CPU time is what a busy, shared machine
 * distorts least: wall-clock figures move with other processes, CPU time per unit of work much less.
 */
import { readFileSync } from 'node:fs';

export interface CpuSnapshot {
  /** All threads of the process (user + system), ms. */
  process: number;
  /** The main thread alone, ms; undefined where per-thread CPU time cannot be read. */
  main?: number;
}

export function cpuSnapshot(): CpuSnapshot {
  const { user, system } = process.cpuUsage();
  return { process: (user + system) / 1000, ...(mainThreadMs() !== undefined ? { main: mainThreadMs() } : {}) };
}

/** CPU time between two snapshots. */
export function cpuSince(start: CpuSnapshot, end: CpuSnapshot = cpuSnapshot()): CpuSnapshot {
  return {
    process: end.process - start.process,
    ...(start.main !== undefined && end.main !== undefined ? { main: end.main - start.main } : {}),
  };
}

function mainThreadMs(): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return undefined;
  }
}
