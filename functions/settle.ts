/**
 * Settle (STANDARD workflows only): a Step Functions execution that ended FAILED, TIMED_OUT or
 * ABORTED outside the workflow's own fail path — it ran past the state machine's TimeoutSeconds,
 * someone stopped it, or RecordFailure itself failed — is recorded FAILED and its job sent to the
 * dead-letter queue, like the fail path would have (docs/architecture.md, invariant 1). Ingest has
 * already deleted the intake message, so without this the job would be lost.
 *
 * Fed by an EventBridge rule on "Step Functions Execution Status Change" for this state machine
 * (infra/moderation-pipeline.ts); locally the Step Functions endpoint sends the same event
 * (local/stepfunctions.ts). Nothing to do when the job has a decision (another execution decided
 * it) or when the execution failed with ModerationFailed (the fail path recorded it). A
 * redelivered event writes the same FAILURE item again (its time is the execution's stop time).
 */
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import type { EventBridgeEvent } from 'aws-lambda';
import { stepFunctions } from './clients.ts';
import { callAws } from './errors.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { failureRecord } from './lib/decision.ts';
import { executionEndOf, stateFromExecutionInput, UnreadableExecutionInputError, type ExecutionStatusDetail } from './lib/execution-end.ts';
import { deadLetters, decisionHistory } from './stores.ts';
import type { DecisionStatus } from './lib/types.ts';

export type SettleOutcome =
  | { action: 'ignored'; reason: string }
  | { action: 'already-decided'; jobId: string; status: DecisionStatus }
  | { action: 'recorded'; jobId: string; reason: string };

export const handler = async (event: EventBridgeEvent<string, ExecutionStatusDetail>): Promise<SettleOutcome> => {
  const end = executionEndOf(event);
  if (!end.settle) {
    logger.info('nothing to settle', { executionArn: end.executionArn, reason: end.reason });
    return { action: 'ignored', reason: end.reason };
  }
  const state = stateFromExecutionInput(end.input ?? (await executionInput(end.executionArn)), end.executionArn);
  const { job } = state;
  const decided = await decisionHistory().latestDecision(job.jobId);
  if (decided) {
    logger.info('execution ended without success, but the job is decided', { jobId: job.jobId, executionArn: end.executionArn, status: end.status, decision: decided.status });
    return { action: 'already-decided', jobId: job.jobId, status: decided.status };
  }
  const record = await decisionHistory().appendFailure({ ...failureRecord({ ...state, error: end.error }, { failedAt: end.endedAt }), executionId: end.executionArn });
  await deadLetters().sendFailedJob(job, end.error, { executionId: end.executionArn, failedAt: end.endedAt });
  logger.error('execution ended without a decision; recorded FAILED and dead-lettered', {
    jobId: job.jobId,
    key: job.key,
    executionArn: end.executionArn,
    status: end.status,
    reason: record.reason,
  });
  metrics.addMetric('DecisionFAILED', MetricUnit.Count, 1);
  metrics.addMetric(`Settled${end.status}`, MetricUnit.Count, 1);
  flushMetrics();
  return { action: 'recorded', jobId: job.jobId, reason: record.reason ?? '' };
};

/** An event without the input (too large to carry): DescribeExecution has it. */
async function executionInput(executionArn: string): Promise<string> {
  const described = await callAws('StepFunctions', () => stepFunctions().send(new DescribeExecutionCommand({ executionArn })));
  if (typeof described.input !== 'string') throw new UnreadableExecutionInputError(`execution ${executionArn}: DescribeExecution returned no input`);
  return described.input;
}
