/**
 * `moderation review` against the local stack: images the pipeline held for a human (REVIEW) are
 * listed; a human approve or reject appends a decision (the automated record stays as it was) and
 * applies it to the object (tag, or quarantine); a retry of the same decision only re-applies it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectTaggingCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { decideReview, jobRecords, listPendingReviews, resolveJobId, ReviewStateError } from '../../cli/human-review.ts';
import { queryDecisions } from '../../cli/audit.ts';
import { describeJob } from '../../cli/commands/review.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { decided, png, startTestStack, upload, type TestStack } from './helpers.ts';

describe('moderation review (local stack)', () => {
  let t: TestStack;
  let held: Map<string, DecisionRecord>;
  const keys = ['uploads/alice/borderline-1.png', 'uploads/bob/borderline-2.png', 'uploads/alice/borderline-3.png', 'uploads/carol/fine.png'];

  beforeAll(async () => {
    t = await startTestStack();
    for (const [i, key] of keys.entries()) await upload(t.target, key, await png(i));
    held = await decided(t.target, keys);
  });

  afterAll(async () => {
    await t?.close();
  });

  const tags = async (key: string) =>
    (await t.target.s3.send(new GetObjectTaggingCommand({ Bucket: t.target.names.uploadsBucket, Key: key }))).TagSet ?? [];

  it('lists the REVIEW decisions that wait for a human, longest waiting first', async () => {
    expect(held.get(keys[0])!.status).toBe('REVIEW');
    expect(held.get(keys[3])!.status).toBe('APPROVED');
    const pending = await listPendingReviews(t.target);
    expect(pending.map((p) => p.record.key).sort()).toEqual(keys.slice(0, 3).sort());
    const times = pending.map((p) => p.record.decidedAt);
    expect(times).toEqual([...times].sort());
    expect((await listPendingReviews(t.target, { uploader: 'alice' })).map((p) => p.record.key).sort()).toEqual([keys[0], keys[2]].sort());
  });

  it('approve appends a human decision, keeps the automated record, and tags the object', async () => {
    const automated = held.get(keys[0])!;
    const result = await decideReview(t.target, automated.jobId, { status: 'APPROVED', reviewer: 'dana', reason: 'an abstract texture, no nudity' });
    expect(result.alreadyRecorded).toBe(false);
    expect(result.record).toMatchObject({
      status: 'APPROVED',
      decidedBy: 'human:dana',
      reason: 'an abstract texture, no nudity',
      supersedes: `${automated.pk}|${automated.sk}`,
      jobId: automated.jobId,
    });
    expect(result.applied.action).toBe('tagged');

    const history = await jobRecords(t.target, automated.jobId);
    expect(history).toHaveLength(2);
    expect(history[0]).toEqual(automated); // the automated record, untouched
    expect(history[1]!.sk).toMatch(/^DECISION#human#/);
    expect(await tags(keys[0])).toEqual(expect.arrayContaining([{ Key: 'moderation-status', Value: 'APPROVED' }, { Key: 'moderation-job', Value: automated.jobId }]));

    // Audit by image: the human decision first, the automated one kept.
    const page = await queryDecisions(t.target, { image: { bucket: t.target.names.uploadsBucket, key: keys[0] } });
    expect(page.items.map((r) => r.decidedBy)).toEqual(['human:dana', 'policy']);
    // And it is no longer pending.
    expect((await listPendingReviews(t.target)).map((p) => p.record.key)).not.toContain(keys[0]);
    expect(describeJob(history)).toContain('human decision, human:dana');
  });

  it('the same approve again writes nothing new and re-applies; a contrary decision is refused', async () => {
    const automated = held.get(keys[0])!;
    const again = await decideReview(t.target, automated.jobId, { status: 'APPROVED', reviewer: 'erin', reason: 'double click' });
    expect(again.alreadyRecorded).toBe(true);
    expect(again.record.decidedBy).toBe('human:dana');
    expect(await jobRecords(t.target, automated.jobId)).toHaveLength(2);
    await expect(decideReview(t.target, automated.jobId, { status: 'REJECTED', reviewer: 'erin', reason: 'changed my mind' })).rejects.toThrow(/already decided APPROVED by human:dana/);
  });

  it('reject appends and quarantines the object', async () => {
    const automated = held.get(keys[1])!;
    const result = await decideReview(t.target, automated.jobId, { status: 'REJECTED', reviewer: 'dana', reason: 'explicit' });
    expect(result.applied).toMatchObject({ action: 'quarantined', quarantineKey: `${t.target.names.uploadsBucket}/${keys[1]}` });
    await expect(t.target.s3.send(new HeadObjectCommand({ Bucket: t.target.names.uploadsBucket, Key: keys[1] }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    // In quarantine (s3rver ignores the tags a CopyObject sets, so only its presence is checked here).
    const quarantined = await t.target.s3.send(new HeadObjectCommand({ Bucket: t.target.names.quarantineBucket, Key: result.applied.quarantineKey! }));
    expect(quarantined.ContentLength).toBeGreaterThan(0);
    const statuses = (await jobRecords(t.target, automated.jobId)).map((r) => `${r.status} ${r.decidedBy}`);
    expect(statuses).toEqual(['REVIEW policy', 'REJECTED human:dana']);
    // The human decision is found by status too (same shard scheme as the pipeline's records).
    const rejected = await queryDecisions(t.target, { statuses: ['REJECTED'] });
    expect(rejected.items.map((r) => r.jobId)).toContain(automated.jobId);
  });

  it('refuses images that were not held for review, unknown jobs, empty reasons and bad reviewers', async () => {
    const approved = held.get(keys[3])!;
    await expect(decideReview(t.target, approved.jobId, { status: 'REJECTED', reviewer: 'dana', reason: 'x' })).rejects.toBeInstanceOf(ReviewStateError);
    await expect(decideReview(t.target, 'f'.repeat(40), { status: 'APPROVED', reviewer: 'dana', reason: 'x' })).rejects.toThrow(/no decision for job/);
    await expect(decideReview(t.target, held.get(keys[2])!.jobId, { status: 'APPROVED', reviewer: 'dana', reason: '  ' })).rejects.toThrow(/--reason/);
    await expect(decideReview(t.target, held.get(keys[2])!.jobId, { status: 'APPROVED', reviewer: 'dana smith', reason: 'ok' })).rejects.toThrow(/--reviewer/);
  });

  it('accepts a unique job id prefix', async () => {
    const jobId = held.get(keys[2])!.jobId;
    expect(await resolveJobId(t.target, jobId.slice(0, 10))).toBe(jobId);
    await expect(resolveJobId(t.target, 'zz')).rejects.toThrow(/40 hexadecimal characters/);
  });
});
