/**
 * `moderation dlq list|show|replay`: the dead-letter queue's messages with their error and original
 * job, and replaying them into the intake queue (idempotent, rate-limited, dry-run). See cli/dlq.ts.
 */
import type { Command } from 'commander';
import {
  isEmptyFilter,
  jobsNote,
  listDlq,
  parseDlqFilter,
  queueDepth,
  replayDlq,
  showDlqMessage,
  waitForIntakeDrain,
  type DlqMessage,
  type ReplayReport,
} from '../dlq.ts';
import { jobRecords } from '../human-review.ts';
import { shorten } from '../audit.ts';
import { addTargetOptions, parseInteger, parsePositiveNumber, plural, withTarget, type TargetFlags } from '../flags.ts';
import { escapeLines, renderTable, type Row } from '../output.ts';
import type { Target } from '../target.ts';

interface ListFlags extends TargetFlags {
  max?: string;
  filter?: string[];
  json?: boolean;
}

interface ReplayFlags extends TargetFlags {
  dryRun?: boolean;
  max?: string;
  rate?: string;
  filter?: string[];
  includeMalformed?: boolean;
  wait?: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

const FILTER_HELP = 'key:<prefix>, error:<name>, or a bare value matching either (repeatable: all must match)';

export function registerDlq(program: Command): void {
  const dlq = program
    .command('dlq')
    .description("the dead-letter queue: list and inspect failed jobs, replay them into the intake queue")
    .addHelpText(
      'after',
      `
Examples:
  moderation dlq list
  moderation dlq show <messageId | jobId | key>
  moderation dlq replay --dry-run                       what would move, and which jobs are already decided
  moderation dlq replay --max 100 --rate 10             move 100 messages, 10 per second
  moderation dlq replay --filter error:ServiceUnavailable
  moderation dlq replay --filter key:uploads/alice/
  moderation dlq replay                                 everything (one StartMessageMoveTask)

Replay is idempotent: a job that already has a decision is not decided again (the workflow only
re-applies the stored decision), so a message replayed twice is decided once.
Locally, the queues live in the stack's memory and are saved to <home>/sqs at a graceful stop: run
\`moderation serve\` in another terminal to keep one stack (and stable message ids) across commands.`,
    );

  addTargetOptions(
    dlq
      .command('list')
      .description('the messages in the dead-letter queue: error, job, object (nothing is consumed)')
      .option('--max <n>', 'list at most this many')
      .option('--filter <filter>', FILTER_HELP, collect)
      .option('--json', 'print a JSON array'),
  ).action(async (flags: ListFlags) => {
    await listCommand(flags);
  });

  addTargetOptions(
    dlq
      .command('show')
      .description('one message: its body, error with cause, job, and the job\'s records in the history')
      .argument('<id>', 'message id, job id (6+ leading characters) or object key')
      .option('--json', 'print the message as JSON'),
  ).action(async (id: string, flags: ListFlags) => {
    await showCommand(id, flags);
  });

  addTargetOptions(
    dlq
      .command('replay')
      .description('send dead-lettered messages back to the intake queue (idempotent)')
      .option('--dry-run', 'list what would move; change nothing')
      .option('--max <n>', 'move at most this many messages')
      .option('--rate <n>', 'messages per second (default 10)')
      .option('--filter <filter>', FILTER_HELP, collect)
      .option('--include-malformed', 'also move bodies the ingest handler could not read (they are parked again unless it now can)')
      .option('--no-wait', 'full redrive: start the move task and return without waiting for it')
      .option('--json', 'print the report as JSON'),
  )
    .addHelpText(
      'after',
      '\nWithout --filter, --max or --include-malformed the whole queue moves with one SQS StartMessageMoveTask;\notherwise each chosen message is sent to the intake queue, then deleted from the dead-letter queue.',
    )
    .action(async (flags: ReplayFlags) => {
      await replayCommand(flags);
    });
}

function localNote(target: Target): void {
  if (target.kind === 'embedded') {
    process.stderr.write(
      `note: ${target.description}: its queues were saved at the last stop and restored now (message ids change at each start). Run \`moderation serve\` in another terminal to keep one stack live between commands.\n`,
    );
  }
}

async function listCommand(flags: ListFlags): Promise<void> {
  const max = flags.max === undefined ? undefined : parseInteger(flags.max, '--max', { min: 1 });
  const filter = parseDlqFilter(flags.filter ?? []);
  await withTarget(flags, async (target) => {
    if (!flags.json) localNote(target);
    const messages = await listDlq(target, { max, filter: isEmptyFilter(filter) ? undefined : filter });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(messages.map(({ body: _body, ...rest }) => rest), null, 2)}\n`);
      return;
    }
    const depth = await queueDepth(target, target.names.deadLetterQueueUrl);
    if (messages.length === 0) {
      process.stdout.write(`the dead-letter queue is empty${depth.inFlight ? ` (${depth.inFlight} in flight: being handled by someone else)` : ''}\n`);
      return;
    }
    const rows: Row[] = messages.map((m) => ({
      message: m.messageId.slice(0, 8),
      'failed at': m.failedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      kind: m.kind,
      error: m.errorName,
      key: m.jobs.map((j) => j.key).join(', ') || '-',
      job: m.jobs.map((j) => j.jobId.slice(0, 12)).join(', ') || '-',
      detail: shorten(m.errorMessage, 60),
    }));
    process.stdout.write(`${renderTable(rows, ['message', 'failed at', 'kind', 'error', 'key', 'job', 'detail'])}\n`);
    const byError = new Map<string, number>();
    for (const m of messages) byError.set(m.errorName, (byError.get(m.errorName) ?? 0) + 1);
    process.stdout.write(
      `\n${plural(messages.length, 'message')} (${[...byError].map(([e, n]) => `${n} ${e}`).join(', ')}); queue: ${depth.visible} visible, ${depth.inFlight} in flight\n`,
    );
  });
}

async function showCommand(id: string, flags: ListFlags): Promise<void> {
  await withTarget(flags, async (target) => {
    if (!flags.json) localNote(target);
    const message = await showDlqMessage(target, id);
    const history = (await Promise.all(message.jobs.map((job) => jobRecords(target, job.jobId)))).flat();
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ ...message, body: safeParse(message.body), history }, null, 2)}\n`);
      return;
    }
    process.stdout.write(escapeLines(describeMessage(message, history)));
  });
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function describeMessage(message: DlqMessage, history: Awaited<ReturnType<typeof jobRecords>>): string {
  const lines = [
    `message    ${message.messageId}`,
    `kind       ${message.kind}`,
    `error      ${message.errorName}: ${message.errorMessage}`,
    `failed at  ${message.failedAt}`,
    ...(message.executionId ? [`execution  ${message.executionId}`] : []),
    `sent at    ${message.sentAt}, received ${plural(message.receiveCount, 'time')}${message.sourceQueueArn ? `, moved by SQS from ${message.sourceQueueArn}` : ''}`,
  ];
  for (const job of message.jobs) {
    lines.push(`job        ${job.jobId}  s3://${job.bucket}/${job.key}${job.versionId ? ` version ${job.versionId}` : ''}${job.eTag ? ` etag ${job.eTag}` : ''}`);
  }
  if (message.error?.Cause) lines.push('', 'cause:', indent(prettyCause(message.error.Cause)));
  if (Object.keys(message.attributes).length) {
    lines.push('', 'message attributes:', ...Object.entries(message.attributes).map(([k, v]) => `  ${k} = ${shorten(v, 200)}`));
  }
  lines.push('', 'body:', indent(prettyBody(message.body)));
  lines.push('', history.length ? 'history of the job:' : 'history of the job: no records');
  for (const record of history) lines.push(`  ${record.decidedAt}  ${record.status.padEnd(8)} ${record.decidedBy}  ${shorten(record.reason ?? '', 90)}`);
  lines.push('', jobsNote(message, history.some((r) => r.kind !== 'failure')), '');
  return lines.join('\n');
}

