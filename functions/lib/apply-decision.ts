/**
 * Enforcing a decision on one object version: a tag, or for REJECTED the move to the quarantine
 * bucket. Idempotent (a replay or a duplicate finds the work done) and loop-free (tags and the
 * quarantine bucket emit no ObjectCreated event into the intake queue). Used by the apply step for
 * the pipeline's decisions and by the CLI and console for a human's, over the same object store.
 */
import type { ObjectHead, ObjectRef, ObjectStore } from '../store/object-store.ts';
import { normaliseETag } from './object-identity.ts';
import { quarantineKeyFor } from './quarantine.ts';
import { JOB_TAG, LABEL_TAG_PREFIX, labelTagsIn, withDecisionTags, type Tag } from './tags.ts';
import type { AppliedAction, DecisionStatus, Job } from './types.ts';

const GONE: AppliedAction = { action: 'skipped', detail: 'object deleted before the decision was applied' };
const OVERWRITTEN: AppliedAction = {
  action: 'skipped',
  detail: 'object was overwritten before the decision was applied; the newer upload has its own job',
};

/**
 * `labels`: the label tags to write with the decision (the policy's `objectTags`; [] for none);
 * undefined keeps the object's own, as a person's decision does (functions/lib/tags.ts).
 */
export async function applyDecision(objects: ObjectStore, job: Job, status: DecisionStatus, quarantineBucket: string, labels?: readonly Tag[]): Promise<AppliedAction> {
  return status === 'REJECTED' ? quarantine(objects, job, status, quarantineBucket, labels) : tag(objects, job, status, labels);
}

async function tag(objects: ObjectStore, job: Job, status: DecisionStatus, labels: readonly Tag[] | undefined): Promise<AppliedAction> {
  if (!job.versionId && job.eTag) {
    // Unversioned, tags go to whatever object the key holds now, and PutObjectTagging takes no ETag
    // condition: a newer upload must not get this job's status (it has its own job). Checked just
    // before the write, so the window is that of two requests, not of the whole job.
    const now = await objects.head(job);
    if (now === 'missing') return GONE;
    if (now.eTag !== normaliseETag(job.eTag)) return OVERWRITTEN;
  }
  const current = await objects.readTags(job);
  if (current === 'missing') return GONE;
  const { tags, dropped } = withDecisionTags(current, status, job.jobId, labels);
  if ((await objects.writeTags(job, tags)) === 'missing') return GONE;
  const note = dropped.length ? ` (the object had ${current.length} tags: left out ${dropped.join(', ')} to stay within S3's 10)` : '';
  const written = labelTagsIn(tags).map((t) => t.Key.slice(LABEL_TAG_PREFIX.length));
  const labelNote = labels !== undefined && written.length ? ` and ${written.length} label tag${written.length > 1 ? 's' : ''} (${written.join(', ')})` : '';
  return { action: 'tagged', detail: `tagged moderation-status=${status}${labelNote}${note}` };
}

async function quarantine(objects: ObjectStore, job: Job, status: DecisionStatus, quarantineBucket: string, labels: readonly Tag[] | undefined): Promise<AppliedAction> {
  const quarantineKey = quarantineKeyFor(job.bucket, job.key);
  if ((await objects.head(job)) === 'missing') {
    const alreadyQuarantined = (await objects.head({ bucket: quarantineBucket, key: quarantineKey })) !== 'missing';
    return alreadyQuarantined ? { action: 'quarantined', detail: 'already quarantined', quarantineKey } : GONE;
  }
  // A person's decision (no labels given): the copy keeps the object's label tags, for a restore.
  const existing = labels === undefined ? await objects.readTags(job) : [];
  const labelsKept = labels ?? (existing === 'missing' ? [] : labelTagsIn(existing));
  const copied = await objects.copyToQuarantine(job, {
    quarantineBucket,
    quarantineKey,
    // Unversioned: copy only the bytes that were judged, not a newer upload under the same key.
    ifMatch: !job.versionId && job.eTag ? job.eTag : undefined,
    tags: withDecisionTags([], status, job.jobId, labelsKept).tags,
  });
  if (copied === 'superseded') return OVERWRITTEN;
  if (copied === 'missing') return GONE;
  await objects.delete(job);
  return { action: 'quarantined', detail: `moved to s3://${quarantineBucket}/${quarantineKey}`, quarantineKey };
}

