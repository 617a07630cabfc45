/**
 * From what the workflow found to the record an auditor reads: the final status, who decided it
 * and why. Append-only: each function here builds a new history entry; the decision store
 * (functions/store/) adds the table's keys when it writes one.
 */
import { topLevelCategory } from './taxonomy.ts';
import { estimateDecisionCostUsd } from './pricing.ts';
import { isQualitySampled } from './quality.ts';
import type { CaughtError, Decision, DecisionStatus, Job, ModerationState, ReusedDecision } from './types.ts';

export interface Outcome {
  status: DecisionStatus;
  decidedBy: string;
  reason: string;
}

export class IncompleteStateError extends Error {
  override name = 'IncompleteState';
}

/** The final status of an automated decision, with who decided it and a sentence saying why. */
export function outcomeOf(state: ModerationState): Outcome {
  const detection = state.detection;
  if (!detection) throw new IncompleteStateError(`job ${state.job.jobId} reached the record step without a detection`);
  const rule = detection.rule;
  // A labels, text or child-safety rule (analysis-policy.ts) says why in its own words.
  const because = rule ? (rule.reason ?? `${rule.label} ${rule.confidence.toFixed(1)}% ≥ ${rule.action} threshold ${rule.threshold} of rule "${rule.category}"`) : '';
  // A repeat of an earlier decision (the same bytes, or a near-duplicate of a rejected image): it stands.
  if (detection.reusedFrom) return reusedOutcome(detection.reusedFrom);
  switch (detection.verdict) {
    case 'UNUSABLE':
      return { status: 'UNUSABLE', decidedBy: 'policy', reason: detection.unusableReason ?? 'the file is not a usable image' };
    case 'REJECT':
      return { status: 'REJECTED', decidedBy: 'rekognition', reason: because };
    case 'APPROVE':
      if (detection.restoredFrom) {
        const from = detection.restoredFrom;
        return { status: 'APPROVED', decidedBy: 'policy', reason: `restored from quarantine: the same bytes were approved on appeal by ${from.decidedBy} (job ${from.jobId})` };
      }
      return { status: 'APPROVED', decidedBy: 'rekognition', reason: rule ? because : 'no label reached a review threshold' };
    case 'BORDERLINE': {
      // Only a human may decide (an SVG, an animation not judged whole): never an LLM's approval.
      if (detection.holdReason) return { status: 'REVIEW', decidedBy: 'policy', reason: rule ? `${detection.holdReason} (worst frame: ${because})` : detection.holdReason };
      const review = state.review;
      if (review) {
        const status: DecisionStatus = review.decision === 'APPROVE' ? 'APPROVED' : review.decision === 'REJECT' ? 'REJECTED' : 'REVIEW';
        return { status, decidedBy: `bedrock:${review.modelId}`, reason: review.reason };
      }
      if (state.reviewError) {
        return {
          status: 'REVIEW',
          decidedBy: 'policy',
          reason: `borderline (${because}); contextual review failed (${state.reviewError.Error}), held for a human`,
        };
      }
      return { status: 'REVIEW', decidedBy: 'policy', reason: `borderline (${because}); held for a human` };
    }
  }
}

/**
 * The automated decision's item: one per job, written with a condition so a duplicate writes nothing.
 * `qualitySampleRate`: the share of APPROVED and REJECTED decisions that also go to the review queue
 * blind (functions/lib/quality.ts; chosen by the job id, so a redelivery chooses the same).
 */
