/**
 * `moderation quality [--since 30d]`: how often people agree with the automated decisions, per
 * status and per category, with counts and 95 % Wilson score intervals, from the blind answers to
 * quality samples and the outcomes of appeals (cli/quality.ts, functions/lib/quality.ts).
 */
import type { Command } from 'commander';
import { loadQuality, percent, type QualityData } from '../quality.ts';
import { addTargetOptions, parseWhen, plural, withTarget, type TargetFlags } from '../flags.ts';
import { renderTable, type Row } from '../output.ts';
import type { AgreementRow } from '../../functions/lib/quality.ts';

interface QualityFlags extends TargetFlags {
  since?: string;
  until?: string;
  json?: boolean;
}

export function registerQuality(program: Command): void {
  addTargetOptions(
    program
      .command('quality')
      .description('agreement of people with the automated decisions (blind samples and appeals), per status and category, with 95% confidence intervals')
      .option('--since <when>', 'samples of decisions made (and appeals filed) at or after: a date, a date-time or a duration ago', '30d')
      .option('--until <when>', 'at or before')
      .option('--json', 'print the report as JSON (with the blind-only figures and every observation)'),
  )
    .addHelpText(
      'after',
      `
Examples:
  moderation quality
  moderation quality --since 2026-11-01 --until 2026-11-30 --json

Observations: a blind answer to a quality sample (a share of APPROVED and REJECTED decisions, the
pipeline setting qualitySampleRate, default 1%, go to the review queue without their verdict), or the
outcome of an appeal of a rejection (one that differs is an override). Human decisions on images held
for review are not counted: there was no verdict to agree with. Appeals are not a random sample, so
the BLIND columns give the unbiased estimate. Intervals are Wilson score intervals at 95%.`,
    )
    .action(async (flags: QualityFlags) => {
      await qualityCommand(flags);
    });
}

async function qualityCommand(flags: QualityFlags): Promise<void> {
  const now = new Date();
  const since = parseWhen(flags.since ?? '30d', '--since', { now });
  const until = flags.until === undefined ? undefined : parseWhen(flags.until, '--until', { endOfDay: true, now });
  await withTarget(flags, async (target) => {
    const data = await loadQuality(target, { since, until });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
      return;
    }
    process.stdout.write(describeQuality(data));
  });
}

/** The report for a terminal: a summary line, then a table per status and one per category. */
export function describeQuality(data: QualityData): string {
  const window = `${data.since ? `since ${data.since}` : 'all time'}${data.until ? ` until ${data.until}` : ''}`;
  const blind = data.observations.filter((o) => o.source === 'blind').length;
  const appealed = data.observations.length - blind;
  const lines = [
    `Agreement with the automated decisions (${window}): ${plural(blind, 'blind answer')}, ${plural(appealed, 'appeal outcome')} (${plural(data.overall.overrides, 'override')}).`,
    `${plural(data.samples, 'quality sample')} in the window, ${data.unanswered} still unanswered; ${plural(data.appeals, 'appeal')}, ${data.openAppeals} still open.`,
    '',
  ];
  if (data.observations.length === 0) {
    lines.push('Nothing to measure yet: answer the blind samples in the review queue (moderation review list --kind sample, or the console).', '');
    return lines.join('\n');
  }
  const columns = (first: string) => [first, 'checked', 'agreed', 'rate', '95% ci', 'blind', 'blind rate', 'blind 95% ci', 'overrides'];
  lines.push(renderTable([data.overall, ...data.byStatus].map((row) => tableRow('status', row)), columns('status')), '');
  lines.push(renderTable(data.byCategory.map((row) => tableRow('category', row)), columns('category')), '');
  lines.push('Rate: agreed / checked (blind answers and appeal outcomes). Blind: the blind answers alone, a random sample. 95% CI: Wilson score interval.', '');
  return lines.join('\n');
}

function tableRow(first: string, row: AgreementRow): Row {
  return {
    [first]: row.name,
    checked: row.checked,
    agreed: row.agreed,
    rate: percent(row.rate),
    '95% ci': interval(row),
    blind: row.blind.checked,
    'blind rate': percent(row.blind.rate),
    'blind 95% ci': interval(row.blind),
    overrides: row.overrides,
  };
}

function interval(row: { ci?: { low: number; high: number } }): string {
  return row.ci ? `${percent(row.ci.low)}–${percent(row.ci.high)}` : '–';
}
