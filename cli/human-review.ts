/**
 * Human review: the images the pipeline held for a person (status REVIEW), and the person's decision.
 * A human decision is a new record beside the automated one (append-only history: the automated
 * record is never overwritten), then applied to the object like the pipeline's own decisions: a tag,
 * or for REJECTED the move to the quarantine bucket (functions/lib/apply-decision.ts). Everything
 * goes through the stores (functions/store/), as the handlers' own reads and writes do.
 */
import { humanRecord } from '../functions/lib/decision.ts';
import { applyDecision } from '../functions/lib/apply-decision.ts';
import { recordIdOf } from '../functions/store/table-schema.ts';
import type { AppliedAction, DecisionRecord, Job } from '../functions/lib/types.ts';
import { iterateDecisions, type HistoryTarget } from './audit.ts';
import type { Target } from './target.ts';
import { UsageError } from './output.ts';
import { decisionStoreOf, objectStoreOf } from './stores.ts';

export type ReviewTarget = HistoryTarget & Pick<Target, 's3'> & { names: HistoryTarget['names'] & Pick<Target['names'], 'quarantineBucket'> };

export interface PendingReview {
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
  now?: Date;
}

/**
 * REVIEW decisions (every shard of the status index) that no human has decided yet. Only the
 * automated records are candidates; one with a human decision appended under the same job is done.
 */
export async function listPendingReviews(target: HistoryTarget, query: PendingQuery = {}): Promise<PendingReview[]> {
  const now = (query.now ?? new Date()).getTime();
  const pending: PendingReview[] = [];
  const limit = query.limit ?? Number.POSITIVE_INFINITY;
  // Checks run a few at a time: one Query per candidate, on its own job's partition.
  const batch: DecisionRecord[] = [];
  const flush = async () => {
    const decided = await Promise.all(batch.map((record) => latestHumanDecision(target, record.jobId)));
    batch.forEach((record, i) => {
      if (!decided[i] && pending.length < limit) pending.push({ record, waitingMs: Math.max(0, now - Date.parse(record.decidedAt)) });
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
    if (record.kind !== 'automated') continue;
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
 * exactly one image held for review (what `review list` prints).
 */
export async function resolveJobId(target: HistoryTarget, text: string): Promise<string> {
  const id = checkJobIdSyntax(text);
  if (id.length === 40) return id;
  const matches = new Set<string>();
  for await (const record of iterateDecisions(target, { statuses: ['REVIEW'] })) {
    if (record.jobId.startsWith(id)) matches.add(record.jobId);
    if (matches.size > 1) break;
  }
  if (matches.size === 0) throw new UsageError(`no image held for review has a job id starting with ${id}`);
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
  record: DecisionRecord;
  applied: AppliedAction;
  /** The same decision was already recorded (a retry): nothing new was written, it was applied again. */
  alreadyRecorded: boolean;
  automated: DecisionRecord;
}

export class ReviewStateError extends UsageError {}

/**
 * Records a human decision on an image held for review and applies it. Idempotent for the same
 * outcome: when this job already has a human decision with the same status (e.g. the apply failed
 * last time), nothing is written and the decision is applied again. A different outcome, or a job
 * that is not held for review, is refused.
 */
export async function decideReview(target: ReviewTarget, jobId: string, input: HumanDecisionInput): Promise<HumanDecisionResult> {
  validateReviewer(input.reviewer);
  if (!input.reason.trim()) throw new UsageError('--reason must not be empty');
  const history = decisionStoreOf(target);
  const automated = await history.automated(jobId);
  if (!automated) throw new ReviewStateError(`no decision for job ${jobId} (see \`moderation review list\`)`);
  if (automated.status !== 'REVIEW') {
    throw new ReviewStateError(
      `job ${jobId} (${automated.key}) was decided ${automated.status} by ${automated.decidedBy} at ${automated.decidedAt}; only images held for review (REVIEW) take a human decision`,
    );
  }
  const latest = await history.latestDecision(jobId);
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
  return { record, applied, alreadyRecorded, automated };
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