function prettyCause(cause: string): string {
  const parsed = safeParse(cause) as { errorType?: string; errorMessage?: string; trace?: string[] } | string;
  if (parsed && typeof parsed === 'object' && parsed.errorMessage) {
    return [`${parsed.errorType ?? 'Error'}: ${parsed.errorMessage}`, ...(parsed.trace ?? []).slice(0, 8).map((t) => `    ${t}`)].join('\n');
  }
  return cause;
}

function prettyBody(body: string): string {
  const parsed = safeParse(body);
  return typeof parsed === 'string' ? body : JSON.stringify(parsed, null, 2);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

async function replayCommand(flags: ReplayFlags): Promise<void> {
  const max = flags.max === undefined ? undefined : parseInteger(flags.max, '--max', { min: 0 });
  const rate = parsePositiveNumber(flags.rate ?? '10', '--rate', 10_000);
  const filter = parseDlqFilter(flags.filter ?? []);
  await withTarget(flags, async (target) => {
    if (!flags.json) localNote(target);
    const report = await replayDlq(target, {
      dryRun: flags.dryRun,
      max,
      rate,
      filter,
      includeMalformed: flags.includeMalformed,
      wait: flags.wait,
    });
    // The embedded stack stops when this command ends: let it moderate what was just moved first.
    let drained: boolean | undefined;
    if (target.kind === 'embedded' && !report.dryRun && report.moved > 0) {
      if (!flags.json) process.stderr.write('moderating the replayed jobs in the embedded stack…\n');
      drained = await waitForIntakeDrain(target, 300_000);
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ ...report, ...(drained === undefined ? {} : { moderated: drained }) }, null, 2)}\n`);
      return;
    }
    process.stdout.write(describeReport(report));
    if (drained === false) process.stdout.write('the intake queue did not drain within 5 minutes; the rest is moderated at the next start\n');
  });
}

function describeReport(report: ReplayReport): string {
  const lines: string[] = [];
  if (report.mode === 'move-task') {
    lines.push(
      `full redrive with StartMessageMoveTask: ${report.task?.status ?? 'started'}, ${plural(report.moved, 'message')} moved to the intake queue` +
        (report.task?.failureReason ? ` (failure: ${report.task.failureReason})` : ''),
    );
    if (report.task?.status === 'RUNNING') lines.push(`task handle ${report.task.handle}: follow it with \`moderation dlq list\` or the SQS console`);
  } else {
    if (report.items.length) {
      const rows: Row[] = report.items.map((item) => ({
        message: item.messageId.slice(0, 8),
        kind: item.kind,
        error: item.errorName,
        key: item.keys.join(', ') || '-',
        job: item.jobIds.map((id) => id.slice(0, 12)).join(', ') || '-',
        'already decided': item.decided?.map((d) => d.split(' ')[1]).join(', ') ?? '-',
      }));
      lines.push(renderTable(rows, ['message', 'kind', 'error', 'key', 'job', 'already decided']), '');
    }
    const verb = report.dryRun ? 'would move' : 'moved';
    lines.push(`${report.dryRun ? 'dry run: ' : ''}${plural(report.moved, 'message')} ${verb} to the intake queue`);
    const reasons = new Map<string, number>();
    for (const skipped of report.skipped) reasons.set(skipped.note ?? 'skipped', (reasons.get(skipped.note ?? 'skipped') ?? 0) + 1);
    for (const [reason, count] of reasons) lines.push(`  ${count} skipped (left in the dead-letter queue): ${reason}`);
    const decided = report.items.filter((i) => i.decided?.length).length;
    if (decided) lines.push(`  ${decided} of them already decided: replaying only re-applies the stored decision (decided once)`);
  }
  if (report.remaining) lines.push(`dead-letter queue now: ${report.remaining.visible} visible, ${report.remaining.inFlight} in flight`);
  lines.push('');
  return lines.join('\n');
}
