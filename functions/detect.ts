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
import { policyFor } from './policy-source.ts';
import { normaliseLabels } from './lib/taxonomy.ts';
import { decideVerdict } from './lib/verdict.ts';
import { decisionHistory, objects } from './stores.ts';
import { restoredDetection } from './restored-upload.ts';
import { contentHashOf, identicalContentDetection, knownBadDetection } from './content-reuse.ts';
import { perceptualHash, PerceptualHashError } from './lib/perceptual-hash.ts';
import { handlerConfig } from './lib/config.ts';
import { adapterOutcome } from './lib/adapter.ts';
import { normaliseETag } from './lib/object-identity.ts';
import { addFaces, analysisPlan, runAnalyses, runsAlongside, type AnalysisPlan, type AnalysisRun } from './analysis.ts';
import { applyAnalysisRules } from './lib/analysis-verdict.ts';
import { childSafetyTriggers } from './lib/analysis-policy.ts';
import type { Detection, Fingerprint, Job, ModerationState, RecordOutcome } from './lib/types.ts';
import type { Policy } from './lib/policy.ts';
import { labelTags, type Tag } from './lib/tags.ts';

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
      // A replay after a failed Apply still owes the object its label tags.
      const objectTags = await decidedObjectTags(job);
      return { ...state, decision: existing, ...(objectTags ? { objectTags } : {}) };
    }
    // The live policy's route for this upload (functions/policy-source.ts): read once, so name and version agree.
    const routed = await policyFor(job);
    const detected = withObjectTags({ ...(await detect(job, routed.policy)), policyName: routed.policy.name }, routed.policy);
    const fingerprint = fingerprints.get(job);
    // The record step indexes the bytes (docs/architecture.md, "Never pay twice for the same bytes").
    const detection = fingerprint && !detected.objectState ? { ...detected, fingerprint } : detected;
    metrics.addMetric(`Verdict${detection.verdict}`, MetricUnit.Count, 1);
    if (detection.adapter?.expired) {
      // Rekognition answered with the base model: the policy's adapter has expired (functions/lib/adapter.ts).
      metrics.addMetric('AdapterExpired', MetricUnit.Count, 1);
      logger.warn('the custom moderation adapter has expired: Rekognition answered with the base model', { ...context, adapter: detection.adapter.requested });
    }
    logger.info('detected', { ...context, verdict: detection.verdict, rule: detection.rule, labels: detection.labels.length, policy: detection.policyName, policyRoute: routed.via });
    return { ...state, detection };
  } finally {
    flushMetrics();
  }
};

/**
 * The label tags the policy asks the apply step to write (`objectTags`), from what the detection
 * found: none when the policy asks for none; left out (the object keeps its own) when there is
 * nothing to make them from.
 */
function withObjectTags(detection: Detection, policy: Policy): Detection {
  const setting = policy.analysis.objectTags;
  if (!setting) return { ...detection, objectTags: [] };
  const labels = detection.analysis?.labels ?? detection.repeatedLabels;
  return labels ? { ...detection, objectTags: labelTags(setting, labels) } : detection;
}

/** For a job decided before: the label tags of its automated record's labels under the policy in force. */
async function decidedObjectTags(job: Job): Promise<Tag[] | undefined> {
  const setting = (await policyFor(job)).policy.analysis.objectTags;
  if (!setting) return undefined;
  const labels = (await decisionHistory().automated(job.jobId))?.analysis?.labels;
  return labels ? labelTags(setting, labels) : undefined;
}

/** The job's latest decision (a human's over the automated one): a duplicate or a replay applies what stands. */
async function existingDecision(jobId: string): Promise<RecordOutcome | undefined> {
  const latest = await decisionHistory().latestDecision(jobId);
  if (!latest) return undefined;
  return { status: latest.status, decidedBy: latest.decidedBy, decidedAt: latest.decidedAt, duplicate: true };
}

