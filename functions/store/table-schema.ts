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
 * - `FAILURE#<failedAt>`: failures, appended;
 * - `APPEAL#r<revision>`: an uploader's appeal of a rejection (kind `appeal`), numbered like human
 *   decisions so two appeals filed at once collide and one wins; at most one is open at a time;
 * - `QUALITY#sample`: the review-queue entry of an automated decision chosen for blind quality
 *   sampling (kind `sample`), written once beside it; `QUALITY#answer`: a reviewer's blind answer to it
 *   (kind `blind`), written once (two reviewers at once: one wins).
 * Appeals and sample entries carry status REVIEW, so the queue finds them with the same byStatus
 * REVIEW query that finds the images held for review (their `kind` tells them apart); the statuses
 * themselves stay DECISION_STATUSES. None of them is under `DECISION#`, so the latest decision of a
 * job ignores them.
 * GSIs (all sorted by decidedAt, ISO 8601, so a Query is in time order):
 * - byImage:    imageKey = `<bucket>/<key>`              → the history of one image
 * - byStatus:   statusShard = `<STATUS>#<shard>`         → write-sharded so 1,000 decisions/s never heat
 *               one partition; readers fan out over the shards and merge
 * - byUploader: uploaderKey = the uploader, written only on records that are not APPROVED (sparse): an
 *               uploader's approvals are found through byStatus (APPROVED shards, filtered by uploader)
 * - byCategory: category (top-level category of the deciding label; sparse)
 * Each index projects only its keys and the attributes the audit queries filter on
 * (INDEX_PROJECTED_ATTRIBUTES), so every copy of a decision in an index is one write unit whatever the
 * record's size; the query reads the whole records from the table (BatchGetItem) for the rows it returns
 * (docs/performance.md, "What a decision costs to write").
 */
import type { Decision, DecisionRecord, RecordKind } from '../lib/types.ts';
import { labelIndexName } from '../lib/analysis.ts';

export const TABLE_KEYS = { partitionKey: 'pk', sortKey: 'sk' } as const;

export const SORT_BY_TIME = 'decidedAt';

export const DECISION_INDEXES = {
  byImage: { name: 'byImage', partitionKey: 'imageKey' },
  byStatus: { name: 'byStatus', partitionKey: 'statusShard' },
  byUploader: { name: 'byUploader', partitionKey: 'uploaderKey' },
  byCategory: { name: 'byCategory', partitionKey: 'category' },
} as const;

/**
 * The non-key attributes every index projects (INCLUDE): what decision-query.ts filters on
 * (FilterExpression on uploader, category, status, policyName). Anything else is read from the table.
 */
export const INDEX_PROJECTED_ATTRIBUTES = ['status', 'uploader', 'category', 'policyName'] as const;

/** The statuses the uploader index leaves out (sparse): the bulk of the decisions, served by byStatus instead. */
export const STATUSES_NOT_IN_UPLOADER_INDEX: readonly string[] = ['APPROVED'];

export type DecisionIndexName = keyof typeof DECISION_INDEXES;

/** How many write shards the status index spreads each status over. Readers must use the same number. */
export const DEFAULT_STATUS_SHARDS = 8;

export const AUTO_DECISION_SK = 'DECISION#auto';
/** Every decision (automated or human) sorts under this prefix; failures do not. */
export const DECISION_PREFIX = 'DECISION#';
export const HUMAN_DECISION_PREFIX = 'DECISION#human#';
export const FAILURE_PREFIX = 'FAILURE#';
export const APPEAL_PREFIX = 'APPEAL#';
export const QUALITY_SAMPLE_SK = 'QUALITY#sample';
export const BLIND_ANSWER_SK = 'QUALITY#answer';

export function jobPartitionKey(jobId: string): string {
  return `JOB#${jobId}`;
}

/** A human decision's sort key: the job's n-th human decision (1-based). */
export function humanDecisionSortKey(revision: number): string {
  return `${HUMAN_DECISION_PREFIX}r${String(revision).padStart(4, '0')}`;
}

/** An appeal's sort key: the job's n-th appeal (1-based). */
export function appealSortKey(revision: number): string {
  return `${APPEAL_PREFIX}r${String(revision).padStart(4, '0')}`;
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
  if (sk.startsWith(APPEAL_PREFIX)) return 'appeal';
  if (sk === QUALITY_SAMPLE_SK) return 'sample';
  if (sk === BLIND_ANSWER_SK) return 'blind';
  return 'failure';
}

/** A record's identity as printed to auditors and stored in `supersedes`: `<pk>|<sk>`. */
export function recordIdOf(record: Pick<DecisionRecord, 'pk' | 'sk'>): string {
  return `${record.pk}|${record.sk}`;
}

/**
 * The item for a decision: the table's keys and the index keys added to the domain's record.
 * `revision` numbers a human decision or an appeal (see humanDecisionSortKey, appealSortKey).
 */
