/**
 * The decision history's key design: the only place that knows the table's keys, sort-key prefixes
 * and index keys. The CDK construct and the local runtime build the table from these constants; the
 * decision store (decision-store.ts) turns domain decisions into items and items back into records.
 * Pure: no SDK client here.
 *
 * Base table: pk `JOB#<jobId>`, sk
 * - `DECISION#auto`: the automated decision, written once with a condition;
 * - `DECISION#human#r<revision>`: human decisions, appended; the revision (0001, 0002, ...) makes two
 *   reviewers deciding the same job at once collide on one key, so exactly one conditional write wins
 *   (older items used `DECISION#human#<decidedAt>`, which still reads as a human decision);
 * - `FAILURE#<failedAt>`: failures, appended.
 * GSIs (all sorted by decidedAt, ISO 8601, so a Query is in time order):
 * - byImage:    imageKey = `<bucket>/<key>`              → the history of one image
 * - byStatus:   statusShard = `<STATUS>#<shard>`         → write-sharded so 1,000 decisions/s never heat
 *               one partition; readers fan out over the shards and merge
 * - byUploader: uploader
 * - byCategory: category (top-level category of the deciding label; sparse)
 */
import type { Decision, DecisionRecord, RecordKind } from '../lib/types.ts';

export const TABLE_KEYS = { partitionKey: 'pk', sortKey: 'sk' } as const;

export const SORT_BY_TIME = 'decidedAt';

export const DECISION_INDEXES = {
  byImage: { name: 'byImage', partitionKey: 'imageKey' },
  byStatus: { name: 'byStatus', partitionKey: 'statusShard' },
  byUploader: { name: 'byUploader', partitionKey: 'uploader' },
  byCategory: { name: 'byCategory', partitionKey: 'category' },
} as const;

export type DecisionIndexName = keyof typeof DECISION_INDEXES;

/** How many write shards the status index spreads each status over. Readers must use the same number. */
export const DEFAULT_STATUS_SHARDS = 8;

export const AUTO_DECISION_SK = 'DECISION#auto';
/** Every decision (automated or human) sorts under this prefix; failures do not. */
export const DECISION_PREFIX = 'DECISION#';
export const HUMAN_DECISION_PREFIX = 'DECISION#human#';
export const FAILURE_PREFIX = 'FAILURE#';

export function jobPartitionKey(jobId: string): string {
  return `JOB#${jobId}`;
}

/** A human decision's sort key: the job's n-th human decision (1-based). */
export function humanDecisionSortKey(revision: number): string {
  return `${HUMAN_DECISION_PREFIX}r${String(revision).padStart(4, '0')}`;
}

export function failureSortKey(failedAt: string): string {
  return `${FAILURE_PREFIX}${failedAt}`;
}

export function imageKeyOf(bucket: string, key: string): string {
  return `${bucket}/${key}`;
}

/** A stable shard for a job: FNV-1a of the job id, so retries of one job land on the same shard. */
export function shardFor(jobId: string, shards = DEFAULT_STATUS_SHARDS): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < jobId.length; i++) {
    hash ^= jobId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

export function statusShardKey(status: string, shard: number): string {
  return `${status}#${shard}`;
}

/** Which kind of record a sort key holds (items written before `kind` was stored are read this way). */
export function kindOfSortKey(sk: string): RecordKind {
  if (sk === AUTO_DECISION_SK) return 'automated';
  if (sk.startsWith(HUMAN_DECISION_PREFIX)) return 'human';
  return 'failure';
}

/** A record's identity as printed to auditors and stored in `supersedes`: `<pk>|<sk>`. */
export function recordIdOf(record: Pick<DecisionRecord, 'pk' | 'sk'>): string {
  return `${record.pk}|${record.sk}`;
}

/**
 * The item for a decision: the table's keys and the index keys added to the domain's record.
 * `revision` numbers a human decision (see humanDecisionSortKey).
 */
export function decisionItem(decision: Decision, options: { shards: number; revision?: number }): DecisionRecord {
  const sk =
    decision.kind === 'automated'
      ? AUTO_DECISION_SK
      : decision.kind === 'human'
        ? humanDecisionSortKey(options.revision ?? 1)
        : failureSortKey(decision.decidedAt);
  return {
    pk: jobPartitionKey(decision.jobId),
    sk,
    ...decision,
    imageKey: imageKeyOf(decision.bucket, decision.key),
    statusShard: statusShardKey(decision.status, shardFor(decision.jobId, options.shards)),
  };
}

/** An item read from the table as a record; `kind` is derived from the sort key for older items. */
export function recordFromItem(item: Record<string, unknown>): DecisionRecord {
  const record = item as unknown as DecisionRecord;
  return record.kind ? record : { ...record, kind: kindOfSortKey(record.sk) };
}

/**
 * Newest first, and for the same instant the record that supersedes first (a human decision over
 * the automated one, a decision over a failure).
 */
export function newestFirst(a: DecisionRecord, b: DecisionRecord): number {
  return b[SORT_BY_TIME].localeCompare(a[SORT_BY_TIME]) || rank(b) - rank(a) || b.sk.localeCompare(a.sk);
}

function rank(record: DecisionRecord): number {
  const kind = record.kind ?? kindOfSortKey(record.sk);
  return kind === 'human' ? 2 : kind === 'automated' ? 1 : 0;
}