export function automatedRecord(state: ModerationState, options: { decidedAt: string; policyName?: string; qualitySampleRate?: number }): Decision {
  const { job, detection, review } = state;
  const outcome = outcomeOf(state);
  const rule = detection?.rule;
  const restored = detection?.restoredFrom;
  const sampled =
    (outcome.status === 'APPROVED' || outcome.status === 'REJECTED') && !restored && isQualitySampled(job.jobId, options.qualitySampleRate ?? 0);
  return {
    ...identity(job, outcome.status, options.decidedAt),
    kind: 'automated',
    decidedBy: outcome.decidedBy,
    reason: outcome.reason,
    labels: detection?.labels ?? [],
    rule,
    category: rule ? categoryOf(rule) : undefined,
    policyVersion: detection?.policyVersion,
    policyName: options.policyName,
    modelVersion: detection?.modelVersion,
    // Labels, faces and text the policy asked for, bounded (functions/lib/analysis.ts), and what is missing.
    ...(detection?.analysis ? { analysis: detection.analysis } : {}),
    // The custom moderation adapter asked for and the one that answered (functions/lib/adapter.ts).
    ...(detection?.adapter ? { adapter: detection.adapter } : {}),
    // Animations: how many frames, which were judged, which one decided (invariant 7).
    ...(detection?.frames ? { frames: detection.frames } : {}),
    llm: review
      ? {
          modelId: review.modelId,
          decision: review.decision,
          reason: review.reason,
          categories: review.categories,
          inputTokens: review.inputTokens,
          outputTokens: review.outputTokens,
        }
      : undefined,
    error: state.reviewError,
    timings: {
      detectMs: detection?.durationMs,
      reviewMs: review?.durationMs,
      totalMs: Math.max(0, Date.parse(options.decidedAt) - Date.parse(job.receivedAt)) || undefined,
    },
    estimatedCostUsd: estimateDecisionCostUsd({
      rekognitionCalled: !restored && !detection?.reusedFrom && (detection?.verdict !== 'UNUSABLE' || detection.unusableReason?.startsWith('Rekognition') === true),
      analysisCalls: analysisCallsOf(detection?.analysis),
      review,
    }),
    executionId: state.settings?.executionId,
    ...(sampled ? { qualitySample: true } : {}),
    ...(restored ? { restoredFrom: restored.recordId } : {}),
    ...(detection?.reusedFrom ? { reusedFrom: detection.reusedFrom.jobId } : {}),
  };
}

/**
 * The category the byCategory index files a decision under: the deciding moderation label's top-level
 * category; for a labels or text rule, the rule (`label:Weapon`, `text:urls`).
 */
function categoryOf(rule: NonNullable<Decision['rule']>): string {
  if (rule.category.startsWith('label:') || rule.category.startsWith('text:')) return rule.category;
  return topLevelCategory(rule.label) ?? rule.label;
}

/** The analysis calls billed for a detection: every analysis that answered (a failed call is not billed). */
function analysisCallsOf(analysis: Decision['analysis']): number {
  if (!analysis) return 0;
  return (analysis.labels ? 1 : 0) + (analysis.faces ? 1 : 0) + (analysis.text ? 1 : 0);
}

/**
 * The outcome of an upload that repeats an earlier decision (functions/content-reuse.ts): that job's
 * latest status, decided by `policy` (no model looked at these bytes), the reason naming the job.
 */
export function reusedOutcome(from: ReusedDecision): Outcome {
  const earlier = `job ${from.jobId}, ${from.status} by ${from.decidedBy}${from.reason ? `: ${from.reason}` : ''}`;
  const reason =
    from.match === 'near-duplicate'
      ? `near-duplicate of a rejected image (distance ${from.distance ?? '?'}): ${earlier}`
      : `the same bytes were decided before under this policy version (${earlier})`;
  return { status: from.status, decidedBy: 'policy', reason: reason.length > 1000 ? `${reason.slice(0, 999)}…` : reason };
}

/** A FAILED entry: appended (never conditional), so a later replay can still write the decision. */
export function failureRecord(state: ModerationState, options: { failedAt: string; policyName?: string }): Decision {
  const error: CaughtError = state.error ?? { Error: 'Unknown', Cause: 'the workflow failed without an error' };
  return {
    ...identity(state.job, 'FAILED', options.failedAt),
    kind: 'failure',
    decidedBy: 'policy',
    reason: `${error.Error}: ${summariseCause(error.Cause)}`,
    labels: state.detection?.labels ?? [],
    policyVersion: state.detection?.policyVersion,
    policyName: options.policyName,
    error,
    timings: {},
    estimatedCostUsd: 0,
    executionId: state.settings?.executionId,
  };
}

/**
 * A human's decision on an image held for review, or the outcome of an appeal (`appealOf`, the
 * appeal's record id; `previous` is then the rejection it contests): appended beside the automated
 * record, superseding `previous`.
 */
