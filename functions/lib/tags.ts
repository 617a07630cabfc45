/**
 * The object tags that carry a decision back to the upload platform. Tags, not metadata: changing
 * tags neither rewrites the object nor emits an ObjectCreated event (no trigger loop).
 */
import type { DecisionStatus } from './types.ts';

export const STATUS_TAG = 'moderation-status';
export const JOB_TAG = 'moderation-job';
/** S3 allows ten tags per object. */
const MAX_TAGS = 10;

export interface Tag {
  Key: string;
  Value: string;
}

export class TooManyTagsError extends Error {
  override name = 'TooManyTags';
}

/** The object's tags with the decision's set or replaced; the uploader's own tags are kept. */
export function withDecisionTags(existing: Tag[], status: DecisionStatus, jobId: string): Tag[] {
  const kept = existing.filter((tag) => tag.Key !== STATUS_TAG && tag.Key !== JOB_TAG);
  const tags = [...kept, { Key: STATUS_TAG, Value: status }, { Key: JOB_TAG, Value: jobId }];
  if (tags.length > MAX_TAGS) {
    throw new TooManyTagsError(`the object already has ${kept.length} tags; the decision needs 2 of S3's 10`);
  }
  return tags;
}

/** The `x-amz-tagging` header form (URL query encoding) for PutObject / CopyObject. */
export function taggingHeader(tags: Tag[]): string {
  return tags.map((tag) => `${encodeURIComponent(tag.Key)}=${encodeURIComponent(tag.Value)}`).join('&');
}
