/**
 * The SQS event source mapping, on this machine: long-polls the intake queue, hands batches to the
 * ingest handler as a real-shaped SQSEvent, deletes what succeeded and leaves the rest
 * (batchItemFailures, or the whole batch when the handler throws or answers nonsense) to reappear
 * after the visibility timeout — so SQS's receive count moves a message that keeps failing to the
 * dead-letter queue after maxReceiveCount, as in AWS. At most `maxConcurrency` batches are in flight.
 */
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import { LOCAL_REGION, silentLogger, sleep, type LocalLogger } from './net.ts';

export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** eventSourceARN in the records. */
  queueArn: string;
  region?: string;
  handler: (event: SQSEvent) => Promise<SQSBatchResponse | void | undefined | null>;
  /** Messages per batch, 1-10 (default 10). */
  batchSize?: number;
  /** Batches in flight at once, like the mapping's maximumConcurrency (default 2). */
  maxConcurrency?: number;
  /**
   * Long-poll wait, 0-20 s. Default 1: stop() waits for the polls in progress (see the loop), so this
   * bounds how long stopping takes; an idle loop costs one request per wait.
   */
  waitTimeSeconds?: number;
  /**
   * The queue's redrive target, used only at stop for messages that failed their last allowed receive
   * (see stop()).
   */
  deadLetter?: { queueUrl: string; maxReceiveCount: number; visibilityTimeoutSeconds: number };
  /** Honour batchItemFailures (ReportBatchItemFailures, as the CDK stack configures). Default true. */
  reportBatchItemFailures?: boolean;
  log?: LocalLogger;
}

export interface PollerStats {
  batches: number;
  received: number;
  /** Messages the handler succeeded on (deleted). */
  succeeded: number;
  /** Messages left on the queue to be retried. */
  retried: number;
  /** Handler invocations that threw. */
  handlerErrors: number;
  inFlightBatches: number;
}

export interface Poller {
  stats(): PollerStats;
  /** Resolves when no batch is in flight (messages may still be waiting on the queue). */
  idle(): Promise<void>;
  /**
   * Stops receiving, lets in-flight batches finish and delete their messages, then puts the messages
   * it left for a retry back on the queue, visible (so a snapshot of the queue taken next holds them),
   * or on the dead-letter queue if they had used their last receive.
   */
  stop(): Promise<void>;
}

