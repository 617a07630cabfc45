/**
 * The local S3 reads a bucket's configuration (CORS, website) once and keeps it until it changes
 * (local/s3.ts, cacheBucketConfigurations): a change through the API is seen by the next request.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DeleteBucketCorsCommand, GetBucketCorsCommand, PutBucketCorsCommand, S3Client } from '@aws-sdk/client-s3';
import { startLocalS3, UPLOADS_BUCKET, type LocalS3 } from '../../local/s3.ts';

let base: string;
let s3: LocalS3;
let client: S3Client;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'moderation-s3-config-'));
  s3 = await startLocalS3({ directory: join(base, 'data'), buckets: [UPLOADS_BUCKET] });
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
});

afterAll(async () => {
  client?.destroy();
  await s3?.close();
  rmSync(base, { recursive: true, force: true });
});

const rule = (origin: string) => ({ CORSConfiguration: { CORSRules: [{ AllowedOrigins: [origin], AllowedMethods: ['GET'] }] } });
const origins = async () => (await client.send(new GetBucketCorsCommand({ Bucket: UPLOADS_BUCKET }))).CORSRules?.flatMap((r) => r.AllowedOrigins ?? []);

it('a bucket configuration set, changed or deleted is what the next request sees', async () => {
  await expect(origins()).rejects.toMatchObject({ name: 'NoSuchCORSConfiguration' });
  await client.send(new PutBucketCorsCommand({ Bucket: UPLOADS_BUCKET, ...rule('http://localhost:3000') }));
  expect(await origins()).toEqual(['http://localhost:3000']);
  await client.send(new PutBucketCorsCommand({ Bucket: UPLOADS_BUCKET, ...rule('http://localhost:4000') }));
  expect(await origins()).toEqual(['http://localhost:4000']);
  await client.send(new DeleteBucketCorsCommand({ Bucket: UPLOADS_BUCKET }));
  await expect(origins()).rejects.toMatchObject({ name: 'NoSuchCORSConfiguration' });
});
