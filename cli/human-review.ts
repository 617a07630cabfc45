/**
 * Human review: the review queue and a person's answer to each item in it. The queue holds three
 * kinds of work, all found by one query of the status index's REVIEW shards (oldest first):
 * - **review**: images the pipeline held for a person (an automated REVIEW decision);
 * - **appeal**: an uploader's appeal of a rejection (`moderation appeal`, the console), a record of
 *   kind `appeal` with status REVIEW, until a human decides it;
 * - **sample**: automated APPROVED/REJECTED decisions chosen for blind quality sampling (their queue
 *   entry, kind `sample`, carries no verdict), until someone answers them blind.
 * A decision is a new record beside the automated one (append-only history: the automated record is
 * never overwritten), then applied to the object like the pipeline's own decisions: a tag, the move
 * to the quarantine bucket for REJECTED, or for a granted appeal the move back
 * (functions/lib/apply-decision.ts). A blind answer is recorded and never applied: it measures the
 * automation (cli/quality.ts), it does not override it. Everything goes through the stores
 * (functions/store/), as the handlers' own reads and writes do.
 */
import { createHash } from 'node:crypto';
import { blindAnswerRecord, humanRecord } from '../functions/lib/decision.ts';
import { applyDecision, quarantinedCopy, restoreFromQuarantine } from '../functions/lib/apply-decision.ts';
import { recordIdOf } from '../functions/store/table-schema.ts';
import { latestDecisionOf, openAppealOf } from '../functions/store/decision-store.ts';
import { AppealStateError, fileAppeal as fileAppealInStore, MAX_APPEAL_MESSAGE_CHARS, type AppealInput, type AppealResult } from '../functions/store/appeals.ts';
import type { AppliedAction, DecisionRecord, DecisionStatus, Job } from '../functions/lib/types.ts';
import { iterateDecisions, type HistoryTarget } from './audit.ts';
import type { Target } from './target.ts';
import { UsageError } from './output.ts';
import { decisionStoreOf, objectStoreOf } from './stores.ts';

export type ReviewTarget = HistoryTarget & Pick<Target, 's3'> & { names: HistoryTarget['names'] & Pick<Target['names'], 'quarantineBucket'> };

/** Why an item is in the queue. */
export type PendingKind = 'review' | 'appeal' | 'sample';

export const PENDING_KINDS: readonly PendingKind[] = ['review', 'appeal', 'sample'];

export interface PendingReview {
  kind: PendingKind;
  /**
   * The record that put it in the queue: the automated REVIEW decision, the appeal (its reason is
   * the uploader's message), or the quality sample's entry (no verdict, no labels: blind).
   */
  record: DecisionRecord;
  /** How long it has waited for a person. */
  waitingMs: number;
}

export interface PendingQuery {
  since?: Date;
  until?: Date;
  /** Oldest first (the default: the longest-waiting first) or newest first. */
  order?: 'oldest' | 'newest';
  limit?: number;
  uploader?: string;
  /** Only these kinds of work (default all). */
  kinds?: readonly PendingKind[];
  now?: Date;
}

/** The kind of queue record each kind of work is found by. */
const CANDIDATE_KIND: Record<PendingKind, DecisionRecord['kind']> = { review: 'automated', appeal: 'appeal', sample: 'sample' };

/**
 * What a job waits for in the queue, from all its records: an open appeal first; else, held for
 * review with no human decision; else, a quality sample that nobody has answered and no human has
 * decided (an appeal's outcome is a judgement too). Undefined: nothing.
 */
export function pendingOf(records: DecisionRecord[]): { kind: PendingKind; record: DecisionRecord } | undefined {
  const automated = records.find((r) => r.kind === 'automated');
  if (!automated) return undefined;
  const appeal = openAppealOf(records);
  if (appeal) return { kind: 'appeal', record: appeal };
  const decidedByHuman = records.some((r) => r.kind === 'human');
  if (automated.status === 'REVIEW') return decidedByHuman ? undefined : { kind: 'review', record: automated };
  const sample = records.find((r) => r.kind === 'sample');
  if (sample && !decidedByHuman && !records.some((r) => r.kind === 'blind')) return { kind: 'sample', record: sample };
  return undefined;
}

/**
 * The queue: records in the REVIEW shards of the status index (automated REVIEW decisions, appeals,
 * quality samples' entries) whose job still waits for that work. Each candidate costs one Query of
 * its own job's partition; a job is listed once (an open appeal over a sample of the same job).
 */
