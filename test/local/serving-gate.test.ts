/**
 * Invariant 7 locally: the local S3 serves a moderated object to anyone but the pipeline only once
 * it is APPROVED, and refuses moderation-* tags from anyone but the pipeline (as the construct's
 * bucket policy does on AWS), so a platform developer sees the 403 before deploying.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand, PutObjectTaggingCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { localClientConfig, startLocalStack, type LocalStack } from '../../local/stack.ts';
import { checkServingGate, statusTagIn, tagKeysWritten } from '../../local/serving-gate.ts';
import { eventually, jpeg, RETRY_NOW, startFakeRekognition, tempHome, type FakeRekognition } from './stack-helpers.ts';

describe('serving gate (pure)', () => {
  const gate = { bucket: 'uploads', prefix: 'uploads/', pipelineAccessKeys: ['local'] };
  const signed = (key: string) => `AWS4-HMAC-SHA256 Credential=${key}/20261202/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x`;

  it('lets the pipeline read anything, others only APPROVED objects in the moderated prefix', async () => {
    const read = (authorization: string, url = '/uploads/uploads/a.jpg') => checkServingGate({ method: 'GET', url, headers: { authorization } }, gate, async () => 'REVIEW');
    expect(await read(signed('local'))).toEqual({ allowed: true });
    expect(await read(signed('platform'))).toMatchObject({ allowed: false, reason: expect.stringContaining('REVIEW') });
    expect(await read(signed('platform'), '/uploads/other/a.jpg')).toEqual({ allowed: true });
    expect(await read(signed('platform'), '/uploads/uploads/a.jpg?tagging')).toEqual({ allowed: true });
    expect(await checkServingGate({ method: 'GET', url: '/uploads/uploads/a.jpg', headers: { authorization: signed('platform') } }, gate, async () => 'APPROVED')).toEqual({ allowed: true });
    expect(await checkServingGate({ method: 'HEAD', url: '/uploads/uploads/a.jpg', headers: {} }, gate, async () => undefined)).toMatchObject({ allowed: false });
  });

  it('refuses moderation-* tags from anyone but the pipeline, in the header or the tagging body', async () => {
    const put = (headers: Record<string, string>, body?: string, url = '/uploads/uploads/a.jpg') => checkServingGate({ method: 'PUT', url, headers }, gate, async () => undefined, body);
    expect(await put({ authorization: signed('platform'), 'x-amz-tagging': 'team=a&moderation-status=APPROVED' })).toMatchObject({ allowed: false });
    expect(await put({ authorization: signed('platform'), 'x-amz-tagging': 'team=a' })).toEqual({ allowed: true });
    const body = '<Tagging><TagSet><Tag><Key>moderation-status</Key><Value>APPROVED</Value></Tag></TagSet></Tagging>';
    expect(await put({ authorization: signed('platform') }, body, '/uploads/uploads/a.jpg?tagging')).toMatchObject({ allowed: false });
    expect(await put({ authorization: signed('local') }, body, '/uploads/uploads/a.jpg?tagging')).toEqual({ allowed: true });
    expect(tagKeysWritten({ headers: {} }, body)).toEqual(['moderation-status']);
    expect(statusTagIn('<Tagging><TagSet><Tag><Key>moderation-status</Key><Value>APPROVED</Value></Tag></TagSet></Tagging>')).toBe('APPROVED');
  });
});

describe('serving gate (local stack)', () => {
  const home = tempHome();
  let rekognition: FakeRekognition;
  let stack: LocalStack;
  let pipeline: S3Client;
  let platform: S3Client;
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    rekognition = await startFakeRekognition();
    stack = await startLocalStack({ home: home.dir, detector: { endpoint: rekognition.endpoint }, quiet: true, persistQueues: false, retryIntervalOverrides: RETRY_NOW });
    const config = localClientConfig(stack);
    pipeline = new S3Client(config.s3);
    // A platform's own client: its own keys, like boto3 or an app server against `moderation serve`.
    platform = new S3Client({ ...config.s3, credentials: { accessKeyId: 'platform-app', secretAccessKey: 'secret' } });
  });

  afterAll(async () => {
    pipeline?.destroy();
    platform?.destroy();
    await stack?.stop();
    await rekognition?.close();
    home.remove();
    process.env = savedEnv;
  });

  const statusOf = (client: S3Client, key: string) =>
    client.send(new GetObjectTaggingCommand({ Bucket: stack.names.uploadsBucket, Key: key })).then((t) => t.TagSet?.find((tag) => tag.Key === 'moderation-status')?.Value);

  it('a platform reads an upload only once it is APPROVED; REVIEW stays 403, also through a presigned URL', async () => {
    const clean = `${stack.names.uploadsPrefix}pat/clean.jpg`;
    const held = `${stack.names.uploadsPrefix}pat/borderline.jpg`;
    for (const key of [clean, held]) await platform.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: await jpeg() }));
    expect(await eventually(() => statusOf(pipeline, clean), 30_000)).toBe('APPROVED');
    expect(await eventually(() => statusOf(pipeline, held), 30_000)).toBe('REVIEW');

    const got = await platform.send(new GetObjectCommand({ Bucket: stack.names.uploadsBucket, Key: clean }));
    expect((await got.Body!.transformToByteArray()).length).toBeGreaterThan(0);
    await expect(platform.send(new GetObjectCommand({ Bucket: stack.names.uploadsBucket, Key: held }))).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(platform.send(new HeadObjectCommand({ Bucket: stack.names.uploadsBucket, Key: held }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    const url = await getSignedUrl(platform, new GetObjectCommand({ Bucket: stack.names.uploadsBucket, Key: held }), { expiresIn: 60 });
    expect((await fetch(url)).status).toBe(403);
    const approvedUrl = await getSignedUrl(platform, new GetObjectCommand({ Bucket: stack.names.uploadsBucket, Key: clean }), { expiresIn: 60 });
    expect((await fetch(approvedUrl)).status).toBe(200);
    // The pipeline (and the CLI and console, with the stack's own key) still reads what it holds.
    const own = await pipeline.send(new GetObjectCommand({ Bucket: stack.names.uploadsBucket, Key: held }));
    expect((await own.Body!.transformToByteArray()).length).toBeGreaterThan(0);
  });

  it('an uploader cannot forge the pipeline tags, in the upload or afterwards; its own tags are fine', async () => {
    const key = `${stack.names.uploadsPrefix}mallory/borderline-forged.jpg`;
    await expect(
      platform.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: await jpeg(), Tagging: 'moderation-status=APPROVED' })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
    await platform.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: await jpeg(), Tagging: 'team=blue' }));
    expect(await eventually(() => statusOf(pipeline, key), 30_000)).toBe('REVIEW');
    await expect(
      platform.send(new PutObjectTaggingCommand({ Bucket: stack.names.uploadsBucket, Key: key, Tagging: { TagSet: [{ Key: 'moderation-status', Value: 'APPROVED' }] } })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
    await platform.send(new PutObjectTaggingCommand({ Bucket: stack.names.uploadsBucket, Key: key, Tagging: { TagSet: [{ Key: 'team', Value: 'red' }] } }));
    await expect(platform.send(new GetObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key }))).rejects.toMatchObject({ name: 'AccessDenied' });
  });
});
