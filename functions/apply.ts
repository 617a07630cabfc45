/**
 * Apply step: enforces the decision on the object. Every status is written as a tag; REJECTED is
 * copied to the quarantine bucket and removed from the uploads bucket. Idempotent (a replay or a
 * duplicate finds the work done) and loop-free (tags and the quarantine bucket emit no
 * ObjectCreated event into the intake queue; the notification also excludes Copy).
 */
import {
  type S3Client,
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectTaggingCommand,
} from '@aws-sdk/client-s3';
import { s3 } from './clients.ts';
import { callAws } from './errors.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { handlerConfig, required } from './lib/config.ts';
import { taggingHeader, withDecisionTags } from './lib/tags.ts';
import { quarantineKeyFor } from './lib/quarantine.ts';
import type { AppliedAction, DecisionStatus, Job, ModerationState } from './lib/types.ts';

export const handler = async (state: ModerationState): Promise<ModerationState> => {
  const { job } = state;
  const status = state.decision?.status;
  let applied: AppliedAction;
  if (!status) {
    applied = { action: 'skipped', detail: 'no decision to apply' };
  } else if (state.detection?.objectState) {
    applied = { action: 'skipped', detail: `object ${state.detection.objectState}; nothing to tag or quarantine` };
  } else {
    applied = await applyDecision(s3(), job, status, required(handlerConfig(), 'quarantineBucket'));
  }
  logger.info('decision applied', { jobId: job.jobId, status, ...applied });
  metrics.addMetric(`Applied${applied.action}`, MetricUnit.Count, 1);
  flushMetrics();
  return { ...state, applied };
};

/**
 * Enforces a status on one object version: a tag, or for REJECTED the move to quarantine. Also used
 * by `moderation review approve|reject` for a human's decision, with the CLI's own S3 client.
 */
export async function applyDecision(client: S3Client, job: Job, status: DecisionStatus, quarantineBucket: string): Promise<AppliedAction> {
  return status === 'REJECTED' ? quarantine(client, job, status, quarantineBucket) : tag(client, job, status);
}

async function tag(client: S3Client, job: Job, status: DecisionStatus): Promise<AppliedAction> {
  try {
    const current = await callAws('S3', () => client.send(new GetObjectTaggingCommand({ Bucket: job.bucket, Key: job.key, VersionId: job.versionId })));
    const tags = withDecisionTags((current.TagSet ?? []) as { Key: string; Value: string }[], status, job.jobId);
    await callAws('S3', () =>
      client.send(new PutObjectTaggingCommand({ Bucket: job.bucket, Key: job.key, VersionId: job.versionId, Tagging: { TagSet: tags } })),
    );
    return { action: 'tagged', detail: `tagged moderation-status=${status}` };
  } catch (err) {
    if (isMissing(err)) return { action: 'skipped', detail: 'object deleted before the decision was applied' };
    throw err;
  }
}

async function quarantine(client: S3Client, job: Job, status: DecisionStatus, quarantineBucket: string): Promise<AppliedAction> {
  const quarantineKey = quarantineKeyFor(job.bucket, job.key);
  const stillInUploads = await exists(client, job.bucket, job.key, job.versionId);
  if (!stillInUploads) {
    const alreadyQuarantined = await exists(client, quarantineBucket, quarantineKey);
    return alreadyQuarantined
      ? { action: 'quarantined', detail: 'already quarantined', quarantineKey }
      : { action: 'skipped', detail: 'object deleted before the decision was applied' };
  }
  const source = `${job.bucket}/${encodeURIComponent(job.key).replace(/%2F/g, '/')}${job.versionId ? `?versionId=${encodeURIComponent(job.versionId)}` : ''}`;
  try {
    await callAws('S3', () =>
      client.send(
        new CopyObjectCommand({
          Bucket: quarantineBucket,
          Key: quarantineKey,
          CopySource: source,
          // Unversioned: copy only the bytes that were judged, not a newer upload under the same key.
          CopySourceIfMatch: !job.versionId && job.eTag ? job.eTag : undefined,
          TaggingDirective: 'REPLACE',
          Tagging: taggingHeader(withDecisionTags([], status, job.jobId)),
          MetadataDirective: 'COPY',
        }),
      ),
    );
  } catch (err) {
    if ((err as Error).name === 'PreconditionFailed' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412) {
      return { action: 'skipped', detail: 'object was overwritten before the decision was applied; the newer upload has its own job' };
    }
    if (isMissing(err)) return { action: 'skipped', detail: 'object deleted before the decision was applied' };
    throw err;
  }
  await callAws('S3', () => client.send(new DeleteObjectCommand({ Bucket: job.bucket, Key: job.key, VersionId: job.versionId })));
  return { action: 'quarantined', detail: `moved to s3://${quarantineBucket}/${quarantineKey}`, quarantineKey };
}

async function exists(client: S3Client, bucket: string, key: string, versionId?: string): Promise<boolean> {
  try {
    await callAws('S3', () => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId })));
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.name === 'NoSuchVersion' || e.$metadata?.httpStatusCode === 404;
}
