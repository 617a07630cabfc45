/**
 * Flag parsing and the target options shared by the operator and auditor commands (audit, review,
 * dlq, reconcile): every bad value is a UsageError that names the flag and what it expects.
 */
import type { Command } from 'commander';
import { resolveTarget, type Target } from './target.ts';
import { UsageError } from './output.ts';
import { DECISION_STATUSES, type DecisionStatus } from '../functions/lib/types.ts';
import { AnalysisListError, formatAnalysisList, parseAnalysisList } from '../functions/lib/analysis-policy.ts';

export interface TargetFlags {
  stack?: string;
  home?: string;
}

/** --stack and --home, on every command that talks to a stack. */
export function addTargetOptions(command: Command): Command {
  return command
    .option('--stack <name>', 'a deployed CloudFormation stack (default $MODERATION_STACK; unset: the local stack)')
    .option('--home <dir>', 'local data directory (default $MODERATION_HOME or ./.moderation)');
}

/** Runs `fn` against the target the flags name, and always closes it. */
export async function withTarget<T>(flags: TargetFlags, fn: (target: Target) => Promise<T>): Promise<T> {
  const target = await resolveTarget({ stack: flags.stack, home: flags.home });
  try {
    return await fn(target);
  } finally {
    await target.close();
  }
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** '90s', '15m', '24h', '7d', '2w' → milliseconds. */
export function parseDuration(value: string, flag: string): number {
  const match = DURATION.exec(value.trim());
  if (!match) throw new UsageError(`${flag} must be a duration such as 30s, 15m, 24h or 7d, got "${value}"`);
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

/**
 * A point in time for --since / --until: an ISO 8601 date (2026-11-01) or date-time
 * (2026-11-01T12:00:00Z; without a zone it is UTC), or a duration ago (7d, 24h, 30m). A date alone
 * given to --until means the end of that day, so `--since 2026-11-01 --until 2026-11-30` is all of
 * November (the last millisecond of the day is returned).
 */
export function parseWhen(value: string, flag: string, options: { endOfDay?: boolean; now?: Date } = {}): Date {
  const text = value.trim();
  const now = options.now ?? new Date();
  if (DURATION.test(text)) return new Date(now.getTime() - parseDuration(text, flag));
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const dateTime = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(text);
  if (!dateOnly && !dateTime) {
    throw new UsageError(`${flag} must be a date (2026-11-01), a date-time (2026-11-01T12:00:00Z) or a duration ago (7d, 24h), got "${value}"`);
  }
  // Date would roll 2026-02-31 over to March; an auditor's typo must not silently shift the window.
  const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) {
    throw new UsageError(`${flag}: "${value}" is not a valid date`);
  }
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(text);
  const iso = dateOnly ? `${text}T00:00:00.000Z` : `${text.replace(' ', 'T')}${zoned ? '' : 'Z'}`;
  const parsed = new Date(iso);
  if (Number.isNaN(parsed.getTime())) throw new UsageError(`${flag}: "${value}" is not a valid date-time`);
  if (dateOnly && options.endOfDay) return new Date(parsed.getTime() + 86_400_000 - 1);
  return parsed;
}

/** An integer flag within bounds (negative, fractional and non-numeric values are refused). */
export function parseInteger(value: string, flag: string, bounds: { min?: number; max?: number } = {}): number {
  const min = bounds.min ?? 0;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  const text = value.trim().replace(/_/g, '');
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${flag} must be a whole number, got "${value}"`);
  const number = Number(text);
  if (number < min || number > max) {
    throw new UsageError(`${flag} must be ${max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`}, got ${value}`);
  }
  return number;
}

/** A positive number (e.g. a rate per second). */
export function parsePositiveNumber(value: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const number = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0 || number > max) {
    throw new UsageError(`${flag} must be a number greater than 0${max < Number.MAX_SAFE_INTEGER ? ` and at most ${max}` : ''}, got "${value}"`);
  }
  return number;
}

/** `--analyze labels,faces,text`: the canonical list (labels,faces,text order), or undefined for none. */
export function analyzeFlag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    const list = formatAnalysisList(parseAnalysisList(value, '--analyze'));
    return list === 'none' ? undefined : list;
  } catch (err) {
    if (err instanceof AnalysisListError) throw new UsageError(err.message);
    throw err;
  }
}

/** A fraction from 0 to 1; '5%' is accepted as 0.05. */
export function parseFraction(value: string, flag: string): number {
  const text = value.trim();
  const number = text.endsWith('%') ? Number(text.slice(0, -1)) / 100 : Number(text);
  if (text === '' || !Number.isFinite(number) || number < 0 || number > 1) {
    throw new UsageError(`${flag} must be a fraction from 0 to 1 (or a percentage such as 5%), got "${value}"`);
  }
  return number;
}

/** One or more statuses, comma separated, any letter case ('rejected,review'). */
export function parseStatuses(value: string, flag = '--status'): DecisionStatus[] {
  const statuses = value
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  if (statuses.length === 0) throw new UsageError(`${flag} needs a status: ${DECISION_STATUSES.join(', ')}`);
  for (const status of statuses) {
    if (!(DECISION_STATUSES as readonly string[]).includes(status)) {
      throw new UsageError(`${flag}: unknown status "${status}" (one of ${DECISION_STATUSES.join(', ')})`);
    }
  }
  return [...new Set(statuses)] as DecisionStatus[];
}

/** A choice among fixed values, any letter case. */
export function parseChoice<T extends string>(value: string, flag: string, choices: readonly T[]): T {
  const found = choices.find((choice) => choice.toLowerCase() === value.trim().toLowerCase());
  if (!found) throw new UsageError(`${flag} must be one of ${choices.join(', ')}, got "${value}"`);
  return found;
}

export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

/** Waits so that at most `perSecond` calls of `next()` pass per second (no wait when unset). */
export function rateLimiter(perSecond?: number): () => Promise<void> {
  if (!perSecond) return async () => {};
  const interval = 1000 / perSecond;
  let nextAt = 0;
  return async () => {
    const now = Date.now();
    const at = Math.max(now, nextAt);
    nextAt = at + interval;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  };
}