export function startPoller(options: PollerOptions): Poller {
  const batchSize = clamp(options.batchSize ?? 10, 1, 10, 'batchSize');
  const concurrency = clamp(options.maxConcurrency ?? 2, 1, 1000, 'maxConcurrency');
  const wait = clamp(options.waitTimeSeconds ?? 1, 0, 20, 'waitTimeSeconds');
  const region = options.region ?? LOCAL_REGION;
  const log = options.log ?? silentLogger;
  const reportFailures = options.reportBatchItemFailures ?? true;
  const stopping = new AbortController();
  const stats: PollerStats = { batches: 0, received: 0, succeeded: 0, retried: 0, handlerErrors: 0, inFlightBatches: 0 };
  let idleWaiters: Array<() => void> = [];
  /** Messages left on the queue for a retry (invisible until the visibility timeout), by id. */
  const awaitingRetry = new Map<string, { message: Message; receivedAt: number }>();

  const runBatch = async (messages: Message[], receivedAt: number) => {
    stats.batches++;
    stats.inFlightBatches++;
    try {
      const records = messages.map((m) => toRecord(m, options.queueArn, region));
      const failed = new Set<string>();
      try {
        const response = await options.handler({ Records: records });
        for (const id of failedIds(response, records, reportFailures, log)) failed.add(id);
      } catch (err) {
        stats.handlerErrors++;
        log.error('ingest handler failed; the whole batch will be retried', { error: (err as Error).message, messages: records.length });
        for (const r of records) failed.add(r.messageId);
      }
      const done = messages.filter((m) => !failed.has(m.MessageId!));
      for (const m of messages) if (failed.has(m.MessageId!)) awaitingRetry.set(m.MessageId!, { message: m, receivedAt });
      // Entries of messages that went on to the dead-letter queue are never received again: keep it bounded.
      for (const id of awaitingRetry.keys()) {
        if (awaitingRetry.size <= 10_000) break;
        awaitingRetry.delete(id);
      }
      stats.succeeded += done.length;
      stats.retried += messages.length - done.length;
      await deleteMessages(done);
    } finally {
      stats.inFlightBatches--;
      if (stats.inFlightBatches === 0) {
        const waiters = idleWaiters;
        idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  };

  const deleteMessages = async (messages: Message[], quiet = false) => {
    for (let i = 0; i < messages.length; i += 10) {
      const chunk = messages.slice(i, i + 10);
      try {
        const out = await options.sqs.send(
          new DeleteMessageBatchCommand({ QueueUrl: options.queueUrl, Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })) }),
        );
        if (!quiet) for (const f of out.Failed ?? []) log.warn('could not delete a processed message; it will be delivered again', { id: f.Id, code: f.Code, message: f.Message });
      } catch (err) {
        log.warn('could not delete processed messages; they will be delivered again', { error: (err as Error).message, count: chunk.length });
      }
    }
  };

  const receive = (max: number, waitSeconds: number) =>
    options.sqs
      .send(
        new ReceiveMessageCommand({
          QueueUrl: options.queueUrl,
          MaxNumberOfMessages: max,
          WaitTimeSeconds: waitSeconds,
          AttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      )
      .then((out) => out.Messages ?? []);

  /**
   * Puts messages back on the queue at once (received while stopping, or waiting for a retry): sent
   * again, then deleted. Not ChangeMessageVisibility: local-aws-sqs counts that as a receive (five of
   * them send a message to the dead-letter queue). The copy starts with a receive count of 0.
   */
  const release = async (messages: Message[], queueUrl = options.queueUrl) => {
    for (let i = 0; i < messages.length; i += 10) {
      const chunk = messages.slice(i, i + 10);
      try {
        const sent = await options.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((m, j) => ({ Id: String(j), MessageBody: m.Body ?? '', MessageAttributes: sendableAttributes(m.MessageAttributes) })),
          }),
        );
        const resent = new Set((sent.Successful ?? []).map((e) => Number(e.Id)));
        for (const f of sent.Failed ?? []) log.error('could not put a message back on the queue', { id: f.Id, code: f.Code, message: f.Message });
        // Only the originals of what was sent again are deleted: a message is never in neither place.
        await deleteMessages(chunk.filter((_, j) => resent.has(j)), true);
      } catch (err) {
        log.error('could not put messages back on the queue; they reappear after the visibility timeout', { error: (err as Error).message });
      }
    }
  };

  /**
   * Messages visible on the queue now. local-aws-sqs counts the messages in flight in
   * ApproximateNumberOfMessages too (SQS does not): the difference is what a receive can get.
   */
  const visibleMessages = () =>
    options.sqs
      .send(new GetQueueAttributesCommand({ QueueUrl: options.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))
      .then((out) => Math.max(0, Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) - Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)));

  // One loop per concurrency slot: receive, process, repeat (a slot is busy while its batch runs).
  //
  // local-aws-sqs holds a long poll open until the batch is full or the wait is over (real SQS answers
  // as soon as there is a message), even a receive that does not wait (40 ms), and takes messages for
  // a poll whose client has gone. So: a long poll for one message (answered as soon as one arrives),
  // then, if more are waiting, a receive for at most as many as are visible to fill the batch (answered
  // at once: a lone upload on an idle queue does not wait 40 ms for nothing); and a poll is never
  // abandoned: at stop, what it brings back is put back on the queue.
  const loop = async () => {
    while (!stopping.signal.aborted) {
      let messages: Message[];
      let receivedAt: number;
      try {
        messages = await receive(1, wait);
        receivedAt = Date.now();
        if (messages.length && batchSize > 1 && !stopping.signal.aborted) {
          const waiting = Math.min(batchSize - 1, await visibleMessages());
          if (waiting > 0 && !stopping.signal.aborted) messages.push(...(await receive(waiting, 0)));
        }
      } catch (err) {
        if (stopping.signal.aborted) break;
        log.warn('receive from the intake queue failed; retrying', { error: (err as Error).message });
        await sleep(1_000, stopping.signal);
        continue;
      }
      // A message can come twice in one answer if its visibility ran out meanwhile: keep the last copy.
      messages = [...new Map(messages.map((m) => [m.MessageId!, m])).values()];
      for (const m of messages) awaitingRetry.delete(m.MessageId!);
      if (stopping.signal.aborted) {
        await release(messages);
        break;
      }
      stats.received += messages.length;
      if (!messages.length) continue;
      await runBatch(messages, receivedAt);
    }
  };
  const loops = Array.from({ length: concurrency }, () => loop());

  return {
    stats: () => ({ ...stats }),
    idle: () => (stats.inFlightBatches === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
    stop: async () => {
      stopping.abort();
      await Promise.all(loops);
      const waiting = [...awaitingRetry.values()];
      awaitingRetry.clear();
      // One that used its last receive moves to the dead-letter queue when its visibility runs out: if
      // that is still to come (after this process is gone), move it now.
      const dead = options.deadLetter;
      const spent = ({ message }: { message: Message }) => dead !== undefined && Number(message.Attributes?.ApproximateReceiveCount ?? 0) >= dead.maxReceiveCount;
      await release(waiting.filter((w) => !spent(w)).map((w) => w.message));
      const moving = waiting.filter((w) => spent(w) && w.receivedAt + dead!.visibilityTimeoutSeconds * 1000 > Date.now() + 100);
      if (dead && moving.length) await release(moving.map((w) => w.message), dead.queueUrl);
    },
  };
}

