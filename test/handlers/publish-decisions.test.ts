/**
 * The decision events' publisher on AWS (functions/publish-decisions.ts): the table stream's INSERTs
 * become `Moderation Decision` events on the configured bus, in order, ten per PutEvents; a refused
 * entry or a failed call reports the first unpublished record (Lambda retries from it).
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { automatedRecord } from '../../functions/lib/decision.ts';
import { decisionEvent } from '../../functions/lib/decision-event.ts';
import { decisionItem } from '../../functions/store/table-schema.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';

const BUS = 'arn:aws:events:us-east-1:123456789012:event-bus/platform';
Object.assign(process.env, {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  EVENT_BUS_NAME: BUS,
  EVENT_SOURCE: 'com.example.moderation',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
});

const eventBridge = mockClient(EventBridgeClient);
let handler: (event: DynamoDBStreamEvent) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;
beforeAll(async () => {
  handler = (await import('../../functions/publish-decisions.ts')).handler as never;
});
beforeEach(() => eventBridge.reset());

function record(i: number): DecisionRecord {
  const at = new Date(Date.UTC(2026, 10, 1, 0, 0, i)).toISOString();
  const job = { jobId: `job-${i}`, bucket: 'uploads', key: `uploads/u/${i}.jpg`, eventTime: at, receivedAt: at };
  return decisionItem(automatedRecord({ job, detection: { verdict: 'APPROVE', labels: [], flagged: [], policyVersion: 'p', source: 's3-object', durationMs: 1 } }, { decidedAt: at }), { shards: 8 });
}

function streamRecord(r: DecisionRecord, seq: number, eventName: 'INSERT' | 'MODIFY' | 'REMOVE' = 'INSERT'): DynamoDBRecord {
  return { eventName, dynamodb: { SequenceNumber: String(seq), NewImage: marshall(r, { removeUndefinedValues: true }) as never } };
}

describe('publish-decisions', () => {
  it('puts one event per INSERT on the bus, with the source and detail-type, in order, ten per call', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] });
    const records = Array.from({ length: 12 }, (_, i) => record(i));
    const result = await handler({ Records: [...records.map((r, i) => streamRecord(r, 100 + i)), streamRecord(record(99), 200, 'MODIFY')] });
    expect(result).toEqual({ batchItemFailures: [] });
    const calls = eventBridge.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries!);
    expect(calls.map((entries) => entries.length)).toEqual([10, 2]);
    const entries = calls.flat();
    expect(entries.map((e) => JSON.parse(e.Detail!))).toEqual(records.map((r) => decisionEvent(r)));
    for (const entry of entries) expect(entry).toMatchObject({ Source: 'com.example.moderation', DetailType: 'Moderation Decision', EventBusName: BUS });
  });

  it('a refused entry: the batch is retried from that record', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ EventId: 'a' }, { ErrorCode: 'ThrottlingException', ErrorMessage: 'slow down' }, { EventId: 'c' }] });
    const result = await handler({ Records: [0, 1, 2].map((i) => streamRecord(record(i), 10 + i)) });
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: '11' }] });
  });

  it('PutEvents failing: retried from the first record of the call that failed', async () => {
    eventBridge.on(PutEventsCommand).resolvesOnce({ FailedEntryCount: 0, Entries: [] }).rejects(new Error('ServiceUnavailable'));
    const result = await handler({ Records: Array.from({ length: 12 }, (_, i) => streamRecord(record(i), 300 + i)) });
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: '310' }] });
  });

  it('the content index\'s items share the table but are no decisions: skipped, the decisions around them published', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] });
    const content: DynamoDBRecord = { eventName: 'INSERT', dynamodb: { SequenceNumber: '601', NewImage: { pk: { S: `CONTENT#${'a'.repeat(64)}#p@1` }, sk: { S: 'CONTENT' } } as never } };
    const near: DynamoDBRecord = { eventName: 'INSERT', dynamodb: { SequenceNumber: '602', NewImage: { pk: { S: 'NEAR#p@1#0:abcd' }, sk: { S: 'j' } } as never } };
    const result = await handler({ Records: [streamRecord(record(1), 600), content, near, streamRecord(record(2), 603)] });
    expect(result).toEqual({ batchItemFailures: [] });
    expect(eventBridge.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries!.length)).toEqual([2]);
  });

  it('a record that is not a decision: what comes before it is published, then the batch retries from it', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] });
    const broken: DynamoDBRecord = { eventName: 'INSERT', dynamodb: { SequenceNumber: '501', NewImage: { pk: { S: 'x' } } as never } };
    const result = await handler({ Records: [streamRecord(record(1), 500), broken, streamRecord(record(2), 502)] });
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: '501' }] });
    expect(eventBridge.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries!.length)).toEqual([1]);
  });
});
