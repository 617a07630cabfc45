/**
 * The object tags that carry a decision back to the upload platform. Tags, not metadata: changing
 * tags neither rewrites the object nor emits an ObjectCreated event (no trigger loop), and the
 * uploads bucket's policy serves an object only when its status tag says APPROVED.
 */
import type { DecisionStatus } from './types.ts';

export const STATUS_TAG = 'moderation-status';
export const JOB_TAG = 'moderation-job';
/** Every tag key the pipeline owns starts with this; uploaders may not write them (bucket policy). */
export const PIPELINE_TAG_PREFIX = 'moderation-';
/** S3 allows ten tags per object. */
export const MAX_TAGS = 10;

export interface Tag {
  Key: string;
  Value: string;
}

export interface DecisionTags {
  tags: Tag[];
  /** Tags that had to go so the status tag fits in S3's ten: said in the apply step's detail. */
  dropped: string[];
}

/**
 * The object's tags with the decision's set or replaced; the uploader's own tags are kept while they
 * fit. The status tag must always be written (the serving gate reads it), so on an object that
 * already carries ten tags the job tag is left out first, then the uploader's last tags make room.
 */
export function withDecisionTags(existing: Tag[], status: DecisionStatus, jobId: string): DecisionTags {
  const kept = existing.filter((tag) => !tag.Key.startsWith(PIPELINE_TAG_PREFIX));
  const room = MAX_TAGS - kept.length;
  if (room >= 2) return { tags: [...kept, { Key: STATUS_TAG, Value: status }, { Key: JOB_TAG, Value: jobId }], dropped: [] };
  const own = kept.slice(0, MAX_TAGS - 1);
  const dropped = [JOB_TAG, ...kept.slice(MAX_TAGS - 1).map((tag) => tag.Key)];
  return { tags: [...own, { Key: STATUS_TAG, Value: status }], dropped };
}

/** The `x-amz-tagging` header form (URL query encoding) for PutObject / CopyObject. */
export function taggingHeader(tags: Tag[]): string {
  return tags.map((tag) => `${encodeURIComponent(tag.Key)}=${encodeURIComponent(tag.Value)}`).join('&');
}
