/**
 * From what the workflow found to the record an auditor reads: the final status, who decided it
 * and why. Append-only: each function here builds a new history entry; the decision store
 * (functions/store/) adds the table's keys when it writes one.
 */
import { topLevelCategory } from './taxonomy.ts';
import { estimateDecisionCostUsd } from './pricing.ts';
import type { CaughtError, Decision, DecisionStatus, Job, ModerationState } from './types.ts';

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
  const because = rule ? `${rule.label} ${rule.confidence.toFixed(1)}% ≥ ${rule.action} threshold ${rule.threshold} of rule "${rule.category}"` : '';
  switch (detection.verdict) {
    case 'UNUSABLE':
      return { status: 'UNUSABLE', decidedBy: 'policy', reason: detection.unusableReason ?? 'the file is not a usable image' };
    case 'REJECT':
      return { status: 'REJECTED', decidedBy: 'rekognition', reason: because };
    case 'APPROVE':
      return { status: 'APPROVED', decidedBy: 'rekognition', reason: rule ? because : 'no label reached a review threshold' };
    case 'BORDERLINE': {
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

/** The automated decision's item: one per job, written with a condition so a duplicate writes nothing. */
export function automatedRecord(state: ModerationState, options: { decidedAt: string }): Decision {
  const { job, detection, review } = state;
  const outcome = outcomeOf(state);
  const rule = detection?.rule;
  return {
    ...identity(job, outcome.status, options.decidedAt),
    kind: 'automated',
    decidedBy: outcome.decidedBy,
    reason: outcome.reason,
    labels: detection?.labels ?? [],
    rule,
    category: rule ? (topLevelCategory(rule.label) ?? rule.label) : undefined,
    policyVersion: detection?.policyVersion,
    modelVersion: detection?.modelVersion,
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
      rekognitionCalled: detection?.verdict !== 'UNUSABLE' || detection.unusableReason?.startsWith('Rekognition') === true,
      review,
    }),
    executionId: state.settings?.executionId,
  };
}

/** A FAILED entry: appended (never conditional), so a later replay can still write the decision. */
export function failureRecord(state: ModerationState, options: { failedAt: string }): Decision {
  const error: CaughtError = state.error ?? { Error: 'Unknown', Cause: 'the workflow failed without an error' };
  return {
    ...identity(state.job, 'FAILED', options.failedAt),
    kind: 'failure',
    decidedBy: 'policy',
    reason: `${error.Error}: ${summariseCause(error.Cause)}`,
    labels: state.detection?.labels ?? [],
    policyVersion: state.detection?.policyVersion,
    error,
    timings: {},
    estimatedCostUsd: 0,
    executionId: state.settings?.executionId,
  };
}

/** A human's decision on an image held for review: appended beside the automated record, superseding it. */
export function humanRecord(
  previous: Decision,
  input: { status: 'APPROVED' | 'REJECTED'; reviewer: string; reason: string; decidedAt: string; supersedes: string },
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
    modelVersion: previous.modelVersion,
    timings: {},
    estimatedCostUsd: 0,
    supersedes: input.supersedes,
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