async function detect(job: Job, policy: Policy): Promise<Detection> {
  const started = Date.now();
  // Labels, faces, text: what the policy (or --analyze) asks for; refused when the deployment does not enable it.
  const plan = analysisPlan(policy);
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
  const contentHash = head.bytes ? contentHashOf(head.bytes) : undefined;
  const restored = head.metadata ? await restoredDetection(job, head, contentHash, policy.version, started) : undefined;
  if (restored) return restored;
  // Never pay twice for the same bytes: these bytes decided before under this policy version.
  const reuse = handlerConfig().reuseDecisions;
  if (contentHash) fingerprints.set(job, { contentHash });
  const identical = reuse && contentHash ? await identicalContentDetection(job, contentHash, policy.version, started) : undefined;
  if (identical) return identical;

  let info;
  try {
    info = await inspectImage(await readObject(job, head.bytes, head.size <= HEADER_BYTES ? undefined : { start: 0, end: HEADER_BYTES - 1 }));
  } catch (err) {
    if (!(err instanceof UnreadableImageError)) throw err;
    // Some headers sit beyond the first bytes (e.g. a large EXIF block before a JPEG's SOF): read it all once.
    if (head.size <= HEADER_BYTES || head.size > MAX_DOWNLOAD_BYTES) return unusable(err.message);
    try {
      info = await inspectImage(await readObject(job, head.bytes));
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
  const similar = contentHash && !('hold' in ready && ready.hold) ? await perceptualHashOf(job, head.bytes, info) : undefined;
  if (similar && contentHash) fingerprints.set(job, { contentHash, perceptualHash: similar });
  const knownBad = reuse && similar ? await knownBadDetection(job, similar, policy.version, started) : undefined;
  if (knownBad) return { ...knownBad, ...shape };

  if (ready.kind === 'direct') {
    // A still JPEG/PNG within Rekognition's limits: read by S3 reference, one call (and the analyses
    // the policy asks for, at the same time: functions/analysis.ts says why not as states of their own).
    const image = { S3Object: { Bucket: job.bucket, Name: job.key, Version: job.versionId } };
    const [answer, analysed] = await Promise.all([
      moderationLabels(job, image, policy.minConfidence, policy.projectVersion),
      runsAlongside(plan) ? runAnalyses(image, plan) : undefined,
    ]);
    if ('unusable' in answer) return unusable(answer.unusable, shape);
    const labels = normaliseLabels(answer.response.ModerationLabels ?? []);
    const analysis = await childSafetyFaces(plan, policy, labels, analysed, image);
    const verdict = withAnalysis(decideVerdict(labels, policy), policy, labels, analysis);
    return {
      verdict: verdict.verdict,
      labels,
      rule: verdict.rule,
      flagged: verdict.flagged,
      ...(verdict.holdReason ? { holdReason: verdict.holdReason } : {}),
      ...(analysis ? { analysis: analysis.summary } : {}),
      policyVersion: policy.version,
      modelVersion: answer.response.ModerationModelVersion,
      ...withAdapter(policy.projectVersion, [answer.response.ProjectVersion]),
      source: 's3-object',
      ...shape,
      durationMs: Date.now() - started,
    };
  }

  // Converted: every frame counts (one frame for a still). Each frame is a DetectModerationLabels call
  // with the frame's JPEG bytes, at most policy.animation.maxFrames of them.
  if (head.size > MAX_DOWNLOAD_BYTES) return unusable(`file too large to convert (${head.size} bytes; limit ${MAX_DOWNLOAD_BYTES})`, shape);
  const converted = { ...shape, source: 'converted-bytes' as const, conversion: ready.why };
  const extraction = await framesForRekognition(await readObject(job, head.bytes), { maxFrames: policy.animation.maxFrames });
  if (extraction.kind === 'unusable') return unusable(extraction.reason, converted);

  const judged: JudgedFrame[] = [];
  let modelVersion: string | undefined;
  const answeredAdapters: Array<string | undefined> = [];
  let analysed: AnalysisRun | undefined;
  for (const frame of extraction.frames) {
    // The analyses look at the first frame, at the same time as its moderation.
    const first = judged.length === 0 && runsAlongside(plan);
    const [answer, firstAnalysis] = await Promise.all([
      moderationLabels(job, { Bytes: frame.bytes }, policy.minConfidence, policy.projectVersion),
      first ? runAnalyses({ Bytes: frame.bytes }, plan) : undefined,
    ]);
    if (firstAnalysis) analysed = { ...firstAnalysis, summary: { ...firstAnalysis.summary, ...(extraction.total > 1 ? { frame: frame.index } : {}) } };
    if ('unusable' in answer) {
      return unusable(extraction.total > 1 ? `frame ${frame.index + 1} of ${frame.total}: ${answer.unusable}` : answer.unusable, converted);
    }
    modelVersion ??= answer.response.ModerationModelVersion;
    answeredAdapters.push(answer.response.ProjectVersion);
    const labels = normaliseLabels(answer.response.ModerationLabels ?? []);
    judged.push({ index: frame.index, labels });
    // The worst frame decides and nothing is worse than REJECT: the remaining calls would change nothing.
    if (decideVerdict(labels, policy).verdict === 'REJECT') break;
  }
  if (extraction.total > 1) metrics.addMetric('FramesJudged', MetricUnit.Count, judged.length);

  const frameVerdict = combineFrameVerdicts(judged, policy, extraction, { hold: ready.hold });
  // Child safety: DetectFaces on the first judged frame with nudity or swimwear, if any.
  const flaggedFrame = plan.faces === 'conditional' ? judged.find((frame) => childSafetyTriggers(policy.analysis, frame.labels).length > 0) : undefined;
  const facesFrame = flaggedFrame ? extraction.frames.find((frame) => frame.index === flaggedFrame.index) : undefined;
  const analysis = facesFrame ? await childSafetyFaces(plan, policy, flaggedFrame!.labels, analysed, { Bytes: facesFrame.bytes }) : analysed;
  const combined = { ...frameVerdict, ...withAnalysis(frameVerdict, policy, flaggedFrame?.labels ?? frameVerdict.labels, analysis) };
  return {
    verdict: combined.verdict,
    labels: combined.labels,
    rule: combined.rule,
    flagged: combined.flagged,
    ...(combined.holdReason ? { holdReason: combined.holdReason } : {}),
    ...(analysis ? { analysis: analysis.summary } : {}),
    ...(combined.frames ? { frames: combined.frames } : {}),
    policyVersion: policy.version,
    modelVersion,
    ...withAdapter(policy.projectVersion, answeredAdapters),
    ...converted,
    durationMs: Date.now() - started,
  };
}

/**
 * The child-safety rule's DetectFaces (functions/analysis.ts): only when the plan has it conditional
 * and the moderation labels include nudity or swimwear at the rule's confidence; after moderation.
 */
async function childSafetyFaces(
  plan: AnalysisPlan,
  policy: Policy,
  labels: Detection['labels'],
  analysed: AnalysisRun | undefined,
  image: Parameters<typeof addFaces>[1],
): Promise<AnalysisRun | undefined> {
  if (plan.faces !== 'conditional' || childSafetyTriggers(policy.analysis, labels).length === 0) return analysed;
  const run = await addFaces(analysed ?? { summary: {} }, image);
  metrics.addMetric('ChildSafetyChecks', MetricUnit.Count, 1);
  return run;
}

/** The moderation verdict with the policy's label, text and child-safety rules (functions/lib/analysis-verdict.ts). */
function withAnalysis(
  verdict: { verdict: Detection['verdict'] & ('APPROVE' | 'REJECT' | 'BORDERLINE'); rule?: Detection['rule']; flagged: Detection['flagged']; holdReason?: string },
  policy: Policy,
  moderationLabels: Detection['labels'],
  analysis: AnalysisRun | undefined,
) {
  if (analysis?.summary.missing) metrics.addMetric('AnalysisMissing', MetricUnit.Count, analysis.summary.missing.length);
  return applyAnalysisRules(verdict, policy, {
    moderationLabels,
    labels: analysis?.labels,
    lines: analysis?.lines,
    faces: analysis?.faces,
    missing: analysis?.summary.missing,
    reasons: analysis?.summary.reasons,
  });
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
  projectVersion?: string,
): Promise<{ response: DetectModerationLabelsCommandOutput } | { unusable: string }> {
  try {
    const input = { Image: image, MinConfidence: minConfidence, ...(projectVersion ? { ProjectVersion: projectVersion } : {}) };
    const response = await callAws('Rekognition', () => rekognition().send(new DetectModerationLabelsCommand(input)));
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

/** The adapter part of a detection: what the policy asked for and what Rekognition answered with (functions/lib/adapter.ts). */
function withAdapter(requested: string | undefined, answered: Array<string | undefined>): Pick<Detection, 'adapter'> {
  const adapter = adapterOutcome(requested, answered);
  return adapter ? { adapter } : {};
}

type Head = 'missing' | { size: number; superseded: boolean; metadata?: Record<string, string>; bytes?: Buffer };

/**
 * The object's fingerprint per invocation, keyed by its job object (each invocation has its own; the
 * local runtime runs invocations concurrently in one process).
 */
const fingerprints = new WeakMap<Job, Fingerprint>();

/**
 * One GET (no HEAD, no range GET): the size, the ETag and the metadata, and the bytes up to
 * MAX_DOWNLOAD_BYTES, which the header parse, the conversion and the content hash all use.
 */
async function headObject(job: Job): Promise<Head> {
  const head = await objects().fetch(job, { maxBytes: MAX_DOWNLOAD_BYTES });
  if (head === 'missing') return 'missing';
  // Without versioning, the key may now hold a newer upload; that one has its own event and job.
  const superseded = !job.versionId && !!job.eTag && !!head.eTag && head.eTag !== normaliseETag(job.eTag);
  return { size: head.size, superseded, ...(head.metadata ? { metadata: head.metadata } : {}), ...(head.bytes ? { bytes: head.bytes } : {}) };
}

/** The object's bytes (or a range of them) from the one GET; S3 only for an object too large to have been read. */
async function readObject(job: Job, bytes: Buffer | undefined, range?: { start: number; end: number }): Promise<Buffer> {
  if (bytes) return range ? bytes.subarray(range.start, range.end + 1) : bytes;
  return objects().read(job, range);
}

/**
 * The perceptual hash of an image that can be decoded within the function's memory (JPEG always: it is
 * decoded at 1/8 scale), when it has enough contrast to mean something; undefined otherwise.
 */
async function perceptualHashOf(job: Job, bytes: Buffer | undefined, info: ImageInfo): Promise<string | undefined> {
  if (info.format !== 'jpeg' && decodeBudgetProblem(info)) return undefined;
  try {
    // Within the decode budget (checked above from the header), or a JPEG decoded at 1/8 scale.
    const hashed = await perceptualHash(await readObject(job, bytes), { maxPixels: info.format === 'jpeg' ? undefined : info.width * info.height * Math.max(1, info.pages) });
    return hashed.informative ? hashed.hash : undefined;
  } catch (err) {
    if (err instanceof PerceptualHashError) return undefined;
    throw err;
  }
}
