/** The machine line every bench prints first: cores and their model, memory, Node. */
import { cpus, totalmem } from 'node:os';

export function machineLine(): string {
  return `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}
