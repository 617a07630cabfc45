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
/**
 * A label tag: `moderation-label:Car` = `97` (DetectLabels confidence, rounded), written when the
 * policy's `objectTags.labels` asks. The key names the label, so a platform finds it with
 * GetObjectTagging or an IAM condition (`s3:ExistingObjectTag/moderation-label:Car`); a pipeline
 * tag like the others, so uploaders cannot forge one.
 */
export const LABEL_TAG_PREFIX = `${PIPELINE_TAG_PREFIX}label:`;
/** Room for labels: the ten less the status and job tags. */
export const MAX_LABEL_TAGS = MAX_TAGS - 2;
/** S3's limits: a key of 128 characters, a value of 256. */
const MAX_TAG_KEY_CHARS = 128;

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
 * Label tags (labelTags below) come last: they fill what room is left, most confident first.
 * `labels` undefined keeps the object's label tags as they are: a person's decision changes the
 * status, not what the image shows.
 */
export function withDecisionTags(existing: Tag[], status: DecisionStatus, jobId: string, labels?: readonly Tag[]): DecisionTags {
  const kept = existing.filter((tag) => !tag.Key.startsWith(PIPELINE_TAG_PREFIX));
  const labelTagsWanted = labels ?? labelTagsIn(existing);
  const room = MAX_TAGS - kept.length;
  if (room >= 2) {
    const fit = labelTagsWanted.slice(0, room - 2);
    return {
      tags: [...kept, { Key: STATUS_TAG, Value: status }, { Key: JOB_TAG, Value: jobId }, ...fit],
      dropped: labelTagsWanted.slice(fit.length).map((tag) => tag.Key),
    };
  }
  const own = kept.slice(0, MAX_TAGS - 1);
  const dropped = [JOB_TAG, ...kept.slice(MAX_TAGS - 1).map((tag) => tag.Key), ...labelTagsWanted.map((tag) => tag.Key)];
  return { tags: [...own, { Key: STATUS_TAG, Value: status }], dropped };
}

/** The label tags among an object's tags. */
export function labelTagsIn(tags: readonly Tag[]): Tag[] {
  return tags.filter((tag) => tag.Key.startsWith(LABEL_TAG_PREFIX));
}

/** What a policy's `objectTags` asks to write (analysis-policy.ts). */
export interface ObjectTagsSetting {
  /** At most this many label tags (0 to MAX_LABEL_TAGS). */
  labels: number;
  /** Only labels found at this DetectLabels confidence or above. */
  minConfidence: number;
}

/**
 * The label tags for what DetectLabels found: the most confident labels at or above the setting's
 * confidence, at most `labels` of them. A name keeps only what S3 allows in a tag key (letters,
 * digits, spaces and + - = . _ : / @); one that keeps nothing is left out, and so is a second label
 * that comes to the same key.
 */
export function labelTags(setting: ObjectTagsSetting | undefined, found: readonly { name: string; confidence: number }[] | undefined): Tag[] {
  if (!setting || setting.labels <= 0 || !found) return [];
  const tags: Tag[] = [];
  for (const label of [...found].sort((a, b) => b.confidence - a.confidence)) {
    if (tags.length >= setting.labels || label.confidence < setting.minConfidence) break;
    const name = tagSafe(label.name).slice(0, MAX_TAG_KEY_CHARS - LABEL_TAG_PREFIX.length).trim();
    const key = `${LABEL_TAG_PREFIX}${name}`;
    if (!name || tags.some((tag) => tag.Key === key)) continue;
    tags.push({ Key: key, Value: String(Math.round(label.confidence)) });
  }
  return tags;
}

/** The characters S3 allows in a tag (letters and digits of any script, spaces, + - = . _ : / @), spaces collapsed. */
function tagSafe(text: string): string {
  return text
    .replace(/[^\p{L}\p{N} +\-=._:/@]/gu, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The `x-amz-tagging` header form (URL query encoding) for PutObject / CopyObject. */
export function taggingHeader(tags: Tag[]): string {
  return tags.map((tag) => `${encodeURIComponent(tag.Key)}=${encodeURIComponent(tag.Value)}`).join('&');
}