export async function listPendingReviews(target: HistoryTarget, query: PendingQuery = {}): Promise<PendingReview[]> {
  const now = (query.now ?? new Date()).getTime();
  const pending: PendingReview[] = [];
  const limit = query.limit ?? Number.POSITIVE_INFINITY;
  const kinds = new Set((query.kinds?.length ? query.kinds : PENDING_KINDS).map((kind) => CANDIDATE_KIND[kind]));
  const store = decisionStoreOf(target);
  // Checks run a few at a time: one Query per candidate, on its own job's partition.
  const batch: DecisionRecord[] = [];
  const flush = async () => {
    const states = await Promise.all(batch.map(async (record) => pendingOf(await store.jobHistory(record.jobId))));
    batch.forEach((record, i) => {
      const state = states[i];
      if (state && state.record.sk === record.sk && pending.length < limit) {
        pending.push({ kind: state.kind, record, waitingMs: Math.max(0, now - Date.parse(record.decidedAt)) });
      }
    });
    batch.length = 0;
  };
  for await (const record of iterateDecisions(target, {
    statuses: ['REVIEW'],
    since: query.since,
    until: query.until,
    order: query.order ?? 'oldest',
    uploader: query.uploader,
  })) {
    if (!kinds.has(record.kind)) continue;
    batch.push(record);
    if (batch.length >= 16) await flush();
    if (pending.length >= limit) break;
  }
  if (pending.length < limit) await flush();
  return pending;
}

/** Every record of one job (automated, human, failures), oldest first. */
export function jobRecords(target: HistoryTarget, jobId: string): Promise<DecisionRecord[]> {
  return decisionStoreOf(target).jobHistory(jobId);
}

/** The newest human decision of a job, if any. */
export async function latestHumanDecision(target: HistoryTarget, jobId: string): Promise<DecisionRecord | undefined> {
  const latest = await decisionStoreOf(target).latestDecision(jobId);
  return latest?.kind === 'human' ? latest : undefined;
}

/**
 * A job id as typed: the full 40 hexadecimal characters, or a prefix of at least 6 that matches
 * exactly one record with one of `among.statuses` (default: the review queue, what `review list`
 * prints; `moderation appeal` looks among REJECTED).
 */
export async function resolveJobId(
  target: HistoryTarget,
  text: string,
  among: { statuses: DecisionStatus[]; what: string } = { statuses: ['REVIEW'], what: 'image in the review queue' },
): Promise<string> {
  const id = checkJobIdSyntax(text);
  if (id.length === 40) return id;
  const matches = new Set<string>();
  for await (const record of iterateDecisions(target, { statuses: among.statuses })) {
    if (record.jobId.startsWith(id)) matches.add(record.jobId);
    if (matches.size > 1) break;
  }
  if (matches.size === 0) throw new UsageError(`no ${among.what} has a job id starting with ${id}`);
  if (matches.size > 1) throw new UsageError(`job id prefix ${id} is ambiguous: type more characters`);
  return [...matches][0]!;
}

/** A job id or prefix as typed, lower-cased; a UsageError unless it is 6 to 40 hexadecimal characters. */
export function checkJobIdSyntax(text: string): string {
  const id = text.trim().toLowerCase();
  if (!/^[0-9a-f]{6,40}$/.test(id)) {
    throw new UsageError(`a job id is 40 hexadecimal characters, or a unique prefix of at least 6 (see \`moderation review list\`), got "${text}"`);
  }
  return id;
}

export interface HumanDecisionInput {
  status: 'APPROVED' | 'REJECTED';
  reviewer: string;
  reason: string;
  /** The clock (tests pin it). */
  now?: Date;
}

export interface HumanDecisionResult {
  /** What was answered: an image held for review, an appeal, or a blind quality sample. */
  kind: PendingKind;
  /** The human decision (kind `human`), or for a sample the blind answer (kind `blind`). */
  record: DecisionRecord;
  applied: AppliedAction;
  /** The same decision was already recorded (a retry): nothing new was written, it was applied again. */
  alreadyRecorded: boolean;
  automated: DecisionRecord;
  /** For an appeal: the appeal decided. */
  appeal?: DecisionRecord;
}

export class ReviewStateError extends UsageError {}

/** What a blind answer does to the object: nothing. */
const BLIND_NOT_APPLIED: AppliedAction = { action: 'skipped', detail: 'recorded as a blind quality answer; not applied (a measurement, not an override)' };

