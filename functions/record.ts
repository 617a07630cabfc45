/**
 * Record step: appends the automated decision to the history, once per job (a conditional write in
 * the decision store). A duplicate (the same object version delivered again) writes nothing, says
 * so, and returns the job's latest decision (a human's, if one was made since) so the apply step
 * enforces what stands.
 */
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { automatedRecord } from './lib/decision.ts';
import { decisionHistory } from './stores.ts';
import type { ModerationState } from './lib/types.ts';

export const handler = async (state: ModerationState): Promise<ModerationState> => {
  const result = await decisionHistory().putAutomatedOnce(automatedRecord(state, { decidedAt: new Date().toISOString() }));
  try {
    if (!result.written) {
      const { status, decidedBy, decidedAt } = result.existing;
      logger.info('duplicate job: already decided, nothing written', { jobId: state.job.jobId, status });
      metrics.addMetric('DuplicateJobs', MetricUnit.Count, 1);
      return { ...state, decision: { status, decidedBy, decidedAt, duplicate: true } };
    }
    const { status, decidedBy, decidedAt, reason } = result.record;
    logger.info('decision recorded', { jobId: state.job.jobId, status, decidedBy, reason });
    metrics.addMetric(`Decision${status}`, MetricUnit.Count, 1);
    return { ...state, decision: { status, decidedBy, decidedAt, duplicate: false } };
  } finally {
    flushMetrics();
  }
};