/**
 * The user metadata a restore puts on the object it writes back: the job whose appeal was granted.
 * Only a hint (anyone who may upload can set metadata): Detect trusts it only when that job's
 * latest decision is a granted appeal of the same key with the same bytes (functions/restored-upload.ts).
 */
export const RESTORED_FROM_METADATA = 'moderation-restored-from';

/** The quarantine copy of a job's object, if it is there and is that job's (not another upload of the key). */
export async function quarantinedCopy(
  objects: ObjectStore,
  job: Job,
  quarantineBucket: string,
): Promise<{ ref: ObjectRef; head: ObjectHead; labels: Tag[] } | { reason: string }> {
  const ref: ObjectRef = { bucket: quarantineBucket, key: quarantineKeyFor(job.bucket, job.key) };
  const where = `s3://${ref.bucket}/${ref.key}`;
  const head = await objects.head(ref);
  if (head === 'missing') return { reason: `there is no copy in quarantine (${where})` };
  // One quarantine key per upload key: a later rejected upload of the same key replaces the copy.
  const tags = await objects.readTags(ref);
  const owner = tags === 'missing' ? undefined : tags.find((tag) => tag.Key === JOB_TAG)?.Value;
  const ours = owner ? owner === job.jobId : !job.eTag || normaliseETag(job.eTag) === head.eTag;
  if (!ours) return { reason: `the copy in quarantine (${where}) is of another upload of this key${owner ? ` (job ${owner})` : ''}` };
  // Its label tags (the policy's objectTags) go back with it when it is restored.
  return { ref, head, labels: tags === 'missing' ? [] : labelTagsIn(tags) };
}

/**
 * A granted appeal: the rejected object comes back from the quarantine bucket to its key in the
 * uploads bucket (a new object there), tagged APPROVED and marked with the job (RESTORED_FROM_METADATA),
 * and the quarantine copy is deleted. Idempotent: a copy already restored is tagged again. A newer
 * upload under the key is never overwritten; an object that was never moved is only tagged.
 */
export async function restoreFromQuarantine(objects: ObjectStore, job: Job, quarantineBucket: string): Promise<AppliedAction> {
  const current = await objects.head({ bucket: job.bucket, key: job.key });
  if (current !== 'missing') {
    if (current.metadata?.[RESTORED_FROM_METADATA] === job.jobId) {
      const restoredRef = { bucket: job.bucket, key: job.key, ...(current.versionId ? { versionId: current.versionId } : {}) };
      const existing = await objects.readTags(restoredRef);
      const outcome = existing === 'missing' ? 'missing' : await objects.writeTags(restoredRef, withDecisionTags(existing, 'APPROVED', job.jobId).tags);
      if (outcome === 'done') return { action: 'restored', detail: 'already restored from quarantine; tagged moderation-status=APPROVED' };
    }
    const judged = job.versionId ? await objects.head(job) : normaliseETag(job.eTag) === current.eTag ? current : 'missing';
    if (judged !== 'missing') return tag(objects, job, 'APPROVED', undefined);
    return {
      action: 'skipped',
      detail: `the key now holds a newer upload (it has its own job): the approved object stays in quarantine at s3://${quarantineBucket}/${quarantineKeyFor(job.bucket, job.key)}`,
    };
  }
  const copy = await quarantinedCopy(objects, job, quarantineBucket);
  if ('reason' in copy) return { action: 'skipped', detail: `nothing to restore: ${copy.reason}` };
  const restored = await objects.restoreFromQuarantine(copy.ref, {
    to: { bucket: job.bucket, key: job.key },
    tags: withDecisionTags([], 'APPROVED', job.jobId, copy.labels).tags,
    metadata: { [RESTORED_FROM_METADATA]: job.jobId },
  });
  if (restored.outcome === 'missing') return { action: 'skipped', detail: 'nothing to restore: the quarantine copy was deleted meanwhile' };
  return {
    action: 'restored',
    detail: `restored from s3://${copy.ref.bucket}/${copy.ref.key} to s3://${job.bucket}/${job.key}${restored.versionId ? ` (version ${restored.versionId})` : ''}, tagged moderation-status=APPROVED`,
  };
}