/**
 * Answers a job in the review queue and applies the answer, whatever kind of work it is:
 * - held for review: a human decision, applied (a tag, or the move to quarantine);
 * - an open appeal: a human decision that supersedes the rejection and names the appeal
 *   (`appealOf`): APPROVED restores the object from quarantine, REJECTED keeps it there;
 * - a quality sample: a blind answer, recorded and not applied.
 * Idempotent for the same outcome: when the job already has this answer (e.g. the apply failed last
 * time), nothing is written and a decision is applied again. A different outcome, or a job with
 * nothing in the queue, is refused.
 */
export async function decideReview(target: ReviewTarget, jobId: string, input: HumanDecisionInput): Promise<HumanDecisionResult> {
  validateReviewer(input.reviewer);
  if (!input.reason.trim()) throw new UsageError('--reason must not be empty');
  const history = decisionStoreOf(target);
  const records = await history.jobHistory(jobId);
  const automated = records.find((r) => r.kind === 'automated');
  if (!automated) throw new ReviewStateError(`no decision for job ${jobId} (see \`moderation review list\`)`);
  const pending = pendingOf(records);
  if (pending?.kind === 'appeal') return decideAppeal(target, records, automated, pending.record, input);
  if (pending?.kind === 'sample') return answerSample(target, automated, pending.record, input);
  const settled = settledAnswer(records, input);
  if (settled) return settled.kind === 'appeal' ? reapplyAppeal(target, records, automated, settled.record) : { ...settled, automated };
  if (automated.status !== 'REVIEW') {
    throw new ReviewStateError(
      `job ${jobId} (${automated.key}) was decided ${automated.status} by ${automated.decidedBy} at ${automated.decidedAt}; only images held for review (REVIEW) take a human decision, besides appeals (\`moderation appeal\`) and quality samples in the review queue`,
    );
  }
  const latest = latestDecisionOf(records);
  const previous = latest?.kind === 'human' ? latest : undefined;
  let record: DecisionRecord;
  let alreadyRecorded = false;
  if (previous) {
    if (previous.status !== input.status) {
      throw new ReviewStateError(`job ${jobId} was already decided ${previous.status} by ${previous.decidedBy} at ${previous.decidedAt} ("${previous.reason}")`);
    }
    record = previous;
    alreadyRecorded = true;
  } else {
    // Appended as the job's next revision: a reviewer deciding at the same moment loses with a
    // DecisionConflictError that names the winner, and nothing of theirs is written or applied.
    record = await history.appendHuman(
      humanRecord(automated, {
        status: input.status,
        reviewer: input.reviewer,
        reason: input.reason.trim(),
        decidedAt: (input.now ?? new Date()).toISOString(),
        supersedes: recordIdOf(automated),
      }),
    );
  }
  const applied = await applyDecision(objectStoreOf(target), jobOf(record), input.status, target.names.quarantineBucket);
  return { kind: 'review', record, applied, alreadyRecorded, automated };
}

/**
 * A retry of an answer already recorded for work no longer pending: the latest appeal's outcome, or
 * the blind answer, with the same status. A different status is refused (ReviewStateError).
 */
function settledAnswer(records: DecisionRecord[], input: HumanDecisionInput): { kind: 'appeal' | 'sample'; record: DecisionRecord; applied: AppliedAction; alreadyRecorded: true } | undefined {
  const latest = latestDecisionOf(records);
  const outcome = latest?.kind === 'human' && latest.appealOf ? latest : undefined;
  const blind = records.find((r) => r.kind === 'blind');
  const answer = outcome ?? (records.some((r) => r.kind === 'human') ? undefined : blind);
  if (!answer) return undefined;
  if (answer.status !== input.status) {
    const what = outcome ? 'The appeal was already decided' : 'This quality sample was already answered';
    throw new ReviewStateError(`${what} ${answer.status} by ${answer.decidedBy} at ${answer.decidedAt} ("${answer.reason ?? ''}")`);
  }
  return { kind: outcome ? 'appeal' : 'sample', record: answer, applied: BLIND_NOT_APPLIED, alreadyRecorded: true };
}

