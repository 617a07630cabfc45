/**
 * `moderation backfill`: moderates the objects already in the bucket, rate-limited and resumable.
 * See cli/backfill.ts.
 */
import type { Command } from 'commander';
import { backfill, checkpointFileFor, type BackfillReport } from '../backfill.ts';
import { waitForIntakeDrain } from '../dlq.ts';
import { dataHome } from '../target.ts';
import { addTargetOptions, parseInteger, parsePositiveNumber, plural, withTarget, type TargetFlags } from '../flags.ts';
import { escapeControl } from '../output.ts';

interface BackfillFlags extends TargetFlags {
  prefix?: string;
  rate?: string;
  resume?: boolean;
  max?: string;
  dryRun?: boolean;
  inventory?: string;
  json?: boolean;
}

/**
 * The default rate: well under Rekognition's DetectModerationLabels quota (the lowest default
 * among Regions is 5 per second), so live uploads keep their headroom while a backfill runs.
 */
const DEFAULT_RATE = 2;

export function registerBackfill(program: Command): void {
  addTargetOptions(
    program
      .command('backfill')
      .description('moderate objects that were in the bucket before the pipeline: rate-limited, resumable, skips what is decided')
      .option('--prefix <prefix>', 'key prefix to walk (default: the uploads prefix)')
      .option('--inventory <manifest>', "walk an S3 Inventory report (CSV) instead of listing the bucket: its manifest.json, as s3://bucket/path/manifest.json or a local file")
      .option('--rate <n>', `objects per second sent to the pipeline (default ${DEFAULT_RATE}; keep it under your Rekognition quota)`)
      .option('--resume', 'continue after the last object an interrupted run handled')
      .option('--max <n>', 'stop after sending this many')
      .option('--dry-run', 'count what would be sent; send nothing')
      .option('--json', 'print the summary as JSON'),
  )
    .addHelpText(
      'after',
      `
Objects are walked in key order; an object version that already has a decision (or only FAILED
records: those wait in the dead-letter queue) is skipped. Each other object is sent to the intake queue
as the S3 notification the bucket would have sent, so the pipeline moderates it like an upload, and
sending it twice is still one job. Ctrl-C stops cleanly; the position is kept in the data directory
(--home) and --resume continues from it.

With --inventory the objects come from an S3 Inventory report of the uploads bucket (CSV, gzip; ORC
and Parquet reports are refused): the current version of each object under --prefix, in the report's
order. A local manifest's data files are read from beside it when they are there, else from the
report's destination bucket (docs/operating.md, "Backfill from an S3 Inventory").

Examples:
  moderation backfill --dry-run
  moderation backfill --rate 5 --stack my-moderation
  moderation backfill --resume --stack my-moderation
  moderation backfill --inventory s3://my-inventory/uploads/daily/2026-11-02T01-00Z/manifest.json --stack my-moderation`,
    )
    .action(async (flags: BackfillFlags) => {
      await backfillCommand(flags);
    });
}

async function backfillCommand(flags: BackfillFlags): Promise<void> {
  const rate = parsePositiveNumber(flags.rate ?? String(DEFAULT_RATE), '--rate', 10_000);
  const max = flags.max === undefined ? undefined : parseInteger(flags.max, '--max', { min: 1 });
  await withTarget(flags, async (target) => {
    const prefix = flags.prefix ?? target.names.uploadsPrefix;
    let interrupted = false;
    const onSignal = () => {
      interrupted = true;
      process.stderr.write('\nstopping after the current object…\n');
    };
    process.once('SIGINT', onSignal);
    const tty = !flags.json && Boolean(process.stderr.isTTY);
    const started = Date.now();
    let report: BackfillReport;
    try {
      report = await backfill(target, {
        prefix,
        rate,
        max,
        resume: flags.resume,
        dryRun: flags.dryRun,
        inventory: flags.inventory,
        checkpointFile: checkpointFileFor(dataHome(flags.home), target.names.uploadsBucket, prefix, flags.inventory),
        stopRequested: () => interrupted,
        onProgress: (p) => {
          if (!tty) return;
          const perSecond = p.enqueued / Math.max(0.001, (Date.now() - started) / 1000);
          const line = `backfill: ${p.listed} listed, ${p.alreadyDecided} already decided, ${p.enqueued} sent (${perSecond.toFixed(1)}/s) ${escapeControl(p.lastKey ?? '')}`;
          process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`);
        },
      });
    } finally {
      process.off('SIGINT', onSignal);
      if (tty) process.stderr.write('\r\x1b[2K');
    }
    let drained: boolean | undefined;
    if (target.kind === 'embedded' && report.enqueued > 0 && !report.dryRun) {
      if (!flags.json) process.stderr.write('moderating the sent objects in the embedded stack…\n');
      drained = await waitForIntakeDrain(target, 600_000);
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ ...report, ...(drained === undefined ? {} : { moderated: drained }) })}\n`);
      return;
    }
    process.stdout.write(summary(report));
  });
}

function summary(report: BackfillReport): string {
  const where = `s3://${report.bucket}/${report.prefix}${report.inventory ? ` (from the inventory ${escapeControl(report.inventory)})` : ''}`;
  const lines = [
    `${report.dryRun ? 'dry run: ' : ''}${where}${report.resumedAfter ? ` (resumed after ${escapeControl(report.resumedAfter)})` : ''}: ` +
      `${plural(report.listed, 'object')} listed, ${report.alreadyDecided} already decided, ${report.failed} failed (see \`moderation dlq list\`), ` +
      `${report.enqueued} ${report.dryRun ? 'would be sent' : 'sent to the pipeline'}`,
  ];
  if (report.notCurrent || report.gone) lines.push(`left out: ${report.notCurrent ?? 0} delete markers or older versions, ${report.gone ?? 0} objects deleted since the report`);
  if (!report.complete) lines.push(`stopped after ${escapeControl(report.lastKey ?? '(nothing)')}: continue with \`moderation backfill --resume${report.inventory ? ' --inventory <the same manifest>' : ''}\``);
  else if (report.enqueued > 0 && !report.dryRun) lines.push('follow the decisions with `moderation audit --since 1h`');
  lines.push('');
  return lines.join('\n');
}
