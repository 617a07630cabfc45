/**
 * A granted appeal's restore (functions/lib/apply-decision.ts restoreFromQuarantine, over the object
 * store's restoreFromQuarantine): the S3 requests it makes, and what it refuses to do.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { S3ObjectStore } from '../../functions/store/object-store.ts';
import { RESTORED_FROM_METADATA, restoreFromQuarantine } from '../../functions/lib/apply-decision.ts';
import type { Job } from '../../functions/lib/types.ts';

function s3Error(name: string, status: number): Error {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
}

const s3 = mockClient(S3Client);
afterEach(() => s3.reset());
const store = new S3ObjectStore(new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }));
const jobId = 'a'.repeat(40);
const job: Job = { jobId, bucket: 'uploads', key: 'uploads/alice/a b.jpg', versionId: 'v1', eTag: 'abc', eventTime: '', receivedAt: '' };
const quarantineKey = 'uploads/uploads/alice/a b.jpg';

describe('restoring a quarantined object (a granted appeal)', () => {
  it('copies it back with its metadata, the restore mark and the APPROVED tags, tags the new version, deletes the copy', async () => {
    s3.on(HeadObjectCommand, { Bucket: 'uploads', Key: job.key }).rejects(s3Error('NotFound', 404));
    s3.on(HeadBucketCommand).resolves({});
    s3.on(HeadObjectCommand, { Bucket: 'quarantine', Key: quarantineKey }).resolves({ ContentLength: 3, ETag: '"abc"', ContentType: 'image/jpeg', Metadata: { Camera: 'x' } });
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [{ Key: 'moderation-job', Value: jobId }, { Key: 'moderation-status', Value: 'REJECTED' }] });
    s3.on(CopyObjectCommand).resolves({ VersionId: 'v2' });
    s3.on(PutObjectTaggingCommand).resolves({});
    s3.on(DeleteObjectCommand).resolves({});

    const applied = await restoreFromQuarantine(store, job, 'quarantine');
    expect(applied).toMatchObject({ action: 'restored' });
    expect(applied.detail).toMatch(/restored from s3:\/\/quarantine\/uploads\/uploads\/alice\/a b\.jpg to s3:\/\/uploads\/uploads\/alice\/a b\.jpg \(version v2\), tagged moderation-status=APPROVED/);

    const copy = s3.commandCalls(CopyObjectCommand)[0]!.args[0].input;
    expect(copy).toMatchObject({
      Bucket: 'uploads',
      Key: job.key,
      CopySource: 'quarantine/uploads/uploads/alice/a%20b.jpg',
      MetadataDirective: 'REPLACE',
      Metadata: { camera: 'x', [RESTORED_FROM_METADATA]: jobId },
      ContentType: 'image/jpeg',
      TaggingDirective: 'REPLACE',
      Tagging: `moderation-status=APPROVED&moderation-job=${jobId}`,
    });
    const tagged = s3.commandCalls(PutObjectTaggingCommand)[0]!.args[0].input;
    expect(tagged).toMatchObject({ Bucket: 'uploads', Key: job.key, VersionId: 'v2' });
    expect(tagged.Tagging!.TagSet).toEqual([{ Key: 'moderation-status', Value: 'APPROVED' }, { Key: 'moderation-job', Value: jobId }]);
    expect(s3.commandCalls(DeleteObjectCommand)[0]!.args[0].input).toEqual({ Bucket: 'quarantine', Key: quarantineKey });
  });

  it('never overwrites a newer upload under the key, and leaves a copy of another upload of the key alone', async () => {
    // The key holds another object (no restore mark), and the judged version is gone.
    s3.on(HeadObjectCommand, { Bucket: 'uploads', Key: job.key }).resolves({ ContentLength: 9, ETag: '"other"', VersionId: 'v9' });
    s3.on(HeadObjectCommand, { Bucket: 'uploads', Key: job.key, VersionId: 'v1' }).rejects(s3Error('NoSuchVersion', 404));
    const newer = await restoreFromQuarantine(store, job, 'quarantine');
    expect(newer).toMatchObject({ action: 'skipped' });
    expect(newer.detail).toMatch(/newer upload/);
    expect(s3.commandCalls(CopyObjectCommand)).toHaveLength(0);

    s3.reset();
    s3.on(HeadObjectCommand, { Bucket: 'uploads', Key: job.key }).rejects(s3Error('NotFound', 404));
    s3.on(HeadBucketCommand).resolves({});
    s3.on(HeadObjectCommand, { Bucket: 'quarantine', Key: quarantineKey }).resolves({ ContentLength: 3, ETag: '"zzz"' });
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [{ Key: 'moderation-job', Value: 'b'.repeat(40) }] });
    const other = await restoreFromQuarantine(store, job, 'quarantine');
    expect(other).toMatchObject({ action: 'skipped' });
    expect(other.detail).toMatch(/another upload of this key \(job b{40}\)/);
    expect(s3.commandCalls(CopyObjectCommand)).toHaveLength(0);
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
  });

  it('a copy already restored is only tagged again (idempotent), keeping the tags it carries', async () => {
    s3.on(HeadObjectCommand, { Bucket: 'uploads', Key: job.key }).resolves({ ContentLength: 3, ETag: '"abc"', VersionId: 'v2', Metadata: { [RESTORED_FROM_METADATA]: jobId } });
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [{ Key: 'team', Value: 'a' }, { Key: 'moderation-status', Value: 'APPROVED' }, { Key: 'moderation-label:Car', Value: '98' }] });
    s3.on(PutObjectTaggingCommand).resolves({});
    const applied = await restoreFromQuarantine(store, job, 'quarantine');
    expect(applied).toMatchObject({ action: 'restored', detail: 'already restored from quarantine; tagged moderation-status=APPROVED' });
    const tagged = s3.commandCalls(PutObjectTaggingCommand)[0]!.args[0].input;
    expect(tagged).toMatchObject({ VersionId: 'v2' });
    expect(tagged.Tagging!.TagSet).toEqual([
      { Key: 'team', Value: 'a' },
      { Key: 'moderation-status', Value: 'APPROVED' },
      { Key: 'moderation-job', Value: jobId },
      { Key: 'moderation-label:Car', Value: '98' },
    ]);
    expect(s3.commandCalls(CopyObjectCommand)).toHaveLength(0);
  });

  it('the label tags of the quarantine copy go back with the object (the policy’s objectTags)', async () => {
    s3.on(HeadObjectCommand, { Bucket: 'uploads', Key: job.key }).rejects(s3Error('NotFound', 404));
    s3.on(HeadBucketCommand).resolves({});
    s3.on(HeadObjectCommand, { Bucket: 'quarantine', Key: quarantineKey }).resolves({ ContentLength: 3, ETag: '"abc"', ContentType: 'image/jpeg' });
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [{ Key: 'moderation-job', Value: jobId }, { Key: 'moderation-status', Value: 'REJECTED' }, { Key: 'moderation-label:Poster', Value: '92' }] });
    s3.on(CopyObjectCommand).resolves({ VersionId: 'v2' });
    s3.on(PutObjectTaggingCommand).resolves({});
    s3.on(DeleteObjectCommand).resolves({});
    await restoreFromQuarantine(store, job, 'quarantine');
    expect(s3.commandCalls(CopyObjectCommand)[0]!.args[0].input.Tagging).toBe(`moderation-status=APPROVED&moderation-job=${jobId}&moderation-label%3APoster=92`);
  });
});