export function decisionItem(decision: Decision, options: { shards: number; revision?: number }): DecisionRecord {
  return {
    pk: jobPartitionKey(decision.jobId),
    sk: sortKeyOf(decision, options.revision ?? 1),
    ...decision,
    imageKey: imageKeyOf(decision.bucket, decision.key),
    statusShard: statusShardKey(decision.status, shardFor(decision.jobId, options.shards)),
    ...(decision.uploader !== undefined && !STATUSES_NOT_IN_UPLOADER_INDEX.includes(decision.status) ? { uploaderKey: decision.uploader } : {}),
  };
}

function sortKeyOf(decision: Decision, revision: number): string {
  switch (decision.kind) {
    case 'automated':
      return AUTO_DECISION_SK;
    case 'human':
      return humanDecisionSortKey(revision);
    case 'appeal':
      return appealSortKey(revision);
    case 'sample':
      return QUALITY_SAMPLE_SK;
    case 'blind':
      return BLIND_ANSWER_SK;
    case 'failure':
      return failureSortKey(decision.decidedAt);
  }
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
  // An appeal, a sample's queue entry or a blind answer follows the decision it is about.
  return kind === 'human' ? 3 : kind === 'automated' ? 1 : kind === 'failure' ? 0 : 2;
}

// ---------------------------------------------------------------------------------------------------
// Content lookups (functions/store/content-index.ts; docs/architecture.md, "Never pay twice for the
// same bytes"). Not decision records: no GSI key attribute (so in no index), no decision event
// (the publishers keep to isDecisionItem), never in a job's history.
// - pk `CONTENT#<sha256>#<policyVersion>`, sk `CONTENT`: the job that first decided these bytes under
//   this policy version (written once, conditionally);
// - pk `NEAR#<policyVersion>#<band>:<value>`, sk `<jobId>`: a REJECTED image's perceptual hash, under
//   each of its bands' values and every value one bit away (functions/lib/perceptual-hash.ts).

/** Every decision record's partition key starts with this; the content lookups' do not. */
export const JOB_PARTITION_PREFIX = 'JOB#';
export const CONTENT_SORT_KEY = 'CONTENT';

export function contentPartitionKey(contentHash: string, policyVersion: string): string {
  return `CONTENT#${contentHash}#${policyVersion}`;
}

export function nearDuplicatePartitionKey(policyVersion: string, bandKey: string): string {
  return `NEAR#${policyVersion}#${bandKey}`;
}

// ---------------------------------------------------------------------------------------------------
// The label index (functions/store/label-index.ts; `moderation audit --label`): one small item per
// DetectLabels label (and parent) of an automated decision, written by the record step. Like the
// content lookups: not records, in no GSI (no GSI key attribute), no decision event.
// - pk `LABEL#<label, lower-cased>#<shard>`, sk `<decidedAt>#<jobId>`: write-sharded like byStatus
//   (a label such as Person is on most images: one partition would take every one of them), so a
//   query fans out over LABEL_SHARDS partitions and merges them by time; the sort key orders each.

/** Write shards of each label's partition. Readers use the same number (a constant: not a deploy setting). */
export const LABEL_SHARDS = 8;
export const LABEL_PARTITION_PREFIX = 'LABEL#';

export function labelPartitionKey(label: string, shard: number): string {
  return `${LABEL_PARTITION_PREFIX}${labelIndexName(label)}#${shard}`;
}

export function labelSortKey(decidedAt: string, jobId: string): string {
  return `${decidedAt}#${jobId}`;
}

const CONTENT_INDEX_PREFIXES = ['CONTENT#', 'NEAR#', LABEL_PARTITION_PREFIX];

/** True for the items of the decision history (what decision events, audits and histories are made of). */
export function isDecisionItem(item: Record<string, unknown>): boolean {
  const pk = item[TABLE_KEYS.partitionKey];
  return typeof pk === 'string' && pk.startsWith(JOB_PARTITION_PREFIX);
}

/** True for the content index's items: in the table, but not decisions (no event, no history). */
export function isContentIndexItem(item: Record<string, unknown>): boolean {
  const pk = item[TABLE_KEYS.partitionKey];
  return typeof pk === 'string' && CONTENT_INDEX_PREFIXES.some((prefix) => pk.startsWith(prefix));
}

/**
 * An item of a table made by an earlier version of this project, as this version writes it: the
 * byUploader index is keyed on `uploaderKey` (sparse: not on APPROVED records) where it was keyed on
 * `uploader`, so a decision record gains `uploaderKey`; every other attribute, and every other item
 * (content index, known bad), is kept as it is. Idempotent. Used to upgrade a local data directory
 * (local/dynamodb.ts, upgradeDecisionTable); on AWS the table is the construct's and changes with a deploy.
 */
export function upgradedItem(item: Record<string, unknown>): Record<string, unknown> {
  if (!isDecisionItem(item) || 'uploaderKey' in item) return item;
  const { uploader, status } = item;
  if (typeof uploader !== 'string' || typeof status !== 'string' || STATUSES_NOT_IN_UPLOADER_INDEX.includes(status)) return item;
  return { ...item, uploaderKey: uploader };
}
