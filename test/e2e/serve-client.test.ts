/**
 * A standard AWS client against `moderation serve`: PutObject with @aws-sdk/client-s3 to the
 * printed endpoint, then the decision found with a DynamoDB Query, as any platform's code would.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { startLongRunning, ROOT } from './cli.ts';
import { eventually } from '../local/stack-helpers.ts';

const home = mkdtempSync(join(tmpdir(), 'moderation-e2e-serve-'));
let child: ChildProcess;
let info: {
  region: string;
  endpoints: { s3: string; sqs: string; dynamodb: string; rekognition: string; stepfunctions: string };
  uploadsBucket: string;
  uploadsPrefix: string;
  quarantineBucket: string;
  decisionTable: string;
  intakeQueueUrl: string;
  deadLetterQueueUrl: string;
};

beforeAll(async () => {
  const started = await startLongRunning(['serve', '--json', '--home', home]);
  child = started.child;
  child.removeAllListeners('exit');
  info = JSON.parse(started.firstLine);
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
  }
  rmSync(home, { recursive: true, force: true });
});

const credentials = { accessKeyId: 'any', secretAccessKey: 'any' };

function waitForDecision(db: DynamoDBClient, key: string) {
  return eventually(async () => {
    const { Items } = await db.send(
      new QueryCommand({
        TableName: info.decisionTable,
        IndexName: 'byImage',
        KeyConditionExpression: 'imageKey = :k',
        ExpressionAttributeValues: { ':k': { S: `${info.uploadsBucket}/${key}` } },
        ScanIndexForward: false,
      }),
    );
    return Items?.[0];
  }, 60_000, 100);
}

describe('moderation serve', () => {
  it('prints every endpoint and name as one JSON line, bound to 127.0.0.1', () => {
    for (const service of ['s3', 'sqs', 'dynamodb', 'stepfunctions', 'rekognition'] as const) {
      expect(info.endpoints[service]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    }
    expect(info).toMatchObject({ uploadsBucket: expect.any(String), quarantineBucket: expect.any(String), decisionTable: expect.any(String) });
    expect(info.intakeQueueUrl).toMatch(/^http/);
  });

  it('moderates an object a standard S3 client puts, and the decision is found with a standard Query', async () => {
    const s3 = new S3Client({ region: info.region, endpoint: info.endpoints.s3, forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED' });
    const db = new DynamoDBClient({ region: info.region, endpoint: info.endpoints.dynamodb, credentials });
    const clean = `${info.uploadsPrefix}platform-user/holiday photo.jpg`;
    const explicit = `${info.uploadsPrefix}platform-user/blobs.jpg`;
    await s3.send(new PutObjectCommand({ Bucket: info.uploadsBucket, Key: clean, Body: readFileSync(join(ROOT, 'samples/approve-landscape.jpg')), ContentType: 'image/jpeg' }));
    await s3.send(new PutObjectCommand({ Bucket: info.uploadsBucket, Key: explicit, Body: readFileSync(join(ROOT, 'samples/reject-skin-blobs.jpg')), ContentType: 'image/jpeg' }));

    const approved = await waitForDecision(db, clean);
    expect(approved.status?.S).toBe('APPROVED');
    expect(approved.uploader?.S).toBe('platform-user');
    // Apply runs after Record: wait for the tag, do not read it the moment the decision appears.
    const status = await eventually(async () => {
      const { TagSet } = await s3.send(new GetObjectTaggingCommand({ Bucket: info.uploadsBucket, Key: clean }));
      return TagSet?.find((tag) => tag.Key === 'moderation-status')?.Value;
    }, 30_000, 100);
    expect(status).toBe('APPROVED');

    const rejected = await waitForDecision(db, explicit);
    expect(rejected.status?.S).toBe('REJECTED');
    // Applied after recording: wait for the move.
    const quarantined = await eventually(
      () => s3.send(new HeadObjectCommand({ Bucket: info.quarantineBucket, Key: `${info.uploadsBucket}/${explicit}` })).then(() => true),
      30_000,
      100,
    );
    expect(quarantined).toBe(true);
    await expect(s3.send(new HeadObjectCommand({ Bucket: info.uploadsBucket, Key: explicit }))).rejects.toThrow();
    s3.destroy();
    db.destroy();
  });
});