/** An appeal's outcome: a human decision over the rejection it contests, applied (restore, or stay in quarantine). */
async function decideAppeal(target: ReviewTarget, records: DecisionRecord[], automated: DecisionRecord, appeal: DecisionRecord, input: HumanDecisionInput): Promise<HumanDecisionResult> {
  const contested = records.find((r) => recordIdOf(r) === appeal.contests) ?? latestDecisionOf(records)!;
  const objects = objectStoreOf(target);
  let contentSha256: string | undefined;
  if (input.status === 'APPROVED') {
    // What the reviewer approves: the bytes in quarantine (or, never moved, in the uploads bucket). Their
    // hash lets Detect recognise the restored copy rather than judge it again (functions/restored-upload.ts).
    const copy = await quarantinedCopy(objects, jobOf(contested), target.names.quarantineBucket);
    const ref = 'reason' in copy ? ((await objects.head(jobOf(contested))) === 'missing' ? undefined : jobOf(contested)) : copy.ref;
    if (ref) contentSha256 = createHash('sha256').update(await objects.read(ref)).digest('hex');
  }
  const record = await decisionStoreOf(target).appendHuman(
    humanRecord(contested, {
      status: input.status,
      reviewer: input.reviewer,
      reason: input.reason.trim(),
      decidedAt: (input.now ?? new Date()).toISOString(),
      supersedes: recordIdOf(contested),
      appealOf: recordIdOf(appeal),
      contentSha256,
    }),
  );
  return { kind: 'appeal', record, applied: await applyAppealOutcome(target, record), alreadyRecorded: false, automated, appeal };
}

async function reapplyAppeal(target: ReviewTarget, records: DecisionRecord[], automated: DecisionRecord, outcome: DecisionRecord): Promise<HumanDecisionResult> {
  const appeal = records.find((r) => recordIdOf(r) === outcome.appealOf);
  return { kind: 'appeal', record: outcome, applied: await applyAppealOutcome(target, outcome), alreadyRecorded: true, automated, ...(appeal ? { appeal } : {}) };
}

function applyAppealOutcome(target: ReviewTarget, outcome: DecisionRecord): Promise<AppliedAction> {
  return outcome.status === 'APPROVED'
    ? restoreFromQuarantine(objectStoreOf(target), jobOf(outcome), target.names.quarantineBucket)
    : applyDecision(objectStoreOf(target), jobOf(outcome), 'REJECTED', target.names.quarantineBucket);
}

/** A blind answer to a quality sample: written once (two reviewers at once: one wins), never applied. */
async function answerSample(target: ReviewTarget, automated: DecisionRecord, sample: DecisionRecord, input: HumanDecisionInput): Promise<HumanDecisionResult> {
  const record = await decisionStoreOf(target).appendBlindAnswer(
    blindAnswerRecord(sample, {
      status: input.status,
      reviewer: input.reviewer,
      reason: input.reason.trim(),
      decidedAt: (input.now ?? new Date()).toISOString(),
      sampleOf: sample.sampleOf ?? recordIdOf(automated),
    }),
  );
  return { kind: 'sample', record, applied: BLIND_NOT_APPLIED, alreadyRecorded: false, automated };
}

export type { AppealInput, AppealResult } from '../functions/store/appeals.ts';
export { MAX_APPEAL_MESSAGE_CHARS } from '../functions/store/appeals.ts';

/**
 * Files an uploader's appeal of a rejection (functions/store/appeals.ts, the code path the console and
 * the platform's appeal intake share): a record of kind `appeal` (status REVIEW) that puts the image
 * back in the review queue with the message. The CLI's wording for a bad --message; a job that cannot
 * be appealed is a ReviewStateError, as the other review commands report it.
 */
export async function fileAppeal(target: HistoryTarget, jobId: string, input: AppealInput): Promise<AppealResult> {
  const message = input.message.replace(/\r\n?/g, '\n').trim();
  if (!message) throw new UsageError('--message must not be empty: say why the image should not be rejected');
  if (message.length > MAX_APPEAL_MESSAGE_CHARS) throw new UsageError(`--message is too long (${message.length} characters; at most ${MAX_APPEAL_MESSAGE_CHARS})`);
  try {
    return await fileAppealInStore(decisionStoreOf(target), jobId, { ...input, message });
  } catch (err) {
    if (err instanceof AppealStateError) throw new ReviewStateError(err.message);
    throw err;
  }
}

export function validateReviewer(reviewer: string): void {
  if (!/^[A-Za-z0-9._@+-]{1,64}$/.test(reviewer)) {
    throw new UsageError(`--reviewer must be 1-64 letters, digits or . _ @ + -, got "${reviewer}"`);
  }
}

function jobOf(record: DecisionRecord): Job {
  return {
    jobId: record.jobId,
    bucket: record.bucket,
    key: record.key,
    ...(record.versionId ? { versionId: record.versionId } : {}),
    ...(record.eTag ? { eTag: record.eTag } : {}),
    ...(record.uploader ? { uploader: record.uploader } : {}),
    eventTime: record.decidedAt,
    receivedAt: record.decidedAt,
  };
}
