/**
 * Never pay twice for the same bytes, through the whole local pipeline (s3rver, the intake queue,
 * dynalite, the ASL, the real handlers) with a fake Rekognition that answers by key: bytes uploaded
 * again in parts (a real multipart upload: CompleteMultipartUpload) repeat the decision without a
 * Rekognition call; a near-duplicate of a rejected image is rejected as a repeat; the content
 * index's items are in the table but are not decisions (no decision event for them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { localClientConfig, startLocalStack, type LocalStack } from '../../local/stack.ts';
import { automatedRecord, eventually, RETRY_NOW, startFakeRekognition, tempHome, type FakeRekognition } from './stack-helpers.ts';
import { sceneJpeg, transformedCopies } from '../../bench/scenes.ts';

describe('content reuse in the local stack', () => {
  const home = tempHome('moderation-reuse-');
  let rekognition: FakeRekognition;
  let stack: LocalStack;
  let s3: S3Client;
  let table: DynamoDBDocumentClient;
  const savedEnv = { ...process.env };

  const decisionFor = (key: string) => automatedRecord(stack, table, key);
  const callsFor = (key: string) => rekognition.calls.filter((c) => c.body.Image?.S3Object?.Name === key).length;

  beforeAll(async () => {
    rekognition = await startFakeRekognition();
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_PROFILE;
    stack = await startLocalStack({
      home: home.dir,
      detector: { endpoint: rekognition.endpoint },
      retryIntervalOverrides: RETRY_NOW,
      quiet: true,
      visibilityTimeoutSeconds: 5,
      // The fake answers by key: reuse is switched on here on purpose (stack-helpers.ts turns it off).
      reuseDecisions: true,
    });
    const config = localClientConfig(stack);
    s3 = new S3Client(config.s3);
    table = DynamoDBDocumentClient.from(new DynamoDBClient(config.dynamodb));
  });

  afterAll(async () => {
    s3?.destroy();
    table?.destroy();
    await stack?.stop();
    await rekognition?.close();
    home.remove();
    process.env = savedEnv;
  });

  it('bytes uploaded again in parts repeat the decision (reusedFrom), with no Rekognition call; a near-duplicate is rejected as a repeat', async () => {
    expect(stack.env.REUSE_DECISIONS).toBe('on');
    // A scene with film grain: about 2 MB, so it splits into a 5 MB-free multipart upload of 3 parts.
    const scene = await sharp(await sceneJpeg(77, { width: 1600, height: 1200 }))
      .composite([{ input: await sharp({ create: { width: 1600, height: 1200, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).png().toBuffer(), blend: 'overlay' }])
      .jpeg({ quality: 90 })
      .toBuffer();
    // 'reject' in the key: the fake Rekognition answers Explicit 95.5.
    const original = 'uploads/ann/reject-original.jpg';
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: original, Body: scene }));
    const first = await decisionFor(original);
    expect(first).toMatchObject({ status: 'REJECTED', decidedBy: 'rekognition' });

    // The same bytes as a multipart upload under a key the fake would approve.
    const copy = 'uploads/bob/copy.jpg';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: stack.names.uploadsBucket, Key: copy }));
    const size = Math.ceil(scene.length / 3);
    const parts = [];
    for (let i = 0; i < 3; i++) {
      const { ETag } = await s3.send(new UploadPartCommand({ Bucket: stack.names.uploadsBucket, Key: copy, UploadId, PartNumber: i + 1, Body: scene.subarray(i * size, (i + 1) * size) }));
      parts.push({ ETag, PartNumber: i + 1 });
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: stack.names.uploadsBucket, Key: copy, UploadId, MultipartUpload: { Parts: parts } }));
    // On AWS the ETag of a multipart upload is the MD5 of the parts' MD5s with "-3", not the bytes' MD5
    // (test/statemachine/reuse.test.ts gives an upload such an ETag); s3rver gives the bytes' MD5. What
    // this shows is the multipart path end to end: a CompleteMultipartUpload event, one GET, the SHA-256.
    const head = await s3.send(new HeadObjectCommand({ Bucket: stack.names.uploadsBucket, Key: copy }));
    expect(head.ContentLength).toBe(scene.length);
    const repeat = await decisionFor(copy);
    expect(repeat).toMatchObject({ status: 'REJECTED', decidedBy: 'policy', reusedFrom: first!.jobId });
    expect(callsFor(copy)).toBe(0);

    // A copy at JPEG quality 60 under another innocent key: a near-duplicate of a rejected image.
    const reencoded = 'uploads/bob/reencoded.jpg';
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: reencoded, Body: (await transformedCopies(scene)).jpeg60 }));
    const near = await decisionFor(reencoded);
    expect(near).toMatchObject({ status: 'REJECTED', decidedBy: 'policy', reusedFrom: first!.jobId });
    expect(near!.reason).toMatch(/^near-duplicate of a rejected image \(distance \d+\)/);
    expect(callsFor(reencoded)).toBe(0);

    // A distinct picture under an innocent key is judged (and approved) by Rekognition.
    const other = 'uploads/bob/other.jpg';
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: other, Body: await sceneJpeg(78, { width: 1600, height: 1200 }) }));
    expect(await decisionFor(other)).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition' });
    expect(callsFor(other)).toBe(1);

    // The content index shares the table with the history, but none of its items is a decision: each
    // decision record has its one event in the outbox, and nothing else does.
    const { Items = [] } = await table.send(new ScanCommand({ TableName: stack.names.decisionTable, ConsistentRead: true }));
    const kinds = new Set(Items.map((item) => String(item.pk).split('#')[0]));
    expect([...kinds].sort()).toEqual(['CONTENT', 'JOB', 'NEAR']);
    const decisions = Items.filter((item) => String(item.pk).startsWith('JOB#'));
    await eventually(async () => (stack.events.outbox.list().length >= decisions.length ? true : undefined));
    expect(stack.events.outbox.list().map((entry) => entry.recordKey.pk).every((pk) => pk.startsWith('JOB#'))).toBe(true);
    expect(stack.events.outbox.list()).toHaveLength(decisions.length);
  });
});
