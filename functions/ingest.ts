/**
 * Ingest: an SQS batch of S3 notifications → one workflow execution per job. Reports partial
 * batch failures, so one bad message never makes SQS redeliver its neighbours.
 *
 * EXPRESS runs each job synchronously (StartSyncExecution): a job is done when its execution
 * ended, either decided or in the dead-letter queue through the fail path. STANDARD starts an
 * execution named by the job id, and the message is deleted once it has started: an execution
 * that then ends badly is settled by functions/settle.ts. ExecutionAlreadyExists means the job is
 * in hand only while that execution is RUNNING or after it SUCCEEDED; after any other end (a
 * redelivery, `dlq replay` or `reconcile --enqueue` of a job whose execution failed, timed out or
 * was aborted) the job gets a new execution under a replay name (docs/architecture.md, invariant 1).
 */
import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { DescribeExecutionCommand, StartExecutionCommand, StartSyncExecutionCommand, type ExecutionStatus } from '@aws-sdk/client-sfn';
import { stepFunctions } from './clients.ts';
import { callAws } from './errors.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { ConfigurationError, ENV, handlerConfig, required } from './lib/config.ts';
import { MalformedMessageError, parseIntakeMessage } from './lib/s3-event.ts';
import { replayMarker } from './lib/dead-letter.ts';
import { ModerationError } from './lib/errors.ts';
import { HANDLED_FAILURE } from './lib/execution-end.ts';
import { deadLetters } from './stores.ts';
import type { Job, ModerationState } from './lib/types.ts';

/** The statuses of an execution that has its job in hand: running (or about to run again: a redrive), or done. */
const IN_HAND: readonly (ExecutionStatus | undefined)[] = ['RUNNING', 'PENDING_REDRIVE', 'SUCCEEDED'];

export class WorkflowFailedError extends ModerationError {
  override name = 'WorkflowFailed';
}

export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const failures: SQSBatchResponse['batchItemFailures'] = [];
  await Promise.all(
    event.Records.map(async (message) => {
      try {
        await ingestMessage(message);
      } catch (err) {
        logger.warn('message will be retried', { messageId: message.messageId, error: (err as Error).name, message: (err as Error).message });
        failures.push({ itemIdentifier: message.messageId });
      }
    }),
  );
  metrics.addMetric('IntakeMessages', MetricUnit.Count, event.Records.length);
  if (failures.length) metrics.addMetric('IntakeRetries', MetricUnit.Count, failures.length);
  flushMetrics();
  return { batchItemFailures: failures };
};

async function ingestMessage(message: SQSRecord): Promise<void> {
  let parsed;
  try {
    parsed = parseIntakeMessage(message.body, {
      uploadsBucket: handlerConfig().uploadsBucket,
      uploadsPrefix: handlerConfig().uploadsPrefix,
      uploaderPattern: handlerConfig().uploaderPattern,
    });
  } catch (err) {
    if (!(err instanceof MalformedMessageError)) throw err;
    // Retrying cannot fix a malformed body: park it in the dead-letter queue with the reason, now.
    await deadLetterMalformed(message, err);
    return;
  }
  for (const skipped of parsed.skipped) logger.info('skipped', { messageId: message.messageId, ...skipped });
  // A message with several records fails as a whole; the jobs that succeeded are idempotent on retry.
  const replayOf = replayMarker(message.body);
  await Promise.all(parsed.jobs.map((job) => startWorkflow(job, replayOf)));
}

async function startWorkflow(job: Job, replayOf?: string): Promise<void> {
  const stateMachineArn = required(handlerConfig(), 'stateMachineArn');
  const input: ModerationState = { job };
  if (handlerConfig().workflowType === 'STANDARD') {
    const name = replayOf ? `${job.jobId}-r${replayOf}` : job.jobId;
    if (await startStandard(stateMachineArn, name, input)) return;
    const executionArn = executionArnOf(stateMachineArn, name);
    const existing = await describeExecution(executionArn);
    if (IN_HAND.includes(existing.status)) {
      logger.info('job already in hand (same execution name)', { jobId: job.jobId, executionArn, status: existing.status });
      return;
    }
    // That execution ended FAILED, TIMED_OUT or ABORTED: this delivery is the job's next try.
    const retryName = replayName(job.jobId);
    logger.info('the execution of this name ended without success; starting another', { jobId: job.jobId, executionArn, status: existing.status, name: retryName });
    if (!(await startStandard(stateMachineArn, retryName, input))) logger.info('job already in hand (same replay name)', { jobId: job.jobId, name: retryName });
    return;
  }
  const result = await callAws('StepFunctions', () =>
    stepFunctions().send(
      // Express names need not be unique; the suffix keeps a redelivery's logs apart from the first try.
      new StartSyncExecutionCommand({ stateMachineArn, name: `${job.jobId}-${randomUUID().slice(0, 8)}`, input: JSON.stringify(input) }),
    ),
  );
  if (result.status === 'SUCCEEDED') return;
  if (result.status === 'FAILED' && result.error === HANDLED_FAILURE) return;
  throw new WorkflowFailedError(`execution ${result.executionArn} ended ${result.status}: ${result.error ?? ''} ${result.cause ?? ''}`.trim());
}

/** StartExecution; false when an execution of that name exists (it may be running or long over). */
async function startStandard(stateMachineArn: string, name: string, input: ModerationState): Promise<boolean> {
  try {
    await callAws('StepFunctions', () => stepFunctions().send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) })));
    return true;
  } catch (err) {
    if ((err as Error).name !== 'ExecutionAlreadyExists') throw err;
    return false;
  }
}

/**
 * DescribeExecution; an execution whose name is taken but that Step Functions no longer describes
 * (its history is gone) counts as over, so the job gets a new one (Detect stops a decided job).
 */
async function describeExecution(executionArn: string): Promise<{ status?: ExecutionStatus }> {
  try {
    return await callAws('StepFunctions', () => stepFunctions().send(new DescribeExecutionCommand({ executionArn })));
  } catch (err) {
    if ((err as Error).name !== 'ExecutionDoesNotExist') throw err;
    return { status: undefined };
  }
}

/**
 * A Standard execution's ARN from its state machine's ARN and its name:
 * arn:<partition>:states:<region>:<account>:stateMachine:<machine> → …:execution:<machine>:<name>.
 */
export function executionArnOf(stateMachineArn: string, name: string): string {
  const parts = stateMachineArn.split(':');
  if (parts.length < 7 || parts[5] !== 'stateMachine') throw new ConfigurationError(`${ENV.stateMachineArn} is not a state machine ARN: ${stateMachineArn}`);
  return [...parts.slice(0, 5), 'execution', parts[6], name].join(':');
}

/**
 * A new execution name for a job whose earlier execution ended badly: the job id (40 characters),
 * `-r` and the time in milliseconds (13 digits), 55 characters in all (Step Functions allows 80).
 * Unique unless two deliveries of the job start in the same millisecond, when the second finds the
 * first running and leaves it be.
 */
export function replayName(jobId: string, now = Date.now()): string {
  return `${jobId}-r${now}`.slice(0, 80);
}

async function deadLetterMalformed(message: SQSRecord, err: MalformedMessageError): Promise<void> {
  logger.error('malformed intake message sent to the dead-letter queue', { messageId: message.messageId, reason: err.message });
  await deadLetters().sendMalformed(message.body, err);
  metrics.addMetric('MalformedMessages', MetricUnit.Count, 1);
}
