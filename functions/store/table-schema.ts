/**
 * The decision history's key design, shared by the CDK construct and the local runtime so both
 * build the same table.
 *
 * Base table: pk `JOB#<jobId>`, sk `DECISION#auto` (the automated decision, written once with a
 * condition), `DECISION#human#<time>` (appended human decisions), `FAILURE#<time>`.
 * GSIs (all sorted by decidedAt, ISO 8601, so a Query is in time order):
 * - byImage:    imageKey = `<bucket>/<key>`              → the history of one image
 * - byStatus:   statusShard = `<STATUS>#<shard>`         → write-sharded so 1,000 decisions/s never heat
 *               one partition; readers fan out over the shards and merge
 * - byUploader: uploader
 * - byCategory: category (top-level category of the deciding label; sparse)
 */
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

export function jobPartitionKey(jobId: string): string {
  return `JOB#${jobId}`;
}

export function humanDecisionSortKey(decidedAt: string): string {
  return `DECISION#human#${decidedAt}`;
}

export function failureSortKey(failedAt: string): string {
  return `FAILURE#${failedAt}`;
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
