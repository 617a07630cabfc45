/**
 * The local S3 never reads, writes or deletes a file outside its data directory (issue 10, section 5).
 *
 * s3rver maps request input onto file paths. Each attack below is a raw HTTP request, as any local
 * process (or, for the form POST, any web page) can send it to `moderation serve`; each must be
 * refused with a 4xx and leave the files around the data directory as they were. The last block
 * drives the confined store directly, without the input checks, to prove that the filesystem
 * wrapper alone (the one place files are opened) holds.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { confinedStoreClasses, startLocalS3, QUARANTINE_BUCKET, UPLOADS_BUCKET, type LocalS3 } from '../../local/s3.ts';
import { formData, listTree, rawRequest } from './raw-http.ts';

let base: string;
let data: string;
let s3: LocalS3;
let client: S3Client;
let outsideBefore: string[];

beforeAll(async () => {
  // base/            <- must stay as it is
  //   data/          <- the local S3's directory
  //   secret._S3rver_object, victim-upload/...   <- files an attacker would like to read or delete
  base = mkdtempSync(join(tmpdir(), 'moderation-s3-confinement-'));
  data = join(base, 'data');
  s3 = await startLocalS3({ directory: data, buckets: [UPLOADS_BUCKET, QUARANTINE_BUCKET] });
  client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});

afterAll(async () => {
  client?.destroy();
  await s3?.close();
  rmSync(base, { recursive: true, force: true });
});

beforeEach(() => {
  // A file that looks like an s3rver object (the store appends ._S3rver_object to every key) and an
  // upload directory outside the data directory.
  writeFileSync(join(base, 'secret._S3rver_object'), 'TOP SECRET');
  mkdirSync(join(base, 'victim-upload'), { recursive: true });
  writeFileSync(join(base, 'victim-upload', 'key'), 'uploads/victim.jpg');
  writeFileSync(join(base, 'victim-upload', 'metadata'), '{}');
  writeFileSync(join(base, 'victim-upload', '1'), 'PART OF SOMETHING ELSE');
  outsideBefore = listTree(base, ['data']);
});

const outsideNow = () => listTree(base, ['data']);

async function initiateUpload(key: string): Promise<string> {
  const res = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/${key}?uploads`, { method: 'POST' });
  expect(res.status).toBe(200);
  return /<UploadId>([^<]+)<\/UploadId>/.exec(res.body)![1]!;
}

describe('local S3: requests that would name files outside the data directory are refused', () => {
  it('(a) UploadPart with an uploadId that climbs out: 4xx, nothing written outside', async () => {
    const res = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/a.jpg?partNumber=1&uploadId=${encodeURIComponent('../../../escaped-upload')}`, {
      method: 'PUT',
      body: 'PWNED',
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(existsSync(join(base, 'escaped-upload'))).toBe(false);
    expect(outsideNow()).toEqual(outsideBefore);
  });

  it('(a) UploadPart with a partNumber that climbs out: 4xx, nothing written outside', async () => {
    const uploadId = await initiateUpload('uploads/b.jpg');
    const res = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/b.jpg?partNumber=${encodeURIComponent('../../../../escaped-part')}&uploadId=${uploadId}`, {
      method: 'PUT',
      body: 'PWNED',
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(existsSync(join(base, 'escaped-part'))).toBe(false);
    expect(outsideNow()).toEqual(outsideBefore);
  });

  it('(a) CompleteMultipartUpload with an uploadId that climbs out: 4xx, the outside directory is neither read nor deleted', async () => {
    const xml = '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>';
    const res = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/c.jpg?uploadId=${encodeURIComponent('../../../victim-upload')}`, {
      method: 'POST',
      body: xml,
      headers: { 'Content-Type': 'application/xml' },
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(readFileSync(join(base, 'victim-upload', '1'), 'utf8')).toBe('PART OF SOMETHING ELSE');
    expect(outsideNow()).toEqual(outsideBefore);
    const get = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/victim.jpg`);
    expect(get.status).toBe(404);
  });

  it('(b) a browser-style POST form whose key climbs out: 4xx, nothing written outside', async () => {
    const form = formData([['key', '../../escaped-post.txt']], { name: 'x.txt', content: 'PWNED' });
    const res = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}`, { method: 'POST', body: form.body, headers: { 'Content-Type': form.contentType } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(outsideNow()).toEqual(outsideBefore);
  });

  it('(b) a POST form key that climbs into the other bucket is refused too', async () => {
    const form = formData([['key', `../${QUARANTINE_BUCKET}/planted.jpg`]], { name: 'x.jpg', content: 'PLANTED' });
    const res = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}`, { method: 'POST', body: form.body, headers: { 'Content-Type': form.contentType } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((await rawRequest(s3.endpoint, `/${QUARANTINE_BUCKET}/planted.jpg`)).status).toBe(404);
  });

  it('(c) x-amz-copy-source as a query parameter that climbs out: 4xx, the outside file is not copied in', async () => {
    const res = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/stolen.jpg?x-amz-copy-source=${encodeURIComponent(`/${UPLOADS_BUCKET}/../../secret`)}`, {
      method: 'PUT',
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    const get = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/stolen.jpg`);
    expect(get.status).toBe(404);
    expect(get.body).not.toContain('TOP SECRET');
    expect(outsideNow()).toEqual(outsideBefore);
  });

  it('(c) x-amz-copy-source as a query parameter naming a bucket of ".." is refused', async () => {
    const res = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/stolen2.jpg?X-Amz-Copy-Source=${encodeURIComponent('/../secret')}`, { method: 'PUT' });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/stolen2.jpg`)).body).not.toContain('TOP SECRET');
  });

  it('keys and bucket names with dot segments in the path are refused', async () => {
    for (const path of [`/${UPLOADS_BUCKET}/..%2F..%2Fsecret`, '/%2e%2e/secret', `/${UPLOADS_BUCKET}/a/../../../secret`]) {
      const res = await rawRequest(s3.endpoint, path);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
      expect(res.body, path).not.toContain('TOP SECRET');
    }
  });
});

describe('local S3: the ordinary forms of those requests still work', () => {
  it('an SDK multipart upload completes', async () => {
    const key = 'uploads/multi part.jpg';
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: UPLOADS_BUCKET, Key: key }));
    const part = await client.send(new UploadPartCommand({ Bucket: UPLOADS_BUCKET, Key: key, UploadId, PartNumber: 1, Body: 'hello multipart' }));
    await client.send(new CompleteMultipartUploadCommand({ Bucket: UPLOADS_BUCKET, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
    const got = await client.send(new GetObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key }));
    expect(await got.Body!.transformToString()).toBe('hello multipart');
  });

  it('a POST form upload with an ordinary key is stored under it', async () => {
    const form = formData([['key', 'uploads/form/photo.txt']], { name: 'photo.txt', content: 'from a form' });
    const res = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}`, { method: 'POST', body: form.body, headers: { 'Content-Type': form.contentType } });
    expect(res.status).toBe(204);
    expect((await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/form/photo.txt`)).body).toBe('from a form');
  });

  it('a copy whose source is a query parameter (a presigned CopyObject URL) copies, with special characters in the key', async () => {
    await client.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: 'uploads/src a+b=c.txt', Body: 'copied' }));
    const source = `/${UPLOADS_BUCKET}/${encodeURIComponent('uploads')}/${encodeURIComponent('src a+b=c.txt')}`;
    const res = await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/dest.txt?x-amz-copy-source=${encodeURIComponent(source)}`, { method: 'PUT' });
    expect(res.status, res.body).toBe(200);
    expect((await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/dest.txt`)).body).toBe('copied');
  });
});

describe("the confined store's filesystem wrapper alone (no input checks) keeps every path inside the root", () => {
  it('refuses parts, copies, objects and listings outside the root, and allows them inside', async () => {
    const root = join(base, 'data');
    const { Base } = confinedStoreClasses(root);
    const store = new Base(root) as unknown as {
      putPart(bucket: string, uploadId: string, partNumber: string, content: Readable): Promise<unknown>;
      putObjectMultipart(bucket: string, uploadId: string, parts: Array<{ number: number }>): Promise<unknown>;
      copyObject(srcBucket: string, srcKey: string, destBucket: string, destKey: string): Promise<unknown>;
      getObject(bucket: string, key: string): Promise<unknown>;
      listObjects(bucket: string, options: object): Promise<unknown>;
      putObject(object: { bucket: string; key: string; content: Buffer; metadata: object }): Promise<unknown>;
    };
    const denied = { name: 'OutsideDirectoryError', code: 'AccessDenied' };
    await expect(store.putPart(UPLOADS_BUCKET, '../../../escaped-by-store', '1', Readable.from(['x']))).rejects.toMatchObject(denied);
    await expect(store.putPart(UPLOADS_BUCKET, 'a'.repeat(32), '../../../../escaped-by-store', Readable.from(['x']))).rejects.toMatchObject(denied);
    await expect(store.putObjectMultipart(UPLOADS_BUCKET, '../../../victim-upload', [{ number: 1 }])).rejects.toMatchObject(denied);
    await expect(store.copyObject(UPLOADS_BUCKET, '../../secret', UPLOADS_BUCKET, 'uploads/copied.txt')).rejects.toMatchObject(denied);
    await expect(store.getObject('..', 'secret')).rejects.toMatchObject(denied);
    await expect(store.listObjects('../..', {})).rejects.toMatchObject(denied);
    await expect(store.putObject({ bucket: UPLOADS_BUCKET, key: '../../escaped-by-store', content: Buffer.from('x'), metadata: {} })).rejects.toMatchObject(denied);
    expect(outsideNow()).toEqual(outsideBefore);
    expect(readFileSync(join(base, 'victim-upload', '1'), 'utf8')).toBe('PART OF SOMETHING ELSE');

    await store.putObject({ bucket: UPLOADS_BUCKET, key: 'uploads/inside.txt', content: Buffer.from('inside'), metadata: {} });
    expect((await rawRequest(s3.endpoint, `/${UPLOADS_BUCKET}/uploads/inside.txt`)).body).toBe('inside');
  });
});
