/**
 * Ingest: an SQS batch of S3 notifications → one workflow execution per job. Reports partial
 * batch failures, so one bad message never makes SQS redeliver its neighbours.
 *
 * EXPRESS runs each job synchronously (StartSyncExecution): a job is done when its execution
 * ended, either decided or in the dead-letter queue through the fail path. STANDARD starts an
 * execution named by the job id: ExecutionAlreadyExists means the job is already in hand.
 */
import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { StartExecutionCommand, StartSyncExecutionCommand } from '@aws-sdk/client-sfn';
import { stepFunctions } from './clients.ts';
import { callAws } from './errors.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { handlerConfig, required } from './lib/config.ts';
import { MalformedMessageError, parseIntakeMessage } from './lib/s3-event.ts';
import { replayMarker } from './lib/dead-letter.ts';
import { ModerationError } from './lib/errors.ts';
import { deadLetters } from './stores.ts';
import type { Job, ModerationState } from './lib/types.ts';

/** The Fail state's error: the job was recorded FAILED and dead-lettered by the workflow itself. */
const HANDLED_FAILURE = 'ModerationFailed';

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
    try {
      await callAws('StepFunctions', () =>
        stepFunctions().send(new StartExecutionCommand({ stateMachineArn, name: replayOf ? `${job.jobId}-r${replayOf}` : job.jobId, input: JSON.stringify(input) })),
      );
    } catch (err) {
      if ((err as Error).name !== 'ExecutionAlreadyExists') throw err;
      logger.info('job already started (same execution name)', { jobId: job.jobId });
    }
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

async function deadLetterMalformed(message: SQSRecord, err: MalformedMessageError): Promise<void> {
  logger.error('malformed intake message sent to the dead-letter queue', { messageId: message.messageId, reason: err.message });
  await deadLetters().sendMalformed(message.body, err);
  metrics.addMetric('MalformedMessages', MetricUnit.Count, 1);
}
