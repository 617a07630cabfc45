/**
 * The commands' surface: --help on every command and subcommand, --stack/--home where a stack is
 * used, and a clear UsageError for bad flags before anything is started. Then the real binary for
 * exit codes and output.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Command, CommanderError } from 'commander';
import { registerAudit } from '../../cli/commands/audit.ts';
import { registerReview } from '../../cli/commands/review.ts';
import { registerDlq } from '../../cli/commands/dlq.ts';
import { registerReconcile } from '../../cli/commands/reconcile.ts';
import { registerCost } from '../../cli/commands/cost.ts';
import { UsageError } from '../../cli/output.ts';
import { parseDuration, parseFraction, parseInteger, parseStatuses, parseWhen } from '../../cli/flags.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');

function program(): { program: Command; out: string[] } {
  const out: string[] = [];
  const p = new Command('moderation').exitOverride().configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => out.push(s) });
  registerAudit(p);
  registerReview(p);
  registerDlq(p);
  registerReconcile(p);
  registerCost(p);
  return { program: p, out };
}

async function parse(args: string[]): Promise<{ error?: unknown; out: string }> {
  const { program: p, out } = program();
  try {
    await p.parseAsync(['node', 'moderation', ...args]);
    return { out: out.join('') };
  } catch (error) {
    return { error, out: out.join('') };
  }
}

const STACK_COMMANDS = [
  ['audit'],
  ['audit', 'export'],
  ['review', 'list'],
  ['review', 'show'],
  ['review', 'approve'],
  ['review', 'reject'],
  ['dlq', 'list'],
  ['dlq', 'show'],
  ['dlq', 'replay'],
  ['reconcile'],
];

describe('command line surface', () => {
  it.each([...STACK_COMMANDS, ['review'], ['dlq'], ['cost']])('%s %s --help', async (...path) => {
    const { error, out } = await parse([...path.filter(Boolean), '--help']);
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).code).toBe('commander.helpDisplayed');
    expect(out).toMatch(/^Usage: moderation /);
    if (STACK_COMMANDS.some((c) => c.join(' ') === path.join(' '))) {
      expect(out).toContain('--stack <name>');
      expect(out).toContain('--home <dir>');
    }
  });

  it.each([
    [['audit', '--status', 'DENIED'], /unknown status "DENIED"/],
    [['audit', '--since', 'last tuesday'], /--since must be a date/],
    [['audit', '--until', '2026-13-01'], /not a valid date/],
    [['audit', '--limit', '-3'], /--limit must be a whole number|--limit must be from 1/],
    [['audit', '--format', 'xml'], /--format must be one of table, json, csv/],
    [['audit', '--order', 'random'], /--order must be one of newest, oldest/],
    [['audit', 'export', 'out.xml', '--format', 'xml'], /--format must be one of csv, json, jsonl/],
    [['review', 'list', '--limit', '0'], /--limit must be at least 1/],
    [['review', 'reject', 'abcdef12'], /needs --reason/],
    [['review', 'approve', 'not-hex'], /40 hexadecimal characters/],
    [['review', 'approve', 'abcdef12', '--reviewer', 'a b'], /--reviewer must be/],
    [['dlq', 'list', '--max', '0'], /--max must be at least 1/],
    [['dlq', 'replay', '--max', '-1'], /--max must be a whole number|--max must be at least 0/],
    [['dlq', 'replay', '--rate', '0'], /--rate must be a number greater than 0/],
    [['dlq', 'replay', '--filter', 'error:'], /needs a value/],
    [['reconcile', '--min-age', '5 minutes'], /--min-age must be a duration/],
    [['reconcile', '--rate', 'fast'], /--rate must be a number/],
    [['cost', '--images', '1000', '--borderline-rate', '1.5'], /--borderline-rate must be a fraction/],
    [['cost', '--images', '-5', '--borderline-rate', '0.1'], /--images must be a whole number|--images must be from 0/],
    [['cost', '--images', '1000', '--borderline-rate', '0.1', '--workflow', 'fast'], /--workflow must be one of express, standard/],
    [['cost', '--images', '1000', '--borderline-rate', '0.1', '--review-model', 'acme.vision-9'], /no list price for Bedrock model/],
  ])('%j is refused: %s', async (args, message) => {
    const { error } = await parse(args as string[]);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message as RegExp);
  });

  it('cost without --images is a usage error from commander', async () => {
    const { error, out } = await parse(['cost', '--borderline-rate', '0.1']);
    expect((error as CommanderError).code).toBe('commander.missingMandatoryOptionValue');
    expect(out).toMatch(/--images/);
  });

  it('parses the flag values auditors and operators type', () => {
    const now = new Date('2026-11-25T12:00:00Z');
    expect(parseWhen('7d', '--since', { now }).toISOString()).toBe('2026-11-18T12:00:00.000Z');
    expect(parseWhen('2026-11-01T08:30', '--since').toISOString()).toBe('2026-11-01T08:30:00.000Z');
    expect(parseWhen('2026-11-01T08:30:00+02:00', '--since').toISOString()).toBe('2026-11-01T06:30:00.000Z');
    expect(parseStatuses('rejected, review')).toEqual(['REJECTED', 'REVIEW']);
    expect(parseFraction('5%', '--r')).toBeCloseTo(0.05);
    expect(parseInteger('1_000_000', '--images')).toBe(1_000_000);
    expect(parseDuration('90s', '--min-age')).toBe(90_000);
    expect(() => parseInteger('2.5', '--max')).toThrow(/whole number/);
  });

  it('the binary: cost --json, and a usage error exits 1 with the message', async () => {
    const { stdout } = await run(process.execPath, ['bin/moderation.js', 'cost', '--images', '1000000', '--borderline-rate', '0.05', '--json'], { cwd: ROOT });
    const estimate = JSON.parse(stdout) as { monthlyUsd: number; per1000Usd: number; pricesAsOf: string };
    expect(estimate.pricesAsOf).toBe('2026-11-25');
    expect(estimate.per1000Usd).toBeCloseTo(estimate.monthlyUsd / 1000, 9);

    const failed = await run(process.execPath, ['bin/moderation.js', 'audit', '--status', 'nope'], { cwd: ROOT }).catch((err: { code: number; stderr: string }) => err);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toBe('error: --status: unknown status "NOPE" (one of APPROVED, REJECTED, REVIEW, UNUSABLE, FAILED)\n');
  });

  it('the binary: a data directory in use by another process is one line, not a stack trace', async () => {
    const home = mkdtempSync(join(tmpdir(), 'moderation-in-use-'));
    try {
      // The lock a running `moderation serve` holds, with a live process id (this test's parent).
      mkdirSync(home, { recursive: true });
      writeFileSync(join(home, 'dynamodb.lock'), `${process.ppid}\n`);
      const failed = await run(process.execPath, ['bin/moderation.js', 'audit', '--home', home], { cwd: ROOT }).catch((err: { code: number; stderr: string }) => err);
      expect(failed).toMatchObject({ code: 1 });
      const stderr = (failed as { stderr: string }).stderr;
      expect(stderr).toMatch(/^error: .*in use by process \d+/);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).not.toMatch(/\bat .*\.ts:\d+/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