/** The ids to leave on the queue, as Lambda reads a handler's answer. */
function failedIds(response: SQSBatchResponse | void | undefined | null, records: SQSRecord[], report: boolean, log: LocalLogger): string[] {
  if (!report || response === undefined || response === null) return [];
  const failures = (response as Partial<SQSBatchResponse>).batchItemFailures;
  if (failures === undefined || failures === null) return [];
  const ids = new Set(records.map((r) => r.messageId));
  // Lambda treats an unusable answer (not a list, an empty or unknown id) as a failure of the whole batch.
  if (!Array.isArray(failures) || failures.some((f) => !f || typeof f.itemIdentifier !== 'string' || !ids.has(f.itemIdentifier))) {
    log.error('ingest handler returned invalid batchItemFailures; the whole batch will be retried', { batchItemFailures: failures });
    return [...ids];
  }
  return failures.map((f) => f.itemIdentifier);
}

/** One SQS message as Lambda's event source mapping presents it. */
export function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const messageAttributes: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) messageAttributes[name] = toRecordAttribute(value);
  const record: SQSRecord = {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes: (message.Attributes ?? {}) as unknown as SQSRecord['attributes'],
    messageAttributes,
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
  if (message.MD5OfMessageAttributes) record.md5OfMessageAttributes = message.MD5OfMessageAttributes;
  return record;
}

function toRecordAttribute(value: MessageAttributeValue): SQSMessageAttributes[string] {
  const base64 = (bytes?: Uint8Array | string) => (bytes === undefined ? undefined : typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('base64'));
  const attribute: SQSMessageAttributes[string] = {
    stringListValues: value.StringListValues ?? [],
    binaryListValues: (value.BinaryListValues ?? []).map((b) => base64(b)!),
    dataType: value.DataType ?? 'String',
  };
  if (value.StringValue !== undefined) attribute.stringValue = value.StringValue;
  if (value.BinaryValue !== undefined) attribute.binaryValue = base64(value.BinaryValue);
  return attribute;
}

/** Received attribute values as SendMessage accepts them (no empty list members). */
function sendableAttributes(attributes?: Record<string, MessageAttributeValue>): Record<string, MessageAttributeValue> | undefined {
  if (!attributes || !Object.keys(attributes).length) return undefined;
  return Object.fromEntries(
    Object.entries(attributes).map(([name, v]) => [
      name,
      { DataType: v.DataType, ...(v.StringValue !== undefined ? { StringValue: v.StringValue } : {}), ...(v.BinaryValue !== undefined ? { BinaryValue: v.BinaryValue } : {}) },
    ]),
  );
}

function clamp(value: number, min: number, max: number, name: string): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}
