/**
 * Fail path: whatever stayed broken after the retries is appended to the history as FAILED, with
 * the error and its cause, and the job is sent to the dead-letter queue, from where an operator
 * replays it (`moderation dlq replay`). Nothing is dropped.
 */
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { failureRecord } from './lib/decision.ts';
import { deadLetters, decisionHistory } from './stores.ts';
import { policyNameOf } from './policy-source.ts';
import type { ModerationState } from './lib/types.ts';

export const handler = async (state: ModerationState): Promise<ModerationState> => {
  const failedAt = new Date().toISOString();
  const record = await decisionHistory().appendFailure(failureRecord(state, { failedAt, policyName: policyNameOf(state.detection) }));
  const error = record.error!;
  await deadLetters().sendFailedJob(state.job, error, { executionId: state.settings?.executionId, failedAt });
  logger.error('moderation failed; recorded and dead-lettered', { jobId: state.job.jobId, key: state.job.key, error: error.Error, reason: record.reason });
  metrics.addMetric('DecisionFAILED', MetricUnit.Count, 1);
  flushMetrics();
  return { ...state, decision: { status: 'FAILED', decidedBy: record.decidedBy, decidedAt: failedAt, duplicate: false } };
};
