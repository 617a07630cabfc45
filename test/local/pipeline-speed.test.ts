/**
 * What keeps the local pipeline close to the detector's speed (docs/performance.md) without changing
 * what it does: the local Rekognition reads images by S3 reference from the S3 store in this process
 * (no HTTP GET), the poller hands a lone message over without a 40 ms fill receive, and the decision
 * events can be listened to instead of polling the table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DetectModerationLabelsCommand, InvalidS3ObjectException, RekognitionClient } from '@aws-sdk/client-rekognition';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import sharp from 'sharp';
import { startLocalS3, type LocalS3 } from '../../local/s3.ts';
import { startDetectorEndpoint, type DetectorEndpoint } from '../../local/detector/server.ts';
import { startLocalSqs, type LocalSqs } from '../../local/sqs.ts';
import { startPoller, type Poller } from '../../local/poller.ts';
import { localDecisionEvents } from '../../local/decision-events.ts';
import { silentLogger } from '../../local/net.ts';
import type { ModerationDecisionEvent } from '../../functions/lib/decision-event.ts';
import { AUTO_DECISION_SK } from '../../functions/store/table-schema.ts';
import { eventually } from './stack-helpers.ts';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const homes: string[] = [];
const home = () => {
  const dir = mkdtempSync(join(tmpdir(), 'pipeline-speed-'));
  homes.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of homes) rmSync(dir, { recursive: true, force: true });
});

describe('the local Rekognition reads S3 in this process', () => {
  let s3: LocalS3;
  let client: S3Client;
  let detector: DetectorEndpoint;
  let rekognition: RekognitionClient;
  const reads: string[] = [];
  let image: Buffer;

  beforeAll(async () => {
    s3 = await startLocalS3({ directory: home(), buckets: ['pictures'] });
    client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED' });
    image = await sharp({ create: { width: 200, height: 150, channels: 3, background: '#3a7bd5' } }).jpeg().toBuffer();
    await client.send(new PutObjectCommand({ Bucket: 'pictures', Key: 'a/b c.jpg', Body: image }));
    detector = await startDetectorEndpoint({
      // Unreachable over HTTP: every read must come through `read`.
      s3: {
        endpoint: 'http://127.0.0.1:9',
        credentials,
        read: (bucket, key, max) => {
          reads.push(`${bucket}/${key}`);
          return s3.readObject(bucket, key, max);
        },
      },
      classify: async () => ({ Drawing: 0.01, Hentai: 0.01, Neutral: 0.96, Porn: 0.01, Sexy: 0.01 }),
    });
    rekognition = new RekognitionClient({ endpoint: detector.endpoint, region: 'us-east-1', credentials });
  });

  afterAll(async () => {
    rekognition?.destroy();
    client?.destroy();
    await detector?.close();
    await s3?.close();
  });

  it('readObject gives the stored bytes, only the size above the limit, nothing for a missing object', async () => {
    expect(await s3.readObject('pictures', 'a/b c.jpg', 10_000_000)).toEqual({ size: image.length, bytes: image });
    expect(await s3.readObject('pictures', 'a/b c.jpg', 100)).toEqual({ size: image.length });
    expect(await s3.readObject('pictures', 'a/missing.jpg', 100)).toBeUndefined();
  });

  it('answers DetectModerationLabels by S3 reference from the store, with the same errors as over HTTP', async () => {
    const out = await rekognition.send(new DetectModerationLabelsCommand({ Image: { S3Object: { Bucket: 'pictures', Name: 'a/b c.jpg' } } }));
    expect(out.ModerationModelVersion).toBe('7.0');
    expect(reads).toEqual(['pictures/a/b c.jpg']);
    expect(detector.stats().images).toEqual({ bytes: 0, s3: 1 });
    await expect(rekognition.send(new DetectModerationLabelsCommand({ Image: { S3Object: { Bucket: 'pictures', Name: 'a/missing.jpg' } } }))).rejects.toBeInstanceOf(
      InvalidS3ObjectException,
    );
  });
});

describe('the poller on an idle queue', () => {
  let sqs: LocalSqs;
  let client: SQSClient;
  let poller: Poller | undefined;
  const commands: string[] = [];

  beforeAll(async () => {
    sqs = await startLocalSqs({ visibilityTimeoutSeconds: 30 });
    client = new SQSClient({ endpoint: sqs.endpoint, region: 'us-east-1', credentials });
    client.middlewareStack.add((next, context) => (args) => {
      commands.push(String(context.commandName));
      return next(args);
    });
  });

  afterEach(async () => {
    await poller?.stop();
    poller = undefined;
  });

  afterAll(async () => {
    client?.destroy();
    await sqs?.close();
  });

  const start = (batches: SQSEvent[]) =>
    startPoller({
      sqs: client,
      queueUrl: sqs.intakeQueueUrl,
      queueArn: sqs.intakeQueueArn,
      maxConcurrency: 1,
      waitTimeSeconds: 1,
      handler: async (event) => {
        batches.push(event);
        commands.push('handler');
      },
    });

  it('hands a lone message over after one receive (no receive that waits to fill the batch)', async () => {
    const batches: SQSEvent[] = [];
    poller = start(batches);
    // Let the poll start, then send one message.
    await eventually(async () => (commands.includes('ReceiveMessageCommand') ? true : undefined));
    commands.length = 0;
    await client.send(new SendMessageCommand({ QueueUrl: sqs.intakeQueueUrl, MessageBody: 'alone' }));
    await eventually(async () => (batches.length ? true : undefined));
    expect(batches[0]!.Records.map((r) => r.body)).toEqual(['alone']);
    // The send, the queue's count (nothing else visible), then the handler: no second ReceiveMessage.
    expect(commands.slice(0, commands.indexOf('handler') + 1)).toEqual(['SendMessageCommand', 'GetQueueAttributesCommand', 'handler']);
  });

  it('still fills a batch with the messages waiting', async () => {
    await client.send(new SendMessageBatchCommand({ QueueUrl: sqs.intakeQueueUrl, Entries: ['1', '2', '3', '4', '5'].map((id) => ({ Id: id, MessageBody: `m${id}` })) }));
    const batches: SQSEvent[] = [];
    poller = start(batches);
    await eventually(async () => (batches.flatMap((b) => b.Records).length === 5 ? true : undefined));
    expect(batches).toHaveLength(1);
    expect(batches[0]!.Records.map((r) => r.body).sort()).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
  });
});

describe('decision events can be listened to', () => {
  it('tells a listener each decision once its write succeeded, and nothing for a refused write', () => {
    const events = localDecisionEvents({ home: home(), log: silentLogger });
    const heard: ModerationDecisionEvent[] = [];
    const unsubscribe = events.subscribe((event) => heard.push(event));
    events.subscribe(() => {
      throw new Error('a broken listener changes nothing');
    });
    const record = (jobId: string) => ({
      pk: `JOB#${jobId}`,
      sk: AUTO_DECISION_SK,
      jobId,
      kind: 'automated',
      bucket: 'b',
      key: `uploads/u/${jobId}.jpg`,
      status: 'APPROVED',
      decidedBy: 'rekognition',
      decidedAt: '2026-12-02T00:00:00.000Z',
      labels: [],
    });
    const written = events.stream.beforePut(record('one'));
    expect(heard).toEqual([]); // not before the table has it
    events.stream.afterPut(written, 'written');
    events.stream.afterPut(events.stream.beforePut(record('two')), 'refused');
    expect(heard.map((e) => e.key)).toEqual(['uploads/u/one.jpg']);
    unsubscribe();
    events.stream.afterPut(events.stream.beforePut(record('three')), 'written');
    expect(heard).toHaveLength(1);
  });
});
