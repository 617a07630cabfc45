/** The cost tests' shared pieces: the deployed state machine definition, and `moderation cost` run with its output caught. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { vi } from 'vitest';
import type { AslDefinition } from '../../functions/lib/cost-model.ts';
import { registerCost } from '../../cli/commands/cost.ts';

export const definition = JSON.parse(readFileSync(new URL('../../statemachine/moderation.asl.json', import.meta.url), 'utf8')) as AslDefinition;

/** `moderation cost ...args` on a new program; what it wrote to stdout. */
export async function cost(args: string[]): Promise<string> {
  const out: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  const program = new Command('moderation').exitOverride();
  registerCost(program);
  await program.parseAsync(['node', 'moderation', 'cost', ...args]);
  vi.restoreAllMocks();
  return out.join('');
}
