/**
 * Detect step: Rekognition DetectModerationLabels on the uploaded object, then the policy's verdict.
 *
 * Cheap path first: a job that already has a decision (a duplicate delivery, a replay) stops here
 * without paying for Rekognition. JPEG/PNG within Rekognition's limits is read by S3 reference;
 * anything else that sharp can decode is converted and sent as bytes; what is not a usable image
 * gets the verdict UNUSABLE with the reason.
 */
import { DetectModerationLabelsCommand, type DetectModerationLabelsCommandInput, type DetectModerationLabelsCommandOutput } from '@aws-sdk/client-rekognition';
import { rekognition } from './clients.ts';
import { callAws, ObjectUnreadableError } from './errors.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { decodeBudgetProblem, inspectImage, MAX_DOWNLOAD_BYTES, readiness, UnreadableImageError, type ImageInfo, type Readiness } from './lib/image.ts';
import { framesForRekognition } from './lib/frames.ts';
import { combineFrameVerdicts, type JudgedFrame } from './lib/frame-verdict.ts';
import { currentPolicy } from './policy-source.ts';
import { normaliseLabels } from './lib/taxonomy.ts';
import { decideVerdict } from './lib/verdict.ts';
import { decisionHistory, objects } from './stores.ts';
import { restoredDetection } from './restored-upload.ts';
import { contentHashOf, identicalContentDetection, knownBadDetection } from './content-reuse.ts';
import { perceptualHash, PerceptualHashError } from './lib/perceptual-hash.ts';
import { handlerConfig } from './lib/config.ts';
import { normaliseETag } from './lib/object-identity.ts';
import type { Detection, Fingerprint, Job, ModerationState, RecordOutcome } from './lib/types.ts';

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
    const detected = await detect(job);
    const fingerprint = fingerprints.get(job);
    // The record step indexes the bytes (docs/architecture.md, "Never pay twice for the same bytes").
    const detection = fingerprint && !detected.objectState ? { ...detected, fingerprint } : detected;
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
  // A copy a granted appeal restored from quarantine: the human decision carries over (no Rekognition).
  const restored = head.metadata ? await restoredDetection(job, head, policy.version, started) : undefined;
  if (restored) return restored;
  // Never pay twice for the same bytes: these bytes decided before under this policy version.
  const reuse = handlerConfig().reuseDecisions;
  const contentHash = head.bytes ? contentHashOf(head.bytes) : undefined;
  if (contentHash) fingerprints.set(job, { contentHash });
  const identical = reuse && contentHash ? await identicalContentDetection(job, contentHash, policy.version, started) : undefined;
  if (identical) return identical;

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
  // The header decides, before anything is decoded: SVG per the policy, the decode memory budget, animations.
  const ready: Readiness = readiness(info, head.size, { svg: policy.formats.svg });
  if (ready.kind === 'unusable') return unusable(ready.reason, shape);
  // Known bad: a near-duplicate of an image REJECTED under this policy is rejected without Rekognition.
  const similar = contentHash && !('hold' in ready && ready.hold) ? await perceptualHashOf(job, info) : undefined;
  if (similar && contentHash) fingerprints.set(job, { contentHash, perceptualHash: similar });
  const knownBad = reuse && similar ? await knownBadDetection(job, similar, policy.version, started) : undefined;
  if (knownBad) return { ...knownBad, ...shape };

  if (ready.kind === 'direct') {
    // A still JPEG/PNG within Rekognition's limits: read by S3 reference, one call.
    const answer = await moderationLabels(job, { S3Object: { Bucket: job.bucket, Name: job.key, Version: job.versionId } }, policy.minConfidence);
    if ('unusable' in answer) return unusable(answer.unusable, shape);
    const labels = normaliseLabels(answer.response.ModerationLabels ?? []);
    const verdict = decideVerdict(labels, policy);
    return {
      verdict: verdict.verdict,
      labels,
      rule: verdict.rule,
      flagged: verdict.flagged,
      policyVersion: policy.version,
      modelVersion: answer.response.ModerationModelVersion,
      source: 's3-object',
      ...shape,
      durationMs: Date.now() - started,
    };
  }

  // Converted: every frame counts (one frame for a still). Each frame is a DetectModerationLabels call
  // with the frame's JPEG bytes, at most policy.animation.maxFrames of them.
  if (head.size > MAX_DOWNLOAD_BYTES) return unusable(`file too large to convert (${head.size} bytes; limit ${MAX_DOWNLOAD_BYTES})`, shape);
  const converted = { ...shape, source: 'converted-bytes' as const, conversion: ready.why };
  const extraction = await framesForRekognition(await readObject(job), { maxFrames: policy.animation.maxFrames });
  if (extraction.kind === 'unusable') return unusable(extraction.reason, converted);

  const judged: JudgedFrame[] = [];
  let modelVersion: string | undefined;
  for (const frame of extraction.frames) {
    const answer = await moderationLabels(job, { Bytes: frame.bytes }, policy.minConfidence);
    if ('unusable' in answer) {
      return unusable(extraction.total > 1 ? `frame ${frame.index + 1} of ${frame.total}: ${answer.unusable}` : answer.unusable, converted);
    }
    modelVersion ??= answer.response.ModerationModelVersion;
    const labels = normaliseLabels(answer.response.ModerationLabels ?? []);
    judged.push({ index: frame.index, labels });
    // The worst frame decides and nothing is worse than REJECT: the remaining calls would change nothing.
    if (decideVerdict(labels, policy).verdict === 'REJECT') break;
  }
  if (extraction.total > 1) metrics.addMetric('FramesJudged', MetricUnit.Count, judged.length);

  const combined = combineFrameVerdicts(judged, policy, extraction, { hold: ready.hold });
  return {
    verdict: combined.verdict,
    labels: combined.labels,
    rule: combined.rule,
    flagged: combined.flagged,
    ...(combined.holdReason ? { holdReason: combined.holdReason } : {}),
    ...(combined.frames ? { frames: combined.frames } : {}),
    policyVersion: policy.version,
    modelVersion,
    ...converted,
    durationMs: Date.now() - started,
  };
}

