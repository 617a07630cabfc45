/**
 * Fail path: whatever stayed broken after the retries is appended to the history as FAILED, with
 * the error and its cause, and the job is sent to the dead-letter queue, from where an operator
 * replays it (`moderation dlq replay`). Nothing is dropped.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { decisions, sqs } from './clients.ts';
import { callAws } from './errors.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { handlerConfig, required } from './lib/config.ts';
import { failureRecord } from './lib/decision.ts';
import { deadLetterBody } from './lib/s3-event.ts';
import type { ModerationState } from './lib/types.ts';

export const handler = async (state: ModerationState): Promise<ModerationState> => {
  const failedAt = new Date().toISOString();
  const record = failureRecord(state, { failedAt, shards: handlerConfig().statusShards });
  const error = record.error!;
  await callAws('DynamoDB', () => decisions().send(new PutCommand({ TableName: required(handlerConfig(), 'decisionTable'), Item: record })));
  await callAws('SQS', () =>
    sqs().send(
      new SendMessageCommand({
        QueueUrl: required(handlerConfig(), 'deadLetterQueueUrl'),
        MessageBody: deadLetterBody(state.job, error, { executionId: state.settings?.executionId, failedAt }),
        MessageAttributes: {
          errorName: { DataType: 'String', StringValue: error.Error },
          objectKey: { DataType: 'String', StringValue: state.job.key.slice(0, 256) },
        },
      }),
    ),
  );
  logger.error('moderation failed; recorded and dead-lettered', { jobId: state.job.jobId, key: state.job.key, error: error.Error, reason: record.reason });
  metrics.addMetric('DecisionFAILED', MetricUnit.Count, 1);
  flushMetrics();
  return { ...state, decision: { status: 'FAILED', decidedBy: record.decidedBy, decidedAt: failedAt, duplicate: false } };
};
