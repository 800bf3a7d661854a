import { cpus, totalmem, platform, release } from 'node:os';

/** The machine a run was measured on. */
export interface MachineInfo {
  /** CPU model string, e.g. `AMD EPYC 7B13`. */
  cpu: string;
  /** Logical cores. */
  cores: number;
  /** Node.js version, e.g. `v20.20.2`. */
  node: string;
  /** OS and kernel, e.g. `linux 6.1.0`. */
  os: string;
  /** Total memory in GiB. */
  memoryGiB: number;
}

/** Reads the machine description from `node:os`. */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    node: process.version,
    os: `${platform()} ${release()}`,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
  };
}

/** One line: `CPU model, N cores, Node vX, OS, N GiB`. */
export function formatMachine(m: MachineInfo): string {
  return `${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.os}, ${m.memoryGiB} GiB`;
}
