/**
 * `moderation review list|show|approve|reject`: the review queue (images held for a human, appeals of
 * rejections, blind quality samples) and the human's answer, appended to the history (never
 * overwriting the automated record) and applied to the object (tag, quarantine for a reject, restore
 * for a granted appeal; nothing for a blind answer). See cli/human-review.ts.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import {
  checkJobIdSyntax,
  decideReview,
  jobRecords,
  listPendingReviews,
  PENDING_KINDS,
  resolveJobId,
  validateReviewer,
  type HumanDecisionResult,
  type PendingKind,
} from '../human-review.ts';
import { shorten } from '../audit.ts';
import { addTargetOptions, parseChoice, parseInteger, parseWhen, plural, withTarget, type TargetFlags } from '../flags.ts';
import { escapeLines, renderTable, UsageError, type Row } from '../output.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';

interface ListFlags extends TargetFlags {
  since?: string;
  until?: string;
  uploader?: string;
  order?: string;
  limit?: string;
  kind?: string;
  json?: boolean;
}

interface DecideFlags extends TargetFlags {
  reason?: string;
  reviewer?: string;
  json?: boolean;
}

export function registerReview(program: Command): void {
  const review = program
    .command('review')
    .description('the review queue (images held for a human, appeals, blind quality samples): list it, show one, approve or reject it')
    .addHelpText(
      'after',
      `
Examples:
  moderation review list
  moderation review show 3f2a9c1b
  moderation review approve 3f2a9c1b --reason "art, not nudity"
  moderation review reject 3f2a9c1b --reason "explicit" --reviewer dana

A job id may be shortened to a unique prefix (6+ characters). A decision is appended to the history
(decidedBy human:<reviewer>) beside the automated one, then applied: APPROVED tags the object,
REJECTED moves it to the quarantine bucket. On an appeal (moderation appeal) APPROVED grants it and
restores the object from quarantine, REJECTED denies it. On a blind quality sample the answer is
recorded (kind blind) and not applied: it measures the automation (moderation quality).`,
    );

  addTargetOptions(
    review
      .command('list')
      .description('the review queue: images held for review, open appeals and blind quality samples, longest waiting first')
      .option('--since <when>', 'held at or after (date, date-time, or e.g. 7d ago)')
      .option('--until <when>', 'held at or before')
      .option('--uploader <id>', "only this uploader's images")
      .option('--order <order>', 'oldest (default) or newest first')
      .option('--limit <n>', 'at most this many (default 100)')
      .option('--kind <kinds>', `only these kinds of work, comma separated: ${PENDING_KINDS.join(', ')}`)
      .option('--json', 'print a JSON array of the pending records (a sample\'s record carries no verdict)'),
  ).action(async (flags: ListFlags) => {
    await listCommand(flags);
  });

  addTargetOptions(
    review
      .command('show')
      .description("one job's decisions (automated, human, failures) with its labels")
      .argument('<jobId>', 'job id (or a unique prefix of an image held for review)')
      .option('--json', 'print the records as JSON'),
  ).action(async (jobId: string, flags: DecideFlags) => {
    await showCommand(jobId, flags);
  });

  for (const verb of ['approve', 'reject'] as const) {
    addTargetOptions(
      review
        .command(verb)
        .description(
          verb === 'approve'
            ? 'approve an image in the review queue (tags it APPROVED; grants an appeal: restores it from quarantine)'
            : 'reject an image in the review queue (moves it to quarantine; denies an appeal)',
        )
        .argument('<jobId>', 'job id (or a unique prefix of an image held for review)')
        .option('--reason <text>', verb === 'approve' ? 'why (recorded in the history; default "approved by a reviewer")' : 'why (required; recorded in the history)')
        .option('--reviewer <id>', 'who decides (default $USER)')
        .option('--json', 'print the new record and what was done to the object as JSON'),
    ).action(async (jobId: string, flags: DecideFlags) => {
      await decideCommand(verb, jobId, flags);
    });
  }
}

async function listCommand(flags: ListFlags): Promise<void> {
  const now = new Date();
  const since = flags.since === undefined ? undefined : parseWhen(flags.since, '--since', { now });
  const until = flags.until === undefined ? undefined : parseWhen(flags.until, '--until', { endOfDay: true, now });
  const order = flags.order === undefined ? 'oldest' : parseChoice(flags.order, '--order', ['oldest', 'newest'] as const);
  const limit = parseInteger(flags.limit ?? '100', '--limit', { min: 1 });
  const kinds = flags.kind === undefined ? undefined : flags.kind.split(',').map((kind) => parseChoice(kind, '--kind', PENDING_KINDS));
  await withTarget(flags, async (target) => {
    const pending = await listPendingReviews(target, { since, until, order, limit, uploader: flags.uploader, kinds, now });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(pending.map((p) => ({ ...p.record, queue: p.kind })), null, 2)}\n`);
      return;
    }
    if (pending.length === 0) {
      process.stdout.write('nothing is waiting for review\n');
      return;
    }
    const rows: Row[] = pending.map(({ kind, record, waitingMs }) => ({
      job: record.jobId.slice(0, 12),
      kind: KIND_LABEL[kind],
      waiting: formatAge(waitingMs),
      key: record.key,
      uploader: record.uploader ?? '-',
      label: record.rule ? `${record.rule.label} ${record.rule.confidence.toFixed(1)}%` : '-',
      'decided by': record.decidedBy,
      reason: shorten(record.reason ?? '', 60),
    }));
    process.stdout.write(`${renderTable(rows, ['job', 'kind', 'waiting', 'key', 'uploader', 'label', 'decided by', 'reason'])}\n`);
    process.stdout.write(`\n${plural(pending.length, 'image')} waiting for review. Decide with: moderation review approve|reject <job> --reason "..."\n`);
  });
}

async function showCommand(jobText: string, flags: DecideFlags): Promise<void> {
  checkJobIdSyntax(jobText);
  await withTarget(flags, async (target) => {
    const jobId = await resolveJobId(target, jobText);
    const records = await jobRecords(target, jobId);
    if (records.length === 0) throw new UsageError(`no decision for job ${jobId}`);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
      return;
    }
    process.stdout.write(escapeLines(describeJob(records)));
  });
}

/** A job's records for a person: the object, then each record (oldest first) with its labels. */
export function describeJob(records: DecisionRecord[]): string {
  const first = records[0]!;
  const lines = [
    `job        ${first.jobId}`,
    `object     s3://${first.bucket}/${first.key}${first.versionId ? ` (version ${first.versionId})` : ''}${first.eTag ? ` etag ${first.eTag}` : ''}`,
    `uploader   ${first.uploader ?? '-'}`,
    '',
  ];
  for (const record of records) {
    const kind = RECORD_KIND_LABEL[record.kind] ?? record.kind;
    lines.push(`${record.decidedAt}  ${record.status}  (${kind}, ${record.decidedBy})`);
    if (record.reason) lines.push(`  reason   ${record.reason}`);
    if (record.rule) lines.push(`  rule     ${record.rule.category}: ${record.rule.label} ${record.rule.confidence.toFixed(1)}% ≥ ${record.rule.action} ${record.rule.threshold ?? ''}`.trimEnd());
    if (record.llm) lines.push(`  llm      ${record.llm.modelId}: ${record.llm.decision} (${record.llm.reason})`);
    if (record.error) lines.push(`  error    ${record.error.Error}`);
    if (record.policyVersion) lines.push(`  policy   ${record.policyVersion}${record.modelVersion ? `, model ${record.modelVersion}` : ''}`);
    if (record.supersedes) lines.push(`  supersedes ${record.supersedes}`);
    if (record.contests) lines.push(`  contests ${record.contests}`);
    if (record.appealOf) lines.push(`  appeal   ${record.appealOf}`);
    if (record.sampleOf) lines.push(`  sample of ${record.sampleOf}`);
    if (record.qualitySample) lines.push('  quality  sampled for a blind check');
    if (record.labels?.length && record.kind !== 'human') {
      lines.push('  labels');
      for (const label of record.labels) {
        lines.push(`    ${label.confidence.toFixed(1).padStart(5)}%  ${[label.parentName, label.name].filter(Boolean).join(' › ')} (L${label.level})`);
      }
    }
    lines.push('');
  }
  return `${lines.join('\n')}`;
}