export function humanRecord(
  previous: Decision,
  input: { status: 'APPROVED' | 'REJECTED'; reviewer: string; reason: string; decidedAt: string; supersedes: string; appealOf?: string; contentSha256?: string },
): Decision {
  const job: Job = {
    jobId: previous.jobId,
    bucket: previous.bucket,
    key: previous.key,
    versionId: previous.versionId,
    eTag: previous.eTag,
    sequencer: previous.sequencer,
    uploader: previous.uploader,
    eventTime: input.decidedAt,
    receivedAt: input.decidedAt,
  };
  return {
    ...identity(job, input.status, input.decidedAt),
    kind: 'human',
    decidedBy: `human:${input.reviewer}`,
    reason: input.reason,
    labels: previous.labels,
    rule: previous.rule,
    category: previous.category,
    policyVersion: previous.policyVersion,
    policyName: previous.policyName,
    modelVersion: previous.modelVersion,
    timings: {},
    estimatedCostUsd: 0,
    supersedes: input.supersedes,
    previousStatus: previous.status,
    ...(input.appealOf ? { appealOf: input.appealOf } : {}),
    ...(input.contentSha256 ? { contentSha256: input.contentSha256 } : {}),
  };
}

/**
 * An uploader's appeal of a rejection (kind `appeal`, status REVIEW: it waits in the review queue).
 * Not a decision: what stands is still the rejection until a human decides the appeal
 * (humanRecord with `appealOf`). `decidedBy` says who appealed: `uploader:<id>`.
 */
export function appealRecord(rejected: Decision, input: { message: string; filedAt: string; contests: string }): Decision {
  return {
    ...identity(jobOf(rejected, input.filedAt), 'REVIEW', input.filedAt),
    kind: 'appeal',
    decidedBy: `uploader:${rejected.uploader ?? 'unknown'}`,
    reason: input.message,
    labels: [],
    policyVersion: rejected.policyVersion,
    policyName: rejected.policyName,
    timings: {},
    estimatedCostUsd: 0,
    contests: input.contests,
  };
}

/**
 * The review-queue entry of an automated decision chosen for quality sampling (kind `sample`,
 * status REVIEW, the automated decision's time so the queue orders it by how long it waited). It
 * carries no verdict, label or rule: the queue and `review list --json` show it blind.
 */
export function qualitySampleEntry(automated: Decision, sampleOf: string): Decision {
  return {
    ...identity(jobOf(automated, automated.decidedAt), 'REVIEW', automated.decidedAt),
    kind: 'sample',
    decidedBy: 'policy',
    reason: 'sampled for a blind quality check',
    labels: [],
    timings: {},
    estimatedCostUsd: 0,
    sampleOf,
  };
}

/**
 * A reviewer's blind answer to a quality sample (kind `blind`): a measurement, not a decision. It is
 * never applied to the object and never becomes the latest decision.
 */
export function blindAnswerRecord(
  sample: Decision,
  input: { status: 'APPROVED' | 'REJECTED'; reviewer: string; reason?: string; decidedAt: string; sampleOf: string },
): Decision {
  return {
    ...identity(jobOf(sample, input.decidedAt), input.status, input.decidedAt),
    kind: 'blind',
    decidedBy: `human:${input.reviewer}`,
    reason: input.reason || 'blind quality check',
    labels: [],
    timings: {},
    estimatedCostUsd: 0,
    sampleOf: input.sampleOf,
  };
}

function jobOf(record: Decision, at: string): Job {
  return {
    jobId: record.jobId,
    bucket: record.bucket,
    key: record.key,
    versionId: record.versionId,
    eTag: record.eTag,
    sequencer: record.sequencer,
    uploader: record.uploader,
    eventTime: at,
    receivedAt: at,
  };
}

function identity(job: Job, status: DecisionStatus, decidedAt: string) {
  return {
    jobId: job.jobId,
    bucket: job.bucket,
    key: job.key,
    versionId: job.versionId,
    eTag: job.eTag,
    sequencer: job.sequencer,
    uploader: job.uploader,
    status,
    decidedAt,
  };
}

/** Lambda errors arrive with Cause as a JSON string ({errorMessage, errorType, trace}); keep the message. */
export function summariseCause(cause: string | undefined): string {
  if (!cause) return 'no cause given';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    if (parsed && typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // Not JSON: a plain message.
  }
  return cause.length > 500 ? `${cause.slice(0, 500)}…` : cause;
}
