/**
 * Enforcing a decision on one object version: a tag, or for REJECTED the move to the quarantine
 * bucket. Idempotent (a replay or a duplicate finds the work done) and loop-free (tags and the
 * quarantine bucket emit no ObjectCreated event into the intake queue). Used by the apply step for
 * the pipeline's decisions and by the CLI and console for a human's, over the same object store.
 */
import type { ObjectStore } from '../store/object-store.ts';
import { quarantineKeyFor } from './quarantine.ts';
import { withDecisionTags } from './tags.ts';
import type { AppliedAction, DecisionStatus, Job } from './types.ts';

const GONE: AppliedAction = { action: 'skipped', detail: 'object deleted before the decision was applied' };
const OVERWRITTEN: AppliedAction = {
  action: 'skipped',
  detail: 'object was overwritten before the decision was applied; the newer upload has its own job',
};

export async function applyDecision(objects: ObjectStore, job: Job, status: DecisionStatus, quarantineBucket: string): Promise<AppliedAction> {
  return status === 'REJECTED' ? quarantine(objects, job, status, quarantineBucket) : tag(objects, job, status);
}

async function tag(objects: ObjectStore, job: Job, status: DecisionStatus): Promise<AppliedAction> {
  const current = await objects.readTags(job);
  if (current === 'missing') return GONE;
  const { tags, dropped } = withDecisionTags(current, status, job.jobId);
  if ((await objects.writeTags(job, tags)) === 'missing') return GONE;
  const note = dropped.length ? ` (the object had ${current.length} tags: left out ${dropped.join(', ')} to stay within S3's 10)` : '';
  return { action: 'tagged', detail: `tagged moderation-status=${status}${note}` };
}

async function quarantine(objects: ObjectStore, job: Job, status: DecisionStatus, quarantineBucket: string): Promise<AppliedAction> {
  const quarantineKey = quarantineKeyFor(job.bucket, job.key);
  if ((await objects.head(job)) === 'missing') {
    const alreadyQuarantined = (await objects.head({ bucket: quarantineBucket, key: quarantineKey })) !== 'missing';
    return alreadyQuarantined ? { action: 'quarantined', detail: 'already quarantined', quarantineKey } : GONE;
  }
  const copied = await objects.copyToQuarantine(job, {
    quarantineBucket,
    quarantineKey,
    // Unversioned: copy only the bytes that were judged, not a newer upload under the same key.
    ifMatch: !job.versionId && job.eTag ? job.eTag : undefined,
    tags: withDecisionTags([], status, job.jobId).tags,
  });
  if (copied === 'superseded') return OVERWRITTEN;
  if (copied === 'missing') return GONE;
  await objects.delete(job);
  return { action: 'quarantined', detail: `moved to s3://${quarantineBucket}/${quarantineKey}`, quarantineKey };
}
