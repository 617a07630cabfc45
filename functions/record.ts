/**
 * Record step: appends the automated decision to the history with one conditional PutItem per
 * job. A duplicate (the same object version delivered again) writes nothing, says so, and returns
 * the stored decision so the apply step enforces what was decided the first time.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { decisions } from './clients.ts';
import { callAws } from './errors.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { handlerConfig, required } from './lib/config.ts';
import { automatedRecord } from './lib/decision.ts';
import { AUTO_DECISION_SK, jobPartitionKey } from './lib/table-schema.ts';
import type { ModerationState, RecordOutcome } from './lib/types.ts';

export const handler = async (state: ModerationState): Promise<ModerationState> => {
  const table = required(handlerConfig(), 'decisionTable');
  const record = automatedRecord(state, { decidedAt: new Date().toISOString(), shards: handlerConfig().statusShards });
  try {
    await callAws('DynamoDB', () =>
      decisions().send(new PutCommand({ TableName: table, Item: record, ConditionExpression: 'attribute_not_exists(pk)' })),
    );
  } catch (err) {
    if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    const { Item } = await callAws('DynamoDB', () =>
      decisions().send(new GetCommand({ TableName: table, Key: { pk: jobPartitionKey(state.job.jobId), sk: AUTO_DECISION_SK }, ConsistentRead: true })),
    );
    logger.info('duplicate job: already decided, nothing written', { jobId: state.job.jobId, status: Item?.status });
    metrics.addMetric('DuplicateJobs', MetricUnit.Count, 1);
    flushMetrics();
    const decision: RecordOutcome = { status: Item?.status ?? record.status, decidedBy: Item?.decidedBy ?? record.decidedBy, decidedAt: Item?.decidedAt ?? record.decidedAt, duplicate: true };
    return { ...state, decision };
  }
  logger.info('decision recorded', { jobId: state.job.jobId, status: record.status, decidedBy: record.decidedBy, reason: record.reason });
  metrics.addMetric(`Decision${record.status}`, MetricUnit.Count, 1);
  flushMetrics();
  return { ...state, decision: { status: record.status, decidedBy: record.decidedBy, decidedAt: record.decidedAt, duplicate: false } };
};
