/**
 * Object tags in the local S3 as S3 keeps them (local/s3-tags.ts). s3rver left an object's tag set in
 * place when the object was replaced, so an overwritten upload kept the last upload's
 * `moderation-status=APPROVED` and the local serving gate served bytes nobody had judged; and it
 * dropped the tags a PutObject or CopyObject gives (the uploader's own, a quarantine copy's).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startLocalS3, QUARANTINE_BUCKET, UPLOADS_BUCKET, type LocalS3 } from '../../local/s3.ts';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { parseTaggingHeader } from '../../local/s3-tags.ts';
import { eventually } from './stack-helpers.ts';

let base: string;
let s3: LocalS3;
let pipeline: S3Client;
let platform: S3Client;

const client = (accessKeyId: string) =>
  new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey: 'secret' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'moderation-s3-tags-'));
  s3 = await startLocalS3({
    directory: join(base, 'data'),
    buckets: [UPLOADS_BUCKET, QUARANTINE_BUCKET],
    servingGate: { bucket: UPLOADS_BUCKET, prefix: 'uploads/', pipelineAccessKeys: ['pipeline'] },
  });
  pipeline = client('pipeline');
  platform = client('platform-app');
});

afterAll(async () => {
  pipeline?.destroy();
  platform?.destroy();
  await s3?.close();
  rmSync(base, { recursive: true, force: true });
});

const tagsOf = async (bucket: string, key: string) => (await pipeline.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }))).TagSet ?? [];
const approve = (key: string) =>
  pipeline.send(new PutObjectTaggingCommand({ Bucket: UPLOADS_BUCKET, Key: key, Tagging: { TagSet: [{ Key: 'moderation-status', Value: 'APPROVED' }] } }));
const platformGet = (key: string) => platform.send(new GetObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key })).then((r) => r.Body!.transformToString());

describe('local S3 object tags', () => {
  it('an overwritten upload loses the last upload’s tags: the serving gate refuses the new bytes until they are judged', async () => {
    const key = 'uploads/ann/avatar.jpg';
    await platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, Body: 'first' }));
    await approve(key);
    expect(await platformGet(key)).toBe('first');
    await platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, Body: 'second, not judged yet' }));
    expect(await tagsOf(UPLOADS_BUCKET, key)).toEqual([]);
    await expect(platformGet(key)).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('a deleted and uploaded-again key, a copy onto it and a completed multipart upload start without tags too', async () => {
    const key = 'uploads/ann/again.jpg';
    await platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, Body: 'one' }));
    await approve(key);
    await platform.send(new DeleteObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key }));
    await platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, Body: 'two' }));
    await expect(platformGet(key)).rejects.toMatchObject({ name: 'AccessDenied' });

    await approve(key);
    await pipeline.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: 'uploads/ann/other.jpg', Body: 'other' }));
    await platform.send(new CopyObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, CopySource: `${UPLOADS_BUCKET}/uploads/ann/other.jpg` }));
    await expect(platformGet(key)).rejects.toMatchObject({ name: 'AccessDenied' });

    await approve(key);
    const { UploadId } = await platform.send(new CreateMultipartUploadCommand({ Bucket: UPLOADS_BUCKET, Key: key }));
    const part = await platform.send(new UploadPartCommand({ Bucket: UPLOADS_BUCKET, Key: key, UploadId, PartNumber: 1, Body: 'multipart' }));
    await platform.send(new CompleteMultipartUploadCommand({ Bucket: UPLOADS_BUCKET, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
    expect(await tagsOf(UPLOADS_BUCKET, key)).toEqual([]);
    await expect(platformGet(key)).rejects.toMatchObject({ name: 'AccessDenied' });

    // DeleteObjects (one request, several keys) then an upload: the same.
    await approve(key);
    await platform.send(new DeleteObjectsCommand({ Bucket: UPLOADS_BUCKET, Delete: { Objects: [{ Key: key }] } }));
    await platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, Body: 'three' }));
    expect(await tagsOf(UPLOADS_BUCKET, key)).toEqual([]);
  });

  it('keeps the tags a PutObject gives (the uploader’s own), readable right after the upload', async () => {
    const key = 'uploads/ann/tagged.jpg';
    await platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, Body: 'x', Tagging: 'team=blue&note=a%20b%2Bc%3A%C3%A9' }));
    expect(await tagsOf(UPLOADS_BUCKET, key)).toEqual([
      { Key: 'team', Value: 'blue' },
      { Key: 'note', Value: 'a b+c:é' },
    ]);
  });

  it('CopyObject: REPLACE writes the request’s tags (a quarantine copy’s status and labels); COPY keeps the source’s, also onto itself', async () => {
    const source = 'uploads/ann/rejected.jpg';
    await pipeline.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: source, Body: 'bad', Tagging: 'team=red' }));
    await pipeline.send(
      new CopyObjectCommand({
        Bucket: QUARANTINE_BUCKET,
        Key: `${UPLOADS_BUCKET}/${source}`,
        CopySource: `${UPLOADS_BUCKET}/${source}`,
        TaggingDirective: 'REPLACE',
        Tagging: 'moderation-status=REJECTED&moderation-label%3APoster=92',
      }),
    );
    expect(await tagsOf(QUARANTINE_BUCKET, `${UPLOADS_BUCKET}/${source}`)).toEqual([
      { Key: 'moderation-status', Value: 'REJECTED' },
      { Key: 'moderation-label:Poster', Value: '92' },
    ]);
    await pipeline.send(new CopyObjectCommand({ Bucket: UPLOADS_BUCKET, Key: 'uploads/ann/copied.jpg', CopySource: `${UPLOADS_BUCKET}/${source}` }));
    expect(await tagsOf(UPLOADS_BUCKET, 'uploads/ann/copied.jpg')).toEqual([{ Key: 'team', Value: 'red' }]);
    // Onto itself with new metadata (how a platform changes Content-Type): the tags stay.
    await pipeline.send(
      new CopyObjectCommand({ Bucket: UPLOADS_BUCKET, Key: source, CopySource: `${UPLOADS_BUCKET}/${source}`, MetadataDirective: 'REPLACE', ContentType: 'image/png' }),
    );
    expect(await tagsOf(UPLOADS_BUCKET, source)).toEqual([{ Key: 'team', Value: 'red' }]);
  });

  it('refuses, as S3 does, a tag set it could not keep, and writes nothing', async () => {
    const key = 'uploads/ann/too-many.jpg';
    const eleven = Array.from({ length: 11 }, (_, i) => `k${i}=v`).join('&');
    await expect(platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, Body: 'x', Tagging: eleven }))).rejects.toMatchObject({ name: 'InvalidTag' });
    await expect(platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, Body: 'x', Tagging: 'a=1&a=2' }))).rejects.toMatchObject({ name: 'InvalidTag' });
    await expect(pipeline.send(new GetObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key }))).rejects.toMatchObject({ name: 'NoSuchKey' });
    await expect(platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, Body: 'x', Tagging: 'note=a%26b' }))).rejects.toMatchObject({ name: 'InvalidTag' });
    expect(() => parseTaggingHeader(`${'k'.repeat(129)}=v`)).toThrow(/TagKey/);
    expect(() => parseTaggingHeader('aws:owner=me')).toThrow(/aws:/);
    expect(() => parseTaggingHeader('k=a!b')).toThrow(/TagValue/);
    // Characters, not UTF-16 units: 128 letters outside the BMP are a valid key.
    expect(parseTaggingHeader(`${encodeURIComponent('𝒜'.repeat(128))}=v`)).toHaveLength(1);
    expect(() => parseTaggingHeader(`k=${'v'.repeat(257)}`)).toThrow(/too long/);
    expect(parseTaggingHeader('')).toEqual([]);
  });

  it('CopyObject reads the source key as the copy does: a "?" in a key is part of it, not the start of a query', async () => {
    await pipeline.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: 'uploads/ann/x', Body: 'judged' }));
    await approve('uploads/ann/x');
    await platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: 'uploads/ann/x?y', Body: 'not judged' }));
    await platform.send(new CopyObjectCommand({ Bucket: UPLOADS_BUCKET, Key: 'uploads/ann/dest', CopySource: `${UPLOADS_BUCKET}/uploads/ann/x%3Fy` }));
    expect(await tagsOf(UPLOADS_BUCKET, 'uploads/ann/dest')).toEqual([]);
    await expect(platformGet('uploads/ann/dest')).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('nobody but the pipeline writes moderation-* tags anywhere in the bucket (one staged outside the prefix would arrive with a copy)', async () => {
    await expect(
      platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: 'staging/s.jpg', Body: 'x', Tagging: 'moderation-status=APPROVED' })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
    await platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: 'staging/s.jpg', Body: 'x', Tagging: 'team=blue' }));
    await expect(
      platform.send(new PutObjectTaggingCommand({ Bucket: UPLOADS_BUCKET, Key: 'staging/s.jpg', Tagging: { TagSet: [{ Key: 'moderation-status', Value: 'APPROVED' }] } })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('an overwrite cut short leaves no APPROVED on what it wrote, and a read during an overwrite waits for it', async () => {
    const key = 'uploads/ann/cut.jpg';
    await platform.send(new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key, Body: 'judged bytes' }));
    await approve(key);
    // s3rver keeps an object's tags in a file beside it.
    const tagFile = join(base, 'data', UPLOADS_BUCKET, 'uploads', 'ann', 'cut.jpg._S3rver_tagging.xml');
    expect(existsSync(tagFile)).toBe(true);

    // A platform upload that promises 64 KB, sends 1 KB, then waits: s3rver is writing over the object.
    const url = await getSignedUrl(platform, new PutObjectCommand({ Bucket: UPLOADS_BUCKET, Key: key }), { expiresIn: 60 });
    const upload = request(url, { method: 'PUT', headers: { 'content-length': String(64 * 1024) } });
    upload.on('error', () => undefined);
    upload.write(Buffer.alloc(1024, 7));
    // The old tags go before the first byte is written (every request on the key now waits for it).
    await eventually(async () => (existsSync(tagFile) ? undefined : true), 10_000);
    const read = platformGet(key).then(
      () => 'served',
      (error: { name?: string }) => error.name,
    );
    // The read waits for the overwrite; the upload is then cut short.
    upload.destroy();
    expect(await read).toMatch(/AccessDenied|NoSuchKey/);
    expect(await tagsOf(UPLOADS_BUCKET, key).catch((error: { name?: string }) => error.name)).not.toContainEqual({ Key: 'moderation-status', Value: 'APPROVED' });
  });
});
