/**
 * `moderation reconcile`: objects under the uploads prefix that have no decision, listed and (with
 * --enqueue) sent to the intake queue. See cli/reconcile.ts.
 */
import type { Command } from 'commander';
import { reconcile, type ReconcileReport } from '../reconcile.ts';
import { waitForIntakeDrain } from '../dlq.ts';
import { addTargetOptions, parseDuration, parseInteger, parsePositiveNumber, plural, withTarget, type TargetFlags } from '../flags.ts';
import { progressBar, renderTable, type Row } from '../output.ts';

interface ReconcileFlags extends TargetFlags {
  prefix?: string;
  minAge?: string;
  enqueue?: boolean;
  includeFailed?: boolean;
  max?: string;
  rate?: string;
  json?: boolean;
}

export function registerReconcile(program: Command): void {
  addTargetOptions(
    program
      .command('reconcile')
      .description('find uploaded objects that never got a decision (an outage, a lost notification) and re-enqueue them')
      .option('--prefix <prefix>', 'key prefix to check (default: the uploads prefix)')
      .option('--min-age <duration>', 'skip objects modified less than this long ago: still in the pipeline (default 5m)')
      .option('--enqueue', 'send each undecided object to the intake queue as an S3 ObjectCreated:Put notification')
      .option('--include-failed', 'also enqueue objects whose only records are FAILED (normally replayed from the DLQ)')
      .option('--max <n>', 'enqueue at most this many')
      .option('--rate <n>', 'messages per second when enqueueing (default 10)')
      .option('--json', 'print the report as JSON'),
  )
    .addHelpText(
      'after',
      `
An object is decided when the history (byImage index) holds a decision for its key with the same ETag.
"failed" objects have only FAILED records: their job should be in the dead-letter queue (moderation dlq
replay); --include-failed enqueues them too, e.g. when the DLQ's retention has passed.
Enqueueing is idempotent: the notification is derived from the object (ETag, LastModified, version),
so enqueueing the same object twice gives the same job, decided once.

Examples:
  moderation reconcile
  moderation reconcile --enqueue --rate 20
  moderation reconcile --min-age 0 --prefix uploads/alice/ --json`,
    )
    .action(async (flags: ReconcileFlags) => {
      await reconcileCommand(flags);
    });
}

async function reconcileCommand(flags: ReconcileFlags): Promise<void> {
  const minAgeMs = flags.minAge === undefined ? 5 * 60_000 : flags.minAge.trim() === '0' ? 0 : parseDuration(flags.minAge, '--min-age');
  const max = flags.max === undefined ? undefined : parseInteger(flags.max, '--max', { min: 0 });
  const rate = parsePositiveNumber(flags.rate ?? '10', '--rate', 10_000);
  await withTarget(flags, async (target) => {
    let progress: ReturnType<typeof progressBar> | undefined;
    const report = await reconcile(target, {
      prefix: flags.prefix,
      minAgeMs,
      enqueue: flags.enqueue,
      includeFailed: flags.includeFailed,
      max,
      rate,
      onProgress: flags.json
        ? undefined
        : (_checked, total) => {
            progress ??= progressBar(total, 'checking objects');
            progress.tick();
          },
    });
    (progress as ReturnType<typeof progressBar> | undefined)?.done();
    let drained: boolean | undefined;
    if (target.kind === 'embedded' && report.enqueued > 0) {
      if (!flags.json) process.stderr.write('moderating the enqueued objects in the embedded stack…\n');
      drained = await waitForIntakeDrain(target, 300_000);
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ ...report, ...(drained === undefined ? {} : { moderated: drained }) }, null, 2)}\n`);
      return;
    }
    process.stdout.write(describeReport(report, Boolean(flags.enqueue), minAgeMs));
    if (drained === false) process.stdout.write('the intake queue did not drain within 5 minutes; the rest is moderated at the next start\n');
  });
}

function describeReport(report: ReconcileReport, enqueue: boolean, minAgeMs: number): string {
  const lines: string[] = [];
  if (report.undecided.length) {
    const rows: Row[] = report.undecided.map((o) => ({
      key: o.key,
      state: o.state,
      'last modified': o.lastModified.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      size: o.size,
      ...(o.lastError ? { 'last error': o.lastError } : {}),
      ...(enqueue ? { enqueued: o.enqueued ? `yes (job ${o.jobId?.slice(0, 12)})` : 'no' } : {}),
    }));
    const columns = ['key', 'state', 'last modified', 'size', ...(report.undecided.some((o) => o.lastError) ? ['last error'] : []), ...(enqueue ? ['enqueued'] : [])];
    lines.push(renderTable(rows, columns), '');
  }
  const failed = report.undecided.filter((o) => o.state === 'failed').length;
  lines.push(
    `s3://${report.bucket}/${report.prefix}: ${plural(report.objects, 'object')}, ${report.decided} decided, ` +
      `${report.undecided.length - failed} undecided, ${failed} failed` +
      (report.inFlight ? `, ${report.inFlight} newer than ${Math.round(minAgeMs / 1000)}s (in flight, not checked)` : ''),
  );
  if (enqueue) lines.push(`${plural(report.enqueued, 'object')} sent to the intake queue`);
  else if (report.undecided.length) lines.push('re-run with --enqueue to send them to the intake queue');
  lines.push('');
  return lines.join('\n');
}