/**
 * One DetectModerationLabels call. What Rekognition refuses as an image is the uploader's problem
 * (UNUSABLE); what it cannot read by reference is ours (ObjectUnreadable: FAILED, replayable); the
 * rest (throttling, outages) is thrown for the state machine's Retry.
 */
async function moderationLabels(
  job: Job,
  image: DetectModerationLabelsCommandInput['Image'],
  minConfidence: number,
): Promise<{ response: DetectModerationLabelsCommandOutput } | { unusable: string }> {
  try {
    const response = await callAws('Rekognition', () => rekognition().send(new DetectModerationLabelsCommand({ Image: image, MinConfidence: minConfidence })));
    return { response };
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'InvalidImageFormatException' || name === 'ImageTooLargeException') {
      return { unusable: `Rekognition could not use the image: ${(err as Error).message || name}` };
    }
    if (name === 'InvalidS3ObjectException') {
      // Usually permissions or encryption: not the uploader's fault, and fixable; fail so an operator can replay.
      throw new ObjectUnreadableError(`Rekognition cannot read s3://${job.bucket}/${job.key}: ${(err as Error).message}`);
    }
    throw err;
  }
}

type Head = 'missing' | { size: number; superseded: boolean; metadata?: Record<string, string>; bytes?: Buffer };

/**
 * The object's bytes and fingerprint per invocation, keyed by its job object (each invocation has its
 * own; the local runtime runs invocations concurrently in one process).
 */
const fetched = new WeakMap<Job, Buffer>();
const fingerprints = new WeakMap<Job, Fingerprint>();

/**
 * One GET (no HEAD, no range GET): the size, the ETag and the metadata, and the bytes up to
 * MAX_DOWNLOAD_BYTES, which the header parse, the conversion and the content hash all use.
 */
async function headObject(job: Job): Promise<Head> {
  const head = await objects().fetch(job, { maxBytes: MAX_DOWNLOAD_BYTES });
  if (head === 'missing') return 'missing';
  if (head.bytes) fetched.set(job, head.bytes);
  // Without versioning, the key may now hold a newer upload; that one has its own event and job.
  const superseded = !job.versionId && !!job.eTag && !!head.eTag && head.eTag !== normaliseETag(job.eTag);
  return { size: head.size, superseded, ...(head.metadata ? { metadata: head.metadata } : {}), ...(head.bytes ? { bytes: head.bytes } : {}) };
}

/** The object's bytes (or a range of them) from the one GET; S3 only for an object too large to have been read. */
async function readObject(job: Job, range?: { start: number; end: number }): Promise<Buffer> {
  const bytes = fetched.get(job);
  if (bytes) return range ? bytes.subarray(range.start, range.end + 1) : bytes;
  return objects().read(job, range);
}

/**
 * The perceptual hash of an image that can be decoded within the function's memory (JPEG always: it is
 * decoded at 1/8 scale), when it has enough contrast to mean something; undefined otherwise.
 */
async function perceptualHashOf(job: Job, info: ImageInfo): Promise<string | undefined> {
  if (info.format !== 'jpeg' && decodeBudgetProblem(info)) return undefined;
  try {
    // Within the decode budget (checked above from the header), or a JPEG decoded at 1/8 scale.
    const hashed = await perceptualHash(await readObject(job), { maxPixels: info.format === 'jpeg' ? undefined : info.width * info.height * Math.max(1, info.pages) });
    return hashed.informative ? hashed.hash : undefined;
  } catch (err) {
    if (err instanceof PerceptualHashError) return undefined;
    throw err;
  }
}
