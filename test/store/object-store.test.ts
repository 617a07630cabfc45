/** The object store's reading of S3's answers: what "gone" means, and what is an operator's problem. */
import { afterEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { GetObjectTaggingCommand, HeadBucketCommand, HeadObjectCommand, PutObjectTaggingCommand, S3Client } from '@aws-sdk/client-s3';
import { S3ObjectStore, isObjectGone, normaliseETag, normaliseVersionId } from '../../functions/store/object-store.ts';
import { ObjectUnreadableError } from '../../functions/store/errors.ts';
import { applyDecision } from '../../functions/lib/apply-decision.ts';
import { withDecisionTags } from '../../functions/lib/tags.ts';

function s3Error(name: string, status: number): Error {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
}

const s3 = mockClient(S3Client);
afterEach(() => s3.reset());
const store = new S3ObjectStore(new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }));
const ref = { bucket: 'uploads', key: 'uploads/alice/a.jpg' };

describe('object store', () => {
  it('only NoSuchKey and NoSuchVersion mean the object is gone', () => {
    expect(isObjectGone(s3Error('NoSuchKey', 404))).toBe(true);
    expect(isObjectGone(s3Error('NoSuchVersion', 404))).toBe(true);
    expect(isObjectGone(s3Error('NoSuchBucket', 404))).toBe(false);
    expect(isObjectGone(s3Error('AccessDenied', 403))).toBe(false);
  });

  it('a 404 HEAD is "missing" only when the bucket exists', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    s3.on(HeadBucketCommand).resolves({});
    expect(await store.head(ref)).toBe('missing');
    s3.on(HeadBucketCommand).rejects(s3Error('NotFound', 404));
    await expect(store.head(ref)).rejects.toBeInstanceOf(ObjectUnreadableError);
  });

  it('NoSuchBucket and AccessDenied are errors, never a silent skip (the apply step fails, then the DLQ)', async () => {
    s3.on(GetObjectTaggingCommand).rejects(s3Error('NoSuchBucket', 404));
    await expect(applyDecision(store, { ...ref, jobId: 'j', eventTime: '', receivedAt: '' }, 'APPROVED', 'q')).rejects.toThrow(/does not exist/);
    s3.on(GetObjectTaggingCommand).rejects(s3Error('AccessDenied', 403));
    await expect(applyDecision(store, { ...ref, jobId: 'j', eventTime: '', receivedAt: '' }, 'APPROVED', 'q')).rejects.toMatchObject({ name: 'ObjectUnreadable' });
    s3.on(GetObjectTaggingCommand).rejects(s3Error('NoSuchKey', 404));
    expect(await applyDecision(store, { ...ref, jobId: 'j', eventTime: '', receivedAt: '' }, 'APPROVED', 'q')).toMatchObject({ action: 'skipped' });
  });

  it('versionId "null" is no version: never sent to S3', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 3, ETag: '"abc"', VersionId: 'null' });
    expect(await store.head({ ...ref, versionId: 'null' })).toMatchObject({ size: 3, eTag: 'abc', versionId: undefined });
    expect(s3.commandCalls(HeadObjectCommand)[0]!.args[0].input.VersionId).toBeUndefined();
    expect(normaliseVersionId('null')).toBeUndefined();
    expect(normaliseVersionId('3HL4kqtJlcpXroDTDmJ')).toBe('3HL4kqtJlcpXroDTDmJ');
    expect(normaliseETag('W/"abc"')).toBe('abc');
  });

  it('applies a decision to an object that already carries ten tags: the status tag always lands', async () => {
    const ten = Array.from({ length: 10 }, (_, i) => ({ Key: `own-${i}`, Value: String(i) }));
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: ten });
    s3.on(PutObjectTaggingCommand).resolves({});
    const applied = await applyDecision(store, { ...ref, jobId: 'job-1', eventTime: '', receivedAt: '' }, 'APPROVED', 'q');
    expect(applied.action).toBe('tagged');
    expect(applied.detail).toContain('own-9');
    const written = s3.commandCalls(PutObjectTaggingCommand)[0]!.args[0].input.Tagging!.TagSet!;
    expect(written).toHaveLength(10);
    expect(written).toContainEqual({ Key: 'moderation-status', Value: 'APPROVED' });
  });

  it('unversioned: a decision is not tagged onto a newer upload of the key (it has its own job); the judged bytes are', async () => {
    const job = { ...ref, jobId: 'job-old', eTag: '"aaa"', eventTime: '', receivedAt: '' };
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [] });
    s3.on(PutObjectTaggingCommand).resolves({});
    s3.on(HeadObjectCommand).resolves({ ContentLength: 3, ETag: '"bbb"' });
    const skipped = await applyDecision(store, job, 'APPROVED', 'q');
    expect(skipped).toMatchObject({ action: 'skipped', detail: expect.stringContaining('overwritten') });
    expect(s3.commandCalls(PutObjectTaggingCommand)).toHaveLength(0);
    s3.on(HeadObjectCommand).resolves({ ContentLength: 3, ETag: '"aaa"' });
    expect(await applyDecision(store, job, 'APPROVED', 'q')).toMatchObject({ action: 'tagged' });
    // Versioned: the tag names the judged version; nothing to compare.
    s3.resetHistory();
    expect(await applyDecision(store, { ...job, versionId: 'v1' }, 'APPROVED', 'q')).toMatchObject({ action: 'tagged' });
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
    expect(s3.commandCalls(PutObjectTaggingCommand)[0]!.args[0].input.VersionId).toBe('v1');
  });

  it('overwrites tags an uploader forged under the pipeline prefix', () => {
    const { tags } = withDecisionTags([{ Key: 'moderation-status', Value: 'APPROVED' }, { Key: 'moderation-extra', Value: 'x' }, { Key: 'team', Value: 'a' }], 'REVIEW', 'j');
    expect(tags).toEqual([{ Key: 'team', Value: 'a' }, { Key: 'moderation-status', Value: 'REVIEW' }, { Key: 'moderation-job', Value: 'j' }]);
  });
});
