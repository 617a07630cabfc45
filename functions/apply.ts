/**
 * Apply step: enforces the decision on the object (functions/lib/apply-decision.ts): a tag for every
 * status, and for REJECTED the move to the quarantine bucket. Idempotent and loop-free.
 */
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { handlerConfig, required } from './lib/config.ts';
import { applyDecision } from './lib/apply-decision.ts';
import { objects } from './stores.ts';
import type { AppliedAction, ModerationState } from './lib/types.ts';

export const handler = async (state: ModerationState): Promise<ModerationState> => {
  const { job } = state;
  const status = state.decision?.status;
  let applied: AppliedAction;
  if (!status) {
    applied = { action: 'skipped', detail: 'no decision to apply' };
  } else if (state.detection?.objectState) {
    applied = { action: 'skipped', detail: `object ${state.detection.objectState}; nothing to tag or quarantine` };
  } else {
    // The policy's label tags (none when it asks for none); undefined keeps the object's own.
    const labels = state.detection ? state.detection.objectTags : state.objectTags;
    applied = await applyDecision(objects(), job, status, required(handlerConfig(), 'quarantineBucket'), labels);
  }
  logger.info('decision applied', { jobId: job.jobId, status, ...applied });
  metrics.addMetric(`Applied${applied.action}`, MetricUnit.Count, 1);
  flushMetrics();
  return { ...state, applied };
};
