/**
 * Appeals against a local stack (issue 14, section 3): `moderation appeal` puts a REJECTED image back
 * in the review queue with the uploader's message (a record of kind `appeal`); a reviewer's decision
 * is a human record that supersedes the rejection and names the appeal; granting it restores the
 * object from quarantine (tag APPROVED, quarantine copy deleted) and the restored copy's own job is
 * approved without Rekognition, instead of being rejected again; denying it keeps it quarantined.
 * One decision event for the outcome, none for the appeal itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { decideReview, fileAppeal, jobRecords, listPendingReviews } from '../../cli/human-review.ts';
import { AppealOpenError } from '../../functions/store/errors.ts';
import { EventOutbox } from '../../local/event-outbox.ts';
import { RESTORED_FROM_METADATA } from '../../functions/lib/apply-decision.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { decided, eventually, png, recordsOf, startTestStack, upload, type TestStack } from './helpers.ts';
import { moderation } from '../e2e/cli.ts';

describe('moderation appeal (local stack)', () => {
  let t: TestStack;
  let held: Map<string, DecisionRecord>;
  const keys = { granted: 'uploads/grace/reject-painting.png', denied: 'uploads/heidi/reject-photo.png', fine: 'uploads/ivan/fine.png' };

  beforeAll(async () => {
    t = await startTestStack();
    for (const [i, key] of Object.values(keys).entries()) await upload(t.target, key, await png(40 + i));
    held = await decided(t.target, Object.values(keys));
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  const head = (bucket: string, key: string) => t.target.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  const tags = async (key: string) => (await t.target.s3.send(new GetObjectTaggingCommand({ Bucket: t.target.names.uploadsBucket, Key: key }))).TagSet ?? [];
  const quarantined = (key: string) => `${t.target.names.uploadsBucket}/${key}`;
  const cli = (args: string[]) => moderation([...args, '--home', t.home]);

  it('has --help and refuses what cannot be appealed', async () => {
    expect(held.get(keys.granted)!.status).toBe('REJECTED');
    expect(held.get(keys.fine)!.status).toBe('APPROVED');
    const help = await cli(['appeal', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--message <text>/);
    expect(help.stdout).toMatch(/--json/);

    const approved = await cli(['appeal', held.get(keys.fine)!.jobId, '--message', 'please']);
    expect(approved.code).toBe(1);
    expect(approved.stderr).toMatch(/^error: job [0-9a-f]{40} \(uploads\/ivan\/fine\.png\) is APPROVED .*only a rejected image can be appealed\n$/);
    const noMessage = await cli(['appeal', held.get(keys.granted)!.jobId]);
    expect(noMessage.code).toBe(1);
    expect(noMessage.stderr).toMatch(/--message/);
    const empty = await cli(['appeal', held.get(keys.granted)!.jobId, '--message', '   ']);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/--message must not be empty/);
    expect((await jobRecords(t.target, held.get(keys.granted)!.jobId)).map((r) => r.kind)).toEqual(['automated']);
  });

  let appeal: DecisionRecord;

  it('files an appeal (--json, by a unique prefix): a record of kind appeal, and the image is back in the queue with the message', async () => {
    const rejected = held.get(keys.granted)!;
    const filed = await cli(['appeal', rejected.jobId.slice(0, 10), '--message', 'It is a painting in a museum, not a photo', '--json']);
    expect(filed.stderr).toBe('');
    expect(filed.code).toBe(0);
    const out = JSON.parse(filed.stdout) as { record: DecisionRecord; contested: DecisionRecord; alreadyFiled: boolean };
    appeal = out.record;
    expect(out.alreadyFiled).toBe(false);
    expect(appeal).toMatchObject({
      kind: 'appeal',
      sk: 'APPEAL#r0001',
      status: 'REVIEW',
      jobId: rejected.jobId,
      decidedBy: 'uploader:grace',
      reason: 'It is a painting in a museum, not a photo',
      contests: `${rejected.pk}|${rejected.sk}`,
    });
    expect(out.contested).toMatchObject({ kind: 'automated', status: 'REJECTED' });

    const pending = await listPendingReviews(t.target);
    expect(pending.map((p) => `${p.kind} ${p.record.key}`)).toEqual([`appeal ${keys.granted}`]);
    expect(pending[0]!.record.reason).toBe('It is a painting in a museum, not a photo');
    const listed = await cli(['review', 'list', '--kind', 'appeal']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/JOB\s+KIND\s+WAITING/);
    expect(listed.stdout).toMatch(/appeal\s+\d+s\s+uploads\/grace\/reject-painting\.png\s+grace\s+-\s+uploader:grace\s+It is a painting/);
    // Still quarantined, and the rejection still stands.
    expect((await head(t.target.names.quarantineBucket, quarantined(keys.granted))).ContentLength).toBeGreaterThan(0);
    const history = await jobRecords(t.target, rejected.jobId);
    expect(history.map((r) => `${r.kind} ${r.status}`)).toEqual(['automated REJECTED', 'appeal REVIEW']);
  });

  it('one open appeal at a time: the same message again writes nothing, another is refused', async () => {
    const jobId = held.get(keys.granted)!.jobId;
    const same = await fileAppeal(t.target, jobId, { message: 'It is a painting in a museum, not a photo' });
    expect(same.alreadyFiled).toBe(true);
    await expect(fileAppeal(t.target, jobId, { message: 'also, it is mine' })).rejects.toBeInstanceOf(AppealOpenError);
    const text = await cli(['appeal', jobId, '--message', 'also, it is mine']);
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/already has an open appeal, filed at/);
    expect((await jobRecords(t.target, jobId)).filter((r) => r.kind === 'appeal')).toHaveLength(1);
  });

  it('granting it (review approve) supersedes the rejection, restores the object from quarantine tagged APPROVED, and the copy is not judged again', async () => {
    const rejected = held.get(keys.granted)!;
    const callsBefore = t.rekognition.calls.get(keys.granted);
    const granted = await cli(['review', 'approve', rejected.jobId, '--reason', 'a painting: art, not nudity', '--reviewer', 'dana', '--json']);
    expect(granted.stderr).toBe('');
    const out = JSON.parse(granted.stdout) as { kind: string; record: DecisionRecord; applied: { action: string; detail: string } };
    expect(out.kind).toBe('appeal');
    expect(out.record).toMatchObject({
      kind: 'human',
      status: 'APPROVED',
      decidedBy: 'human:dana',
      supersedes: `${rejected.pk}|${rejected.sk}`,
      appealOf: `${appeal.pk}|${appeal.sk}`,
      previousStatus: 'REJECTED',
    });
    expect(out.record.contentSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(out.applied.action).toBe('restored');

    expect((await head(t.target.names.uploadsBucket, keys.granted)).ContentLength).toBeGreaterThan(0);
    expect(await tags(keys.granted)).toEqual(expect.arrayContaining([{ Key: 'moderation-status', Value: 'APPROVED' }]));
    await expect(head(t.target.names.quarantineBucket, quarantined(keys.granted))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });

    // The restored copy is a new object (ObjectCreated:Copy): its own job, approved because the same
    // bytes were approved on appeal, without a Rekognition call, and left where it is.
    const restored = await decided(t.target, [keys.granted], (r) => r.kind === 'automated' && r.jobId !== rejected.jobId);
    const copy = restored.get(keys.granted)!;
    expect(copy).toMatchObject({ status: 'APPROVED', decidedBy: 'policy', restoredFrom: `${out.record.pk}|${out.record.sk}`, estimatedCostUsd: 0 });
    expect(copy.reason).toMatch(/restored from quarantine: the same bytes were approved on appeal by human:dana/);
    expect(t.rekognition.calls.get(keys.granted)).toBe(callsBefore);
    await eventually(async () => ((await tags(keys.granted)).some((tag) => tag.Key === 'moderation-job' && tag.Value === copy.jobId) ? true : undefined));
    expect((await head(t.target.names.uploadsBucket, keys.granted)).ContentLength).toBeGreaterThan(0);

    // The history: rejection, appeal, outcome; then the restored copy's own decision.
    const history = await recordsOf(t.target, keys.granted);
    expect(history.map((r) => `${r.kind} ${r.status} ${r.decidedBy}`).sort()).toEqual(
      ['automated REJECTED rekognition', 'appeal REVIEW uploader:grace', 'human APPROVED human:dana', 'automated APPROVED policy'].sort(),
    );
    expect(await listPendingReviews(t.target)).toEqual([]);
    const shown = await cli(['review', 'show', rejected.jobId]);
    expect(shown.stdout).toMatch(/REVIEW\s+\(appeal, uploader:grace\)\n\s+reason\s+It is a painting/);
    expect(shown.stdout).toMatch(/APPROVED\s+\(human decision, human:dana\)[\s\S]*appeal\s+JOB#/);

    // Deciding it again the same way only re-applies; the other way is refused.
    const again = await decideReview(t.target, rejected.jobId, { status: 'APPROVED', reviewer: 'erin', reason: 'double click' });
    expect(again).toMatchObject({ kind: 'appeal', alreadyRecorded: true });
    await expect(decideReview(t.target, rejected.jobId, { status: 'REJECTED', reviewer: 'erin', reason: 'no' })).rejects.toThrow(/appeal was already decided APPROVED by human:dana/);
  });

  it('denying it (review reject) keeps the object in quarantine', async () => {
    const rejected = held.get(keys.denied)!;
    const filed = await cli(['appeal', rejected.jobId, '--message', 'my own photo']);
    expect(filed.code).toBe(0);
    expect(filed.stdout).toMatch(/^Appeal filed at .*\n {2}job {9}[0-9a-f]{40}\n {2}object {6}s3:\/\/[^/]+\/uploads\/heidi\/reject-photo\.png\n {2}contests {4}REJECTED by rekognition at /);
    const denied = await cli(['review', 'reject', rejected.jobId, '--reason', 'explicit, seen at full size', '--reviewer', 'dana']);
    expect(denied.code).toBe(0);
    expect(denied.stdout).toMatch(/^appeal denied: REJECTED by human:dana recorded at /);
    expect(denied.stdout).toMatch(/applied {5}quarantined: already quarantined/);
    await expect(head(t.target.names.uploadsBucket, keys.denied)).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    expect((await head(t.target.names.quarantineBucket, quarantined(keys.denied))).ContentLength).toBeGreaterThan(0);
    const history = await jobRecords(t.target, rejected.jobId);
    expect(history.map((r) => `${r.kind} ${r.status}`)).toEqual(['automated REJECTED', 'appeal REVIEW', 'human REJECTED']);
    expect(history[2]!.appealOf).toBe(`${history[1]!.pk}|${history[1]!.sk}`);
  });

  it('the restore mark alone approves nothing: other bytes under the key with a forged mark are judged (and rejected)', async () => {
    const granted = held.get(keys.granted)!;
    await t.target.s3.send(
      new PutObjectCommand({
        Bucket: t.target.names.uploadsBucket,
        Key: keys.granted,
        Body: await png(99),
        ContentType: 'image/png',
        Metadata: { [RESTORED_FROM_METADATA]: granted.jobId },
      }),
    );
    const judged = await decided(t.target, [keys.granted], (r) => r.kind === 'automated' && r.status === 'REJECTED' && r.jobId !== granted.jobId);
    const record = judged.get(keys.granted)!;
    expect(record.restoredFrom).toBeUndefined();
    expect(record.reason).not.toMatch(/restored from quarantine/);
  });

  it('the outcome has one decision event, the appeal none; audit shows the kind', async () => {
    const outbox = EventOutbox.at(t.home);
    const jobId = held.get(keys.granted)!.jobId;
    const history = await jobRecords(t.target, jobId);
    const events = await eventually(async () => {
      const mine = outbox.list().filter((e) => e.event.jobId === jobId);
      return mine.length >= 2 ? mine : undefined;
    });
    expect(events.map((e) => `${e.event.type} ${e.event.status}`).sort()).toEqual(['automated REJECTED', 'human APPROVED']);
    const outcome = events.find((e) => e.event.type === 'human')!.event;
    expect(outcome).toMatchObject({ previousStatus: 'REJECTED', supersedes: history[0]!.pk + '|' + history[0]!.sk });
    expect(events.some((e) => e.recordKey.sk.startsWith('APPEAL#'))).toBe(false);

    const audit = await cli(['audit', '--key', keys.granted]);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(/STATUS\s+KIND\s+KEY/);
    expect(audit.stdout).toMatch(/REVIEW\s+appeal\s+uploads\/grace\/reject-painting\.png/);
    const csv = await cli(['audit', '--key', keys.granted, '--format', 'csv']);
    expect(csv.stdout.split('\n')[0]).toMatch(/,kind,appealOf,contests,sampleOf,qualitySample$/);
  });
});
