/**
 * Detect step: Rekognition DetectModerationLabels on the uploaded object, then the policy's verdict.
 *
 * Cheap path first: a job that already has a decision (a duplicate delivery, a replay) stops here
 * without paying for Rekognition. JPEG/PNG within Rekognition's limits is read by S3 reference;
 * anything else that sharp can decode is converted and sent as bytes; what is not a usable image
 * gets the verdict UNUSABLE with the reason.
 */
import { DetectModerationLabelsCommand, type DetectModerationLabelsCommandInput } from '@aws-sdk/client-rekognition';
import { rekognition } from './clients.ts';
import { callAws, ObjectUnreadableError } from './errors.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { conversionFailure, inspectImage, MAX_DOWNLOAD_BYTES, readiness, toRekognitionBytes, UnreadableImageError, type Readiness } from './lib/image.ts';
import { currentPolicy } from './policy-source.ts';
import { normaliseLabels } from './lib/taxonomy.ts';
import { decideVerdict } from './lib/verdict.ts';
import { decisionHistory, objects } from './stores.ts';
import { normaliseETag } from './lib/object-identity.ts';
import type { Detection, Job, ModerationState, RecordOutcome } from './lib/types.ts';

/** Enough of the file for any common format's header (dimensions, frame count). */
const HEADER_BYTES = 64 * 1024;

export const handler = async (state: ModerationState): Promise<ModerationState> => {
  const { job } = state;
  // Keys go on each line, not appendKeys: the local runtime runs invocations concurrently in one process.
  const context = { jobId: job.jobId, key: job.key };
  try {
    const existing = await existingDecision(job.jobId);
    if (existing) {
      logger.info('job already decided; skipping detection', { ...context, status: existing.status });
      metrics.addMetric('DuplicateJobs', MetricUnit.Count, 1);
      return { ...state, decision: existing };
    }
    const detection = await detect(job);
    metrics.addMetric(`Verdict${detection.verdict}`, MetricUnit.Count, 1);
    logger.info('detected', { ...context, verdict: detection.verdict, rule: detection.rule, labels: detection.labels.length });
    return { ...state, detection };
  } finally {
    flushMetrics();
  }
};

/** The job's latest decision (a human's over the automated one): a duplicate or a replay applies what stands. */
async function existingDecision(jobId: string): Promise<RecordOutcome | undefined> {
  const latest = await decisionHistory().latestDecision(jobId);
  if (!latest) return undefined;
  return { status: latest.status, decidedBy: latest.decidedBy, decidedAt: latest.decidedAt, duplicate: true };
}

async function detect(job: Job): Promise<Detection> {
  const started = Date.now();
  const policy = currentPolicy();
  const base = { labels: [], flagged: [], policyVersion: policy.version, durationMs: 0 };
  const unusable = (reason: string, extra: Partial<Detection> = {}): Detection => ({
    ...base,
    verdict: 'UNUSABLE',
    unusableReason: reason,
    source: 's3-object',
    ...extra,
    durationMs: Date.now() - started,
  });

  const head = await headObject(job);
  if (head === 'missing') return unusable('the object no longer exists (deleted before it was moderated)', { objectState: 'missing' });
  if (head.superseded) {
    return unusable('the object was overwritten before it was moderated; the newer upload has its own job', { objectState: 'superseded' });
  }
  if (head.size === 0) return unusable('empty file (0 bytes)');

  let info;
  try {
    info = await inspectImage(await readObject(job, head.size <= HEADER_BYTES ? undefined : { start: 0, end: HEADER_BYTES - 1 }));
  } catch (err) {
    if (!(err instanceof UnreadableImageError)) throw err;
    // Some headers sit beyond the first bytes (e.g. a large EXIF block before a JPEG's SOF): read it all once.
    if (head.size <= HEADER_BYTES || head.size > MAX_DOWNLOAD_BYTES) return unusable(err.message);
    try {
      info = await inspectImage(await readObject(job));
    } catch (again) {
      if (again instanceof UnreadableImageError) return unusable(again.message);
      throw again;
    }
  }
  const shape = { contentType: `image/${info.format}`, width: info.width, height: info.height };
  const ready: Readiness = readiness(info, head.size);
  if (ready.kind === 'unusable') return unusable(ready.reason, shape);

  let image: DetectModerationLabelsCommandInput['Image'];
  let source: Detection['source'] = 's3-object';
  let conversion: string | undefined;
  if (ready.kind === 'direct') {
    image = { S3Object: { Bucket: job.bucket, Name: job.key, Version: job.versionId } };
  } else {
    if (head.size > MAX_DOWNLOAD_BYTES) return unusable(`file too large to convert (${head.size} bytes; limit ${MAX_DOWNLOAD_BYTES})`, shape);
    try {
      const converted = await toRekognitionBytes(await readObject(job));
      image = { Bytes: converted.bytes };
    } catch (err) {
      if (err instanceof UnreadableImageError) return unusable(conversionFailure(info, err), shape);
      throw err;
    }
    source = 'converted-bytes';
    conversion = ready.why;
  }

  let response;
  try {
    response = await callAws('Rekognition', () =>
      rekognition().send(new DetectModerationLabelsCommand({ Image: image, MinConfidence: policy.minConfidence })),
    );
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'InvalidImageFormatException' || name === 'ImageTooLargeException') {
      return unusable(`Rekognition could not use the image: ${(err as Error).message || name}`, { ...shape, source });
    }
    if (name === 'InvalidS3ObjectException') {
      // Usually permissions or encryption: not the uploader's fault, and fixable; fail so an operator can replay.
      throw new ObjectUnreadableError(`Rekognition cannot read s3://${job.bucket}/${job.key}: ${(err as Error).message}`);
    }
    throw err;
  }

  const labels = normaliseLabels(response.ModerationLabels ?? []);
  const verdict = decideVerdict(labels, policy);
  return {
    verdict: verdict.verdict,
    labels,
    rule: verdict.rule,
    flagged: verdict.flagged,
    policyVersion: policy.version,
    modelVersion: response.ModerationModelVersion,
    source,
    conversion,
    ...shape,
    durationMs: Date.now() - started,
  };
}

type Head = 'missing' | { size: number; superseded: boolean };

async function headObject(job: Job): Promise<Head> {
  const head = await objects().head(job);
  if (head === 'missing') return 'missing';
  // Without versioning, the key may now hold a newer upload; that one has its own event and job.
  const superseded = !job.versionId && !!job.eTag && !!head.eTag && head.eTag !== normaliseETag(job.eTag);
  return { size: head.size, superseded };
}

function readObject(job: Job, range?: { start: number; end: number }): Promise<Buffer> {
  return objects().read(job, range);
}
