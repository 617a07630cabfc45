/**
 * Record step: appends the automated decision to the history, once per job (a conditional write in
 * the decision store). A duplicate (the same object version delivered again) writes nothing, says
 * so, and returns the job's latest decision (a human's, if one was made since) so the apply step
 * enforces what stands.
 */
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { automatedRecord } from './lib/decision.ts';
import { decisionHistory } from './stores.ts';
import { handlerConfig } from './lib/config.ts';
import { policyNameOf } from './policy-source.ts';
import { rememberContent } from './content-reuse.ts';
import type { ModerationState } from './lib/types.ts';

export const handler = async (state: ModerationState): Promise<ModerationState> => {
  // The decision event (docs/events.md) is published from the table's stream once this write lands.
  const result = await decisionHistory().putAutomatedOnce(
    automatedRecord(state, {
      decidedAt: new Date().toISOString(),
      policyName: policyNameOf(state.detection),
      // A share of APPROVED/REJECTED also goes to the review queue, blind (functions/lib/quality.ts).
      qualitySampleRate: handlerConfig().qualitySampleRate,
    }),
  );
  try {
    if (!result.written) {
      const { status, decidedBy, decidedAt } = result.existing;
      logger.info('duplicate job: already decided, nothing written', { jobId: state.job.jobId, status });
      metrics.addMetric('DuplicateJobs', MetricUnit.Count, 1);
      return { ...state, decision: { status, decidedBy, decidedAt, duplicate: true } };
    }
    const { status, decidedBy, decidedAt, reason } = result.record;
    logger.info('decision recorded', { jobId: state.job.jobId, status, decidedBy, reason, ...(result.record.reusedFrom ? { reusedFrom: result.record.reusedFrom } : {}) });
    metrics.addMetric(`Decision${status}`, MetricUnit.Count, 1);
    // Never pay twice for the same bytes: the next upload of these bytes repeats this decision.
    if (result.record.reusedFrom) metrics.addMetric('ReusedDecisions', MetricUnit.Count, 1);
    await rememberContent(result.record, state.detection, (err) => {
      logger.warn('could not index the decided bytes; a repeat of them will be judged again', { jobId: state.job.jobId, error: err.message });
      metrics.addMetric('ContentIndexFailures', MetricUnit.Count, 1);
    });
    // The DetectLabels labels, queryable with `moderation audit --label` (functions/store/label-index.ts).
    // After the decision and never at its expense: a failed write only leaves the image out of those answers.
    if (result.record.analysis?.labels?.length) {
      try {
        await decisionHistory().labels.remember(result.record);
      } catch (err) {
        logger.warn('could not index the labels; the image is missing from audit --label', { jobId: state.job.jobId, error: (err as Error).message });
        metrics.addMetric('LabelIndexFailures', MetricUnit.Count, 1);
      }
    }
    return { ...state, decision: { status, decidedBy, decidedAt, duplicate: false } };
  } finally {
    flushMetrics();
  }
};
