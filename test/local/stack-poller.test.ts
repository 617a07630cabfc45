/**
 * The poller behaves like Lambda's SQS event source mapping: real-shaped SQSEvent batches, partial
 * batch failures (only the failed message comes back, after the visibility timeout), redrive to the
 * DLQ after maxReceiveCount, bounded concurrency, graceful stop.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { startLocalSqs, type LocalSqs } from '../../local/sqs.ts';
import { startPoller, type Poller } from '../../local/poller.ts';
import { eventually } from './stack-helpers.ts';

describe('SQS poller (event source mapping)', () => {
  let sqs: LocalSqs;
  let client: SQSClient;
  let poller: Poller | undefined;

  beforeEach(async () => {
    // 1 s: a failed message is back a second later; five receives take about five seconds.
    sqs = await startLocalSqs({ visibilityTimeoutSeconds: 1 });
    client = new SQSClient({ endpoint: sqs.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  });

  afterEach(async () => {
    await poller?.stop();
    poller = undefined;
    client.destroy();
    await sqs.close();
  });

  const send = (bodies: string[]) =>
    client.send(
      new SendMessageBatchCommand({
        QueueUrl: sqs.intakeQueueUrl,
        Entries: bodies.map((body, i) => ({ Id: String(i), MessageBody: body, MessageAttributes: { origin: { DataType: 'String', StringValue: 'test' } } })),
      }),
    );

  it('hands real-shaped batches to the handler; a failed item alone comes back, and after 5 receives it is in the DLQ', async () => {
    const seen: Array<{ body: string; receiveCount: number }> = [];
    const events: SQSEvent[] = [];
    poller = startPoller({
      sqs: client,
      queueUrl: sqs.intakeQueueUrl,
      queueArn: sqs.intakeQueueArn,
      waitTimeSeconds: 1,
      handler: async (event): Promise<SQSBatchResponse> => {
        events.push(event);
        for (const r of event.Records) seen.push({ body: r.body, receiveCount: Number(r.attributes.ApproximateReceiveCount) });
        return { batchItemFailures: event.Records.filter((r) => r.body === 'bad').map((r) => ({ itemIdentifier: r.messageId })) };
      },
    });
    await send(['good-1', 'bad', 'good-2']);

    const dead = await eventually(async () => {
      const { Messages } = await client.send(new ReceiveMessageCommand({ QueueUrl: sqs.deadLetterQueueUrl, WaitTimeSeconds: 1 }));
      return Messages?.length ? Messages : undefined;
    }, 20_000);
    expect(dead.map((m) => m.Body)).toEqual(['bad']);

    expect(seen.filter((s) => s.body === 'good-1').map((s) => s.receiveCount)).toEqual([1]);
    expect(seen.filter((s) => s.body === 'good-2').map((s) => s.receiveCount)).toEqual([1]);
    expect(seen.filter((s) => s.body === 'bad').map((s) => s.receiveCount)).toEqual([1, 2, 3, 4, 5]);
    expect(poller.stats()).toMatchObject({ received: 7, succeeded: 2, retried: 5, handlerErrors: 0 });

    const record = events[0]!.Records[0]!;
    expect(record).toMatchObject({
      messageId: expect.any(String),
      receiptHandle: expect.any(String),
      md5OfBody: expect.stringMatching(/^[0-9a-f]{32}$/),
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:moderation-intake',
      awsRegion: 'us-east-1',
      messageAttributes: { origin: { stringValue: 'test', stringListValues: [], binaryListValues: [], dataType: 'String' } },
    });
    expect(record.attributes).toMatchObject({
      ApproximateReceiveCount: '1',
      SentTimestamp: expect.stringMatching(/^\d+$/),
      ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d+$/),
      SenderId: expect.any(String),
    });
  }, 30_000);

  it('retries the whole batch when the handler throws or answers with an unknown itemIdentifier', async () => {
    const attempts = new Map<string, number>();
    poller = startPoller({
      sqs: client,
      queueUrl: sqs.intakeQueueUrl,
      queueArn: sqs.intakeQueueArn,
      waitTimeSeconds: 1,
      batchSize: 1,
      handler: async (event) => {
        const body = event.Records[0]!.body;
        const n = (attempts.get(body) ?? 0) + 1;
        attempts.set(body, n);
        if (n > 1) return { batchItemFailures: [] };
        if (body === 'throws') throw new Error('handler crashed');
        return { batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] };
      },
    });
    await send(['throws', 'nonsense']);
    await eventually(async () => (attempts.get('throws') === 2 && attempts.get('nonsense') === 2 ? true : undefined), 10_000);
    await poller.idle();
    expect(poller.stats()).toMatchObject({ succeeded: 2, retried: 2, handlerErrors: 1 });
  });

  it('keeps at most maxConcurrency batches in flight, and stop() lets them finish and deletes their messages', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const gates: Array<() => void> = [];
    poller = startPoller({
      sqs: client,
      queueUrl: sqs.intakeQueueUrl,
      queueArn: sqs.intakeQueueArn,
      waitTimeSeconds: 1,
      batchSize: 1,
      maxConcurrency: 3,
      handler: async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise<void>((resolve) => gates.push(resolve));
        inFlight--;
      },
    });
    await send(['1', '2', '3', '4', '5', '6']);
    await eventually(async () => (gates.length === 3 ? true : undefined));
    expect(poller.stats().inFlightBatches).toBe(3);

    const stopped = poller.stop();
    for (const open of gates.splice(0)) open();
    await stopped;
    expect(maxInFlight).toBe(3);
    expect(poller.stats()).toMatchObject({ batches: 3, succeeded: 3, inFlightBatches: 0 });
    // The three finished batches were deleted; the other three are still on the queue.
    const left = await client.send(new ReceiveMessageCommand({ QueueUrl: sqs.intakeQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    expect(left.Messages ?? []).toHaveLength(3);
    poller = undefined;
  });

  it('stop() puts a message waiting for its retry back on the queue, or on the DLQ when it used its last receive', async () => {
    for (const maxReceiveCount of [5, 1]) {
      // A long visibility timeout: without the poller's help the message would stay invisible past the stop.
      const queues = await startLocalSqs({ visibilityTimeoutSeconds: 30, maxReceiveCount });
      const c = new SQSClient({ endpoint: queues.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
      let calls = 0;
      const p = startPoller({
        sqs: c,
        queueUrl: queues.intakeQueueUrl,
        queueArn: queues.intakeQueueArn,
        waitTimeSeconds: 1,
        deadLetter: { queueUrl: queues.deadLetterQueueUrl, maxReceiveCount, visibilityTimeoutSeconds: 30 },
        handler: async (event) => {
          calls++;
          return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
        },
      });
      await c.send(new SendMessageCommand({ QueueUrl: queues.intakeQueueUrl, MessageBody: 'retry-me', MessageAttributes: { a: { DataType: 'String', StringValue: 'b' } } }));
      await eventually(async () => (calls === 1 ? true : undefined));
      await p.stop();
      const receive = async (queueUrl: string) =>
        (await c.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }))).Messages ?? [];
      const [intake, dlq] = [await receive(queues.intakeQueueUrl), await receive(queues.deadLetterQueueUrl)];
      const back = maxReceiveCount === 5 ? intake : dlq;
      expect(back.map((m) => m.Body)).toEqual(['retry-me']);
      expect(back[0]!.MessageAttributes?.a?.StringValue).toBe('b');
      expect(maxReceiveCount === 5 ? dlq : intake).toHaveLength(0);
      c.destroy();
      await queues.close();
    }
  });
});
