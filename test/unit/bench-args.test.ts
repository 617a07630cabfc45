import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headerHelp, usageOf } from '../../bench/args.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const bench = (script: string, ...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', `bench/${script}.ts`, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

describe('bench command lines', () => {
  it('takes the help from the header comment, without its margins, and the usage from it', () => {
    const source = "/**\n * `npm run bench:x`: what it measures.\n *\n * Usage: npm run bench:x -- [--n N]\n *   --n  how many\n *\n * More.\n */\nimport 'y';\n/** Not this one. */\n";
    const help = headerHelp(source);
    expect(help).toBe('`npm run bench:x`: what it measures.\n\nUsage: npm run bench:x -- [--n N]\n  --n  how many\n\nMore.');
    expect(usageOf(help)).toBe('Usage: npm run bench:x -- [--n N]\n  --n  how many');
    expect(usageOf('no usage here')).toBe('');
  });

  it('prints the script header for --help and exits 0', () => {
    const out = bench('function-memory', '--help');
    expect(out.status).toBe(0);
    expect(out.stdout).toContain('`npm run bench:function-memory`');
    expect(out.stdout).toContain('Usage: npm run bench:function-memory -- [--json]');
    expect(out.stdout).not.toMatch(/^\s*\*/m);
  });

  it('refuses an unknown flag in one line with the usage, exit code 2, no stack trace', () => {
    const out = bench('function-memory', '--jsn');
    expect(out.status).toBe(2);
    expect(out.stderr).toContain("Unknown option '--jsn'");
    expect(out.stderr).toContain('Usage: npm run bench:function-memory -- [--json]');
    expect(out.stderr).not.toContain('    at ');
  });
});
