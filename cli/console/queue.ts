/**
 * What the console reads about review work, all through cli/human-review.ts and the decision store:
 * the queue (images held for review, open appeals and blind quality samples, oldest first) with who
 * has each item open, and one item with its image's whole history.
 */
import { listPendingReviews, pendingOf, type PendingKind, type PendingReview } from '../human-review.ts';
import { decisionStoreOf } from '../stores.ts';
import type { Target } from '../target.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { latestDecisionOf } from '../../functions/store/decision-store.ts';
import { newestFirst } from '../../functions/store/table-schema.ts';
import type { Lease, Leases } from './leases.ts';

export { formatAge } from '../commands/review.ts';

/** The queue shows at most this many items (the count says when there are more). */
export const QUEUE_LIMIT = 500;

export interface QueueItem extends PendingReview {
  /** Another session has it open. */
  takenBy?: Lease;
}

export interface Queue {
  /** The items shown (of `kind` when given). */
  items: QueueItem[];
  /** The filter: one kind of work, or all. */
  kind?: PendingKind;
  /** How many items of each kind are waiting (of the QUEUE_LIMIT read). */
  counts: Record<PendingKind, number>;
  /** True when there are more than QUEUE_LIMIT: the count is a lower bound. */
  capped: boolean;
  /** How long the oldest item has waited (0 when the queue is empty). */
  oldestWaitingMs: number;
}

export type ConsoleTarget = Pick<Target, 'kind' | 'description' | 'region' | 'dynamodb' | 's3' | 'sqs' | 'names'>;

export async function loadQueue(target: ConsoleTarget, leases: Leases, session: string, now: Date, kind?: PendingKind): Promise<Queue> {
  const pending = await listPendingReviews(target, { order: 'oldest', limit: QUEUE_LIMIT + 1, now });
  const capped = pending.length > QUEUE_LIMIT;
  const all = pending.slice(0, QUEUE_LIMIT).map((item) => ({ ...item, takenBy: leases.heldByOther(item.record.jobId, session) }));
  const counts: Record<PendingKind, number> = { review: 0, appeal: 0, sample: 0 };
  for (const item of all) counts[item.kind] += 1;
  const items = kind ? all.filter((item) => item.kind === kind) : all;
  return { items, kind, counts, capped, oldestWaitingMs: items[0]?.waitingMs ?? 0 };
}

/** The oldest pending item no other session has open, other than `skip`. */
export async function nextItem(target: ConsoleTarget, leases: Leases, session: string, now: Date, skip?: string, kind?: PendingKind): Promise<DecisionRecord | undefined> {
  const queue = await loadQueue(target, leases, session, now, kind);
  return queue.items.find((item) => !item.takenBy && item.record.jobId !== skip)?.record;
}

export interface Item {
  /** The pipeline's decision on the job (status REVIEW when it was held for review). */
  automated: DecisionRecord;
  /** What the job waits for in the queue, if anything (an appeal over a sample of the same job). */
  pending?: { kind: PendingKind; record: DecisionRecord };
  /** The newest human decision (a review's or an appeal's outcome), once there is one. */
  human?: DecisionRecord;
  /** The blind answer to the job's quality sample, once there is one. */
  blind?: DecisionRecord;
  /** What stands: the newest human decision, else the automated one. */
  latest: DecisionRecord;
  /** The job's appeals, newest first. */
  appeals: DecisionRecord[];
  /** Every record of the image (all its versions and jobs), newest first. */
  history: DecisionRecord[];
}

export async function loadItem(target: ConsoleTarget, jobId: string): Promise<Item | undefined> {
  const store = decisionStoreOf(target);
  const records = await store.jobHistory(jobId);
  const automated = records.find((r) => r.kind === 'automated');
  if (!automated) return undefined;
  const history = await store.imageHistory(automated.bucket, automated.key);
  const latest = latestDecisionOf(records) ?? automated;
  const pending = pendingOf(records);
  return {
    automated,
    ...(pending ? { pending } : {}),
    ...(latest.kind === 'human' ? { human: latest } : {}),
    ...(records.some((r) => r.kind === 'blind') ? { blind: records.find((r) => r.kind === 'blind') } : {}),
    latest,
    appeals: records.filter((r) => r.kind === 'appeal').sort(newestFirst),
    history,
  };
}

/**
 * The answer that settled the item's latest work, when it waits for nothing: the newest human
 * decision, else the blind answer. Whoever gave it won; a later answer is told so.
 */
export function answerOf(item: Item): DecisionRecord | undefined {
  return item.pending ? undefined : (item.human ?? item.blind);
}

/** The part of a key after its last '/': what the queue calls the file. */
export function fileName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1) || key;
}

/** A label reached a review or reject threshold: the image is blurred until revealed. */
export function isFlagged(record: DecisionRecord): boolean {
  return Boolean(record.rule && record.rule.action !== 'allow');
}

/**
 * Whether approving needs a reason: it does when it overrides what the automation found (a label
 * that reached a threshold, or an LLM that did not approve). A reject always needs one, as with
 * `moderation review reject`: it quarantines the upload and the uploader may appeal it.
 */
export function approveNeedsReason(record: DecisionRecord): boolean {
  return isFlagged(record) || (record.llm !== undefined && record.llm.decision !== 'APPROVE');
}