async function decideCommand(verb: 'approve' | 'reject', jobText: string, flags: DecideFlags): Promise<void> {
  const status = verb === 'approve' ? 'APPROVED' : 'REJECTED';
  if (verb === 'reject' && !flags.reason?.trim()) throw new UsageError('review reject needs --reason "<why>" (it is recorded in the history)');
  if (flags.reason !== undefined && !flags.reason.trim()) throw new UsageError('--reason must not be empty');
  const reviewer = flags.reviewer ?? defaultReviewer();
  if (!reviewer) throw new UsageError('--reviewer is needed ($USER is not set)');
  validateReviewer(reviewer);
  checkJobIdSyntax(jobText);
  await withTarget(flags, async (target) => {
    const jobId = await resolveJobId(target, jobText);
    const result = await decideReview(target, jobId, { status, reviewer, reason: flags.reason?.trim() || 'approved by a reviewer' });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ kind: result.kind, record: result.record, applied: result.applied, alreadyRecorded: result.alreadyRecorded }, null, 2)}\n`);
      return;
    }
    process.stdout.write(describeDecision(result));
  });
}

function describeDecision(result: HumanDecisionResult): string {
  const { kind, record, applied, alreadyRecorded, automated, appeal } = result;
  const what = kind === 'sample' ? 'blind answer ' : kind === 'appeal' ? (record.status === 'APPROVED' ? 'appeal granted: ' : 'appeal denied: ') : '';
  const lines = [
    alreadyRecorded
      ? `${what}${record.status} was already recorded by ${record.decidedBy} at ${record.decidedAt}${kind === 'sample' ? '.' : '; applied again.'}`
      : `${what}${record.status} by ${record.decidedBy} recorded at ${record.decidedAt}`,
    `  object      s3://${record.bucket}/${record.key}`,
    `  reason      ${record.reason}`,
  ];
  if (kind === 'sample') {
    lines.push(`  automated   ${automated.status} by ${automated.decidedBy}: ${record.status === automated.status ? 'you agree' : 'you disagree'} (see moderation quality)`);
  } else {
    if (appeal) lines.push(`  appeal      filed ${appeal.decidedAt}: ${appeal.reason ?? ''}`);
    lines.push(`  supersedes  ${record.supersedes === `${automated.pk}|${automated.sk}` ? `the automated ${automated.status} by ${automated.decidedBy} at ${automated.decidedAt}` : record.supersedes} (kept in the history)`);
  }
  lines.push(`  applied     ${applied.action}: ${applied.detail}`, '');
  return lines.join('\n');
}

/** The queue's kinds of work, as `review list` prints them. */
export const KIND_LABEL: Record<PendingKind, string> = { review: 'review', appeal: 'appeal', sample: 'blind sample' };

/** The record kinds, as `review show` prints them. */
const RECORD_KIND_LABEL: Record<string, string> = {
  automated: 'automated decision',
  human: 'human decision',
  failure: 'failure',
  appeal: 'appeal',
  sample: 'quality sample, waiting for a blind answer',
  blind: 'blind quality answer',
};

function defaultReviewer(): string | undefined {
  const fromEnv = process.env.USER ?? process.env.USERNAME ?? process.env.LOGNAME;
  if (fromEnv) return fromEnv;
  try {
    return userInfo().username || undefined;
  } catch {
    return undefined;
  }
}

export function formatAge(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return `${Math.floor(ms / 1000)}s`;
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}
