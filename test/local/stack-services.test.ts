/**
 * Each emulated service of the local runtime answers a real @aws-sdk v3 client: S3 (s3rver) with the
 * bucket → queue notification in S3's real shape, SQS (local-aws-sqs) with redrive to the DLQ,
 * DynamoDB (dynalite) with the decision table's GSIs on disk.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createServer } from 'node:http';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SendMessageCommand, SQSClient, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { DescribeTableCommand, DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { startLocalS3, type LocalS3 } from '../../local/s3.ts';
import { startLocalSqs, type LocalSqs } from '../../local/sqs.ts';
import { DECISION_TABLE_NAME, startLocalDynamo } from '../../local/dynamodb.ts';
import { decodeS3Key } from '../../functions/lib/s3-event.ts';
import { DECISION_INDEXES, INDEX_PROJECTED_ATTRIBUTES } from '../../functions/store/table-schema.ts';
import { startLocalStack } from '../../local/stack.ts';
import { closeServer, listen } from '../../local/net.ts';
import { tempHome } from './stack-helpers.ts';

const creds = { accessKeyId: 'local', secretAccessKey: 'local' };
const region = 'us-east-1';

function s3Client(endpoint: string, credentials = creds): S3Client {
  return new S3Client({ endpoint, region, credentials, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED' });
}

async function drain(sqs: SQSClient, queueUrl: string): Promise<Array<{ body: string; receiveCount: number }>> {
  const out: Array<{ body: string; receiveCount: number }> = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60, AttributeNames: ['All'] }),
    );
    if (!Messages.length) return out;
    out.push(...Messages.map((m) => ({ body: m.Body!, receiveCount: Number(m.Attributes?.ApproximateReceiveCount) })));
  }
}

describe('S3 (s3rver) and the bucket notification', () => {
  const home = tempHome();
  let sqs: LocalSqs;
  let s3: LocalS3;
  let sqsClient: SQSClient;
  let client: S3Client;

  beforeAll(async () => {
    sqs = await startLocalSqs({ visibilityTimeoutSeconds: 30 });
    sqsClient = new SQSClient({ endpoint: sqs.endpoint, region, credentials: creds });
    s3 = await startLocalS3({
      directory: join(home.dir, 's3'),
      buckets: ['moderation-uploads', 'moderation-quarantine'],
      notifications: [{ bucket: 'moderation-uploads', prefix: 'uploads/', configurationId: 'moderation-intake', queueUrl: sqs.intakeQueueUrl, sqs: sqsClient }],
      spoolFile: join(home.dir, 'undelivered.jsonl'),
    });
    client = s3Client(s3.endpoint);
  });

  afterAll(async () => {
    client.destroy();
    await s3.close();
    sqsClient.destroy();
    await sqs.close();
    home.remove();
  });

  it('binds 127.0.0.1 and stores what PutObject sent, byte for byte (buffer and stream bodies)', async () => {
    expect(new URL(s3.endpoint).hostname).toBe('127.0.0.1');
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    await client.send(new PutObjectCommand({ Bucket: 'moderation-quarantine', Key: 'blob.bin', Body: bytes }));
    await client.send(
      new PutObjectCommand({ Bucket: 'moderation-quarantine', Key: 'stream.bin', Body: Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), ContentLength: bytes.length }),
    );
    for (const key of ['blob.bin', 'stream.bin']) {
      const got = await client.send(new GetObjectCommand({ Bucket: 'moderation-quarantine', Key: key }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(bytes)).toBe(true);
    }
  });

  it('accepts clients signing with any credentials (a user with real AWS keys)', async () => {
    const other = s3Client(s3.endpoint, { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' });
    await other.send(new PutObjectCommand({ Bucket: 'moderation-quarantine', Key: 'k.txt', Body: 'hi' }));
    const got = await other.send(new GetObjectCommand({ Bucket: 'moderation-quarantine', Key: 'k.txt' }));
    expect(await got.Body!.transformToString()).toBe('hi');
    other.destroy();
  });

  it('forwards Put, Copy and CompleteMultipartUpload under the prefix in the real S3 shape; never other prefixes or other buckets', async () => {
    const key = 'uploads/a b+c/ü.jpg';
    const body = Buffer.from('not really a jpeg');
    await client.send(new PutObjectCommand({ Bucket: 'moderation-uploads', Key: key, Body: body }));
    await client.send(new PutObjectCommand({ Bucket: 'moderation-uploads', Key: 'uploads/second.jpg', Body: body }));
    // A rename by copy is new content.
    await client.send(new CopyObjectCommand({ Bucket: 'moderation-uploads', Key: 'uploads/copy.jpg', CopySource: 'moderation-uploads/uploads/second.jpg' }));
    // Not forwarded:
    await client.send(new PutObjectCommand({ Bucket: 'moderation-uploads', Key: 'elsewhere/x.jpg', Body: body }));
    await client.send(new PutObjectCommand({ Bucket: 'moderation-quarantine', Key: 'uploads/x.jpg', Body: body }));
    // Multipart (one part may be small when it is the last).
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'moderation-uploads', Key: 'uploads/multi.jpg' }));
    const part = await client.send(new UploadPartCommand({ Bucket: 'moderation-uploads', Key: 'uploads/multi.jpg', UploadId, PartNumber: 1, Body: body }));
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: 'moderation-uploads', Key: 'uploads/multi.jpg', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }),
    );
    await s3.flush();

    const messages = (await drain(sqsClient, sqs.intakeQueueUrl)).map((m) => JSON.parse(m.body));
    const records = messages.map((m) => {
      expect(m.Records).toHaveLength(1);
      return m.Records[0];
    });
    expect(records.map((r) => decodeS3Key(r.s3.object.key)).sort()).toEqual(['uploads/a b+c/ü.jpg', 'uploads/copy.jpg', 'uploads/multi.jpg', 'uploads/second.jpg']);
    expect(records.find((r) => decodeS3Key(r.s3.object.key) === 'uploads/copy.jpg').eventName).toBe('ObjectCreated:Copy');

    const first = records.find((r) => decodeS3Key(r.s3.object.key) === key);
    expect(first).toMatchObject({
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      awsRegion: 'us-east-1',
      eventName: 'ObjectCreated:Put',
      s3: {
        s3SchemaVersion: '1.0',
        configurationId: 'moderation-intake',
        bucket: { name: 'moderation-uploads', arn: 'arn:aws:s3:::moderation-uploads' },
        object: { key: 'uploads/a+b%2Bc/%C3%BC.jpg', size: body.length, eTag: createHash('md5').update(body).digest('hex') },
      },
    });
    expect(first.s3.object).not.toHaveProperty('versionId');
    expect(new Date(first.eventTime).toISOString()).toBe(first.eventTime);
    expect(first.s3.object.sequencer).toMatch(/^[0-9A-F]{16,}$/);

    const second = records.find((r) => r.s3.object.key === 'uploads/second.jpg');
    expect(BigInt(`0x${second.s3.object.sequencer}`)).toBeGreaterThan(BigInt(`0x${first.s3.object.sequencer}`));
    expect(records.find((r) => r.s3.object.key === 'uploads/multi.jpg').eventName).toBe('ObjectCreated:CompleteMultipartUpload');
    expect(s3.delivered()).toBe(4);
  });

  it('spools a notification it cannot deliver and sends it at the next start', async () => {
    const spool = join(home.dir, 'spool.jsonl');
    const down = await startLocalS3({
      directory: join(home.dir, 's3-spool'),
      buckets: ['moderation-uploads'],
      // Nothing listens on port 9: SendMessage fails at once.
      notifications: [{ bucket: 'moderation-uploads', prefix: 'uploads/', queueUrl: sqs.intakeQueueUrl, sqs: new SQSClient({ endpoint: 'http://127.0.0.1:9', region, credentials: creds, maxAttempts: 1 }) }],
      spoolFile: spool,
      deliveryAttempts: 1,
    });
    const c = s3Client(down.endpoint);
    await c.send(new PutObjectCommand({ Bucket: 'moderation-uploads', Key: 'uploads/late.jpg', Body: 'x' }));
    await down.flush();
    c.destroy();
    await down.close();
    expect(readFileSync(spool, 'utf8')).toContain('uploads/late.jpg');

    const up = await startLocalS3({
      directory: join(home.dir, 's3-spool'),
      buckets: ['moderation-uploads'],
      notifications: [{ bucket: 'moderation-uploads', prefix: 'uploads/', queueUrl: sqs.intakeQueueUrl, sqs: sqsClient }],
      spoolFile: spool,
    });
    await up.flush();
    await up.close();
    expect(existsSync(spool)).toBe(false);
    const delivered = await drain(sqsClient, sqs.intakeQueueUrl);
    expect(delivered.map((m) => JSON.parse(m.body).Records[0].s3.object.key)).toEqual(['uploads/late.jpg']);
  });
});

describe('SQS (local-aws-sqs)', () => {
  it('delivers with receive counts and moves a message to the DLQ after maxReceiveCount (5) receives', async () => {
    const sqs = await startLocalSqs({ visibilityTimeoutSeconds: 30 });
    const client = new SQSClient({ endpoint: sqs.endpoint, region, credentials: creds });
    try {
      expect(new URL(sqs.endpoint).hostname).toBe('127.0.0.1');
      expect(sqs.intakeQueueUrl).toBe(`${sqs.endpoint}/000000000000/moderation-intake`);
      const { Attributes } = await client.send(new GetQueueAttributesCommand({ QueueUrl: sqs.intakeQueueUrl, AttributeNames: ['All'] }));
      expect(JSON.parse(Attributes!.RedrivePolicy!)).toEqual({ deadLetterTargetArn: sqs.deadLetterQueueArn, maxReceiveCount: 5 });
      expect(Attributes!.VisibilityTimeout).toBe('30');

      await client.send(new SendMessageCommand({ QueueUrl: sqs.intakeQueueUrl, MessageBody: 'poison' }));
      const counts: number[] = [];
      while (counts.length < 5) {
        // VisibilityTimeout 0: the message is back (or redriven) as soon as this receive is over.
        const { Messages = [] } = await client.send(
          new ReceiveMessageCommand({ QueueUrl: sqs.intakeQueueUrl, AttributeNames: ['All'], VisibilityTimeout: 0, WaitTimeSeconds: 1 }),
        );
        counts.push(...Messages.map((m) => Number(m.Attributes!.ApproximateReceiveCount)));
      }
      expect(counts).toEqual([1, 2, 3, 4, 5]);
      const dlq = await client.send(new ReceiveMessageCommand({ QueueUrl: sqs.deadLetterQueueUrl, WaitTimeSeconds: 2, AttributeNames: ['All'] }));
      expect(dlq.Messages?.map((m) => m.Body)).toEqual(['poison']);
      const left = await client.send(new ReceiveMessageCommand({ QueueUrl: sqs.intakeQueueUrl, WaitTimeSeconds: 0 }));
      expect(left.Messages ?? []).toHaveLength(0);
    } finally {
      client.destroy();
      await sqs.close();
    }
  });

  it('keeps messages across a restart only through saveMessages/restoreMessages', async () => {
    const home = tempHome();
    const first = await startLocalSqs();
    let client = new SQSClient({ endpoint: first.endpoint, region, credentials: creds });
    await client.send(new SendMessageCommand({ QueueUrl: first.intakeQueueUrl, MessageBody: 'queued' }));
    await client.send(
      new SendMessageCommand({ QueueUrl: first.deadLetterQueueUrl, MessageBody: 'failed', MessageAttributes: { errorName: { DataType: 'String', StringValue: 'Boom' } } }),
    );
    expect(await first.saveMessages(home.dir)).toEqual({ intake: 1, deadLetter: 1 });
    client.destroy();
    await first.close();

    const second = await startLocalSqs();
    client = new SQSClient({ endpoint: second.endpoint, region, credentials: creds });
    // local-aws-sqs itself keeps nothing: a new server starts empty.
    expect((await client.send(new ReceiveMessageCommand({ QueueUrl: second.intakeQueueUrl, WaitTimeSeconds: 0 }))).Messages ?? []).toHaveLength(0);
    expect(await second.restoreMessages(home.dir)).toEqual({ intake: 1, deadLetter: 1 });
    const intake = await client.send(new ReceiveMessageCommand({ QueueUrl: second.intakeQueueUrl, WaitTimeSeconds: 0 }));
    expect(intake.Messages?.map((m) => m.Body)).toEqual(['queued']);
    const dlq = await client.send(new ReceiveMessageCommand({ QueueUrl: second.deadLetterQueueUrl, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }));
    expect(dlq.Messages?.[0]?.Body).toBe('failed');
    expect(dlq.Messages?.[0]?.MessageAttributes?.errorName?.StringValue).toBe('Boom');
    expect(await second.restoreMessages(home.dir)).toEqual({ intake: 0, deadLetter: 0 });
    client.destroy();
    await second.close();
    home.remove();
  });
});

describe('DynamoDB (dynalite)', () => {
  it('creates the decision table with its four GSIs, answers PutItem/Query on a GSI, and keeps it on disk across a restart', async () => {
    const home = tempHome();
    const path = join(home.dir, 'dynamodb');
    const first = await startLocalDynamo({ path });
    expect(first.table).toBe('created');
    let client = new DynamoDBClient({ endpoint: first.endpoint, region, credentials: creds });
    const { Table } = await client.send(new DescribeTableCommand({ TableName: DECISION_TABLE_NAME }));
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect(Table?.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    const gsis = Object.fromEntries((Table?.GlobalSecondaryIndexes ?? []).map((g) => [g.IndexName, g]));
    for (const index of Object.values(DECISION_INDEXES)) {
      expect(gsis[index.name]?.KeySchema).toEqual([
        { AttributeName: index.partitionKey, KeyType: 'HASH' },
        { AttributeName: 'decidedAt', KeyType: 'RANGE' },
      ]);
      // Keys and the attributes the audit queries filter on, as the CDK construct deploys them.
      expect(gsis[index.name]?.Projection).toEqual({ ProjectionType: 'INCLUDE', NonKeyAttributes: [...INDEX_PROJECTED_ATTRIBUTES] });
    }
    for (const [i, status] of ['REJECTED', 'REJECTED', 'APPROVED'].entries()) {
      await client.send(
        new PutItemCommand({
          TableName: DECISION_TABLE_NAME,
          Item: { pk: { S: `JOB#${i}` }, sk: { S: 'DECISION#auto' }, statusShard: { S: `${status}#0` }, decidedAt: { S: `2026-11-0${i + 1}T00:00:00Z` }, status: { S: status } },
        }),
      );
    }
    const query = () =>
      client.send(
        new QueryCommand({
          TableName: DECISION_TABLE_NAME,
          IndexName: 'byStatus',
          KeyConditionExpression: 'statusShard = :s AND decidedAt >= :t',
          ExpressionAttributeValues: { ':s': { S: 'REJECTED#0' }, ':t': { S: '2026-11-01' } },
          ScanIndexForward: false,
        }),
      );
    expect((await query()).Items?.map((item) => item.pk?.S)).toEqual(['JOB#1', 'JOB#0']);
    client.destroy();
    await first.close();

    const second = await startLocalDynamo({ path });
    expect(second.table).toBe('existing');
    client = new DynamoDBClient({ endpoint: second.endpoint, region, credentials: creds });
    expect((await query()).Items?.map((item) => item.pk?.S)).toEqual(['JOB#1', 'JOB#0']);
    // One opener per store: a second one fails with a clear error instead of crashing the process.
    await expect(startLocalDynamo({ path })).rejects.toThrow(/in use/);
    client.destroy();
    await second.close();
    home.remove();
  });
});

describe('startLocalStack (stub functions)', () => {
  const stubs = {
    ingest: async () => ({ batchItemFailures: [] }),
    detect: async (s: never) => s,
    review: async (s: never) => s,
    record: async (s: never) => s,
    apply: async (s: never) => s,
    fail: async (s: never) => s,
  };

  async function freePorts(n: number): Promise<number[]> {
    const servers = await Promise.all(Array.from({ length: n }, async () => {
      const server = createServer();
      return { server, port: await listen(server, 0) };
    }));
    await Promise.all(servers.map(({ server }) => closeServer(server)));
    return servers.map(({ port }) => port);
  }

  it('binds the fixed ports it is given (serve), and a port in use fails the start cleanly', async () => {
    const home = tempHome();
    const before = process.env.AWS_ENDPOINT_URL_S3;
    const [s3, sqs, dynamodb, stepfunctions, ssm] = await freePorts(5);
    const options = { home: home.dir, functions: stubs, detector: { endpoint: 'http://127.0.0.1:9' }, quiet: true, ports: { s3, sqs, dynamodb, stepfunctions, ssm } };
    const stack = await startLocalStack(options);
    expect(stack.endpoints).toEqual({
      s3: `http://127.0.0.1:${s3}`,
      sqs: `http://127.0.0.1:${sqs}`,
      dynamodb: `http://127.0.0.1:${dynamodb}`,
      stepfunctions: `http://127.0.0.1:${stepfunctions}`,
      rekognition: 'http://127.0.0.1:9',
      ssm: `http://127.0.0.1:${ssm}`,
    });
    expect(process.env.AWS_ENDPOINT_URL_S3).toBe(stack.endpoints.s3);

    // A port taken by someone else: the start fails and closes what it had opened.
    const blocker = createServer();
    await stack.stop();
    await listen(blocker, stepfunctions!);
    await expect(startLocalStack(options)).rejects.toThrow(/already in use/);
    await closeServer(blocker);
    expect(process.env.AWS_ENDPOINT_URL_S3).toBe(before);
    // Everything the failed start opened was closed: the same ports start again.
    const again = await startLocalStack(options);
    await again.stop();
    home.remove();
  });
});
