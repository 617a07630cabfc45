/**
 * Publishes the decision events on AWS (docs/events.md; docs/architecture.md, invariant 8): the
 * decision table's DynamoDB stream (NEW_IMAGE, INSERT only by the event source's filter) invokes
 * this function, which builds each record's `Moderation Decision` event with decisionEvent() — the
 * function the local runtime uses — and sends them with PutEvents, in stream order.
 *
 * The table is the outbox: a record is written first and is never held up by publishing. A batch
 * that cannot be published is reported from its first failed record (partial batch response), so
 * Lambda retries from there (bisecting, with a limit), and what still fails lands in the construct's
 * queue for failed publishes. At least once: a retry may publish an event again with the same id.
 */
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { eventBridge } from './clients.ts';
import { handlerConfig, required } from './lib/config.ts';
import { decisionEvent, eventBridgeEntry, hasDecisionEvent } from './lib/decision-event.ts';
import { isContentIndexItem, recordFromItem } from './store/table-schema.ts';

/** PutEvents takes at most 10 entries per call. */
const MAX_ENTRIES = 10;

export const handler = async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
  const config = handlerConfig();
  const target = { source: config.eventSource, eventBusName: required(config, 'eventBusName') };
  try {
    const failed = await publishInOrder(event.Records, target, (entries) => eventBridge().send(new PutEventsCommand({ Entries: entries })));
    return { batchItemFailures: failed ? [{ itemIdentifier: failed }] : [] };
  } finally {
    flushMetrics();
  }
};

type PutEvents = (entries: PutEventsRequestEntry[]) => Promise<{ FailedEntryCount?: number; Entries?: { ErrorCode?: string; ErrorMessage?: string }[] }>;

/**
 * Publishes the INSERTs of a batch in order, ten at a time. Returns the sequence number of the first
 * record not published (Lambda retries the batch from it), or undefined when all were.
 */
export async function publishInOrder(records: DynamoDBRecord[], target: { source: string; eventBusName: string }, put: PutEvents): Promise<string | undefined> {
  const pending: { sequenceNumber: string; entry: PutEventsRequestEntry }[] = [];
  const flush = async (): Promise<string | undefined> => {
    while (pending.length) {
      const chunk = pending.slice(0, MAX_ENTRIES);
      let failedAt = -1;
      try {
        const result = await put(chunk.map((c) => c.entry));
        if (result.FailedEntryCount) {
          failedAt = (result.Entries ?? []).findIndex((e) => e.ErrorCode);
          const entry = result.Entries?.[failedAt];
          logger.warn('PutEvents refused an entry: retrying the batch from it', { errorCode: entry?.ErrorCode, errorMessage: entry?.ErrorMessage, failed: result.FailedEntryCount });
          if (failedAt < 0) failedAt = 0;
        }
      } catch (err) {
        logger.warn('PutEvents failed: retrying the batch from its first unpublished record', { error: (err as Error).message });
        failedAt = 0;
      }
      const published = failedAt < 0 ? chunk.length : failedAt;
      if (published) metrics.addMetric('DecisionEventsPublished', MetricUnit.Count, published);
      if (failedAt >= 0) return chunk[failedAt]!.sequenceNumber;
      pending.splice(0, chunk.length);
    }
    return undefined;
  };
  for (const record of records) {
    const sequenceNumber = record.dynamodb?.SequenceNumber ?? '';
    if (record.eventName !== 'INSERT' || !record.dynamodb?.NewImage) continue;
    let entry: PutEventsRequestEntry;
    try {
      const image = unmarshall(record.dynamodb.NewImage as never);
      // The content index's items (the event source's filter keeps them out already) are not decisions.
      if (isContentIndexItem(image)) continue;
      const item = recordFromItem(image);
      if (!hasDecisionEvent(item)) continue; // an appeal or a quality sample: not a decision, no event
      entry = eventBridgeEntry(decisionEvent(item), target);
    } catch (err) {
      // A record this code cannot read: publish what comes before it, then let the retries (and
      // finally the failed-publish queue) have it, rather than skip it silently.
      logger.error('cannot build the decision event of a stream record', { sequenceNumber, error: (err as Error).message });
      return (await flush()) ?? sequenceNumber;
    }
    pending.push({ sequenceNumber, entry });
  }
  return flush();
}
