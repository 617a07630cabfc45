/**
 * `moderation reconcile` against the local stack: notifications lost on the way (consumed, never
 * processed) leave objects without a decision; reconcile finds exactly those (and, apart, the ones
 * whose only records are FAILED), --enqueue sends them through the pipeline as S3 notifications,
 * and afterwards nothing under the prefix is undecided. Enqueueing twice decides once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { decodeS3Key } from '../../functions/lib/s3-event.ts';
import { reconcile, reconcileSequencer } from '../../cli/reconcile.ts';
import { waitForIntakeDrain } from '../../cli/dlq.ts';
import { decided, eventually, png, recordsOf, startTestStack, upload, type TestStack } from './helpers.ts';

const DECIDED = ['uploads/frank/ok-0.png', 'uploads/frank/ok-1.png', 'uploads/gina/ok-2.png'];
const LOST = ['uploads/frank/lost/a.png', 'uploads/gina/lost/b.png', 'uploads/gina/lost/c d+e.png'];
const FAILED = 'uploads/frank/fail-me.png';
/** Re-uploaded (new content) while its notification was lost: the new version has no decision. */
const REPLACED = DECIDED[0]!;

describe('moderation reconcile (local stack)', () => {
  let t: TestStack;
  const losing = new Set<string>();

  const settle = async () => {
    expect(await waitForIntakeDrain(t.target, 30_000)).toBe(true);
    await t.stack.services.poller.idle();
  };

  beforeAll(async () => {
    const lost = (body: string) => {
      try {
        return losing.has(decodeS3Key((JSON.parse(body) as { Records: Array<{ s3: { object: { key: string } } }> }).Records[0]!.s3.object.key));
      } catch {
        return false;
      }
    };
    const ingest = async (event: SQSEvent) => {
      const { handler } = await import('../../functions/ingest.ts');
      return handler({ Records: event.Records.filter((r) => !lost(r.body)) });
    };
    t = await startTestStack({ functions: { ingest } });
    t.rekognition.failing = (key) => key.includes('fail-me');

    for (const [i, key] of DECIDED.entries()) await upload(t.target, key, await png(300 + i));
    await upload(t.target, FAILED, await png(310));
    await decided(t.target, DECIDED);
    await decided(t.target, [FAILED], (r) => r.status === 'FAILED');
    await settle();

    for (const key of [...LOST, REPLACED]) losing.add(key);
    for (const [i, key] of LOST.entries()) await upload(t.target, key, await png(320 + i));
    await upload(t.target, REPLACED, await png(399));
    // Outside the uploads prefix: never moderated, never reconciled.
    await t.target.s3.send(new PutObjectCommand({ Bucket: t.target.names.uploadsBucket, Key: 'exports/report.csv', Body: 'a,b\n' }));
    await t.stack.services.s3.flush();
    await settle();
    losing.clear();
  });

  afterAll(async () => {
    await t?.close();
  });

  it('finds exactly the objects without a decision, and the FAILED one apart', async () => {
    const report = await reconcile(t.target, { minAgeMs: 0 });
    expect(report).toMatchObject({ bucket: 'moderation-uploads', prefix: 'uploads/', objects: 7, decided: 2, inFlight: 0, enqueued: 0 });
    expect(report.undecided.map((o) => [o.key, o.state])).toEqual(
      [...LOST.map((k) => [k, 'undecided']), [REPLACED, 'undecided'], [FAILED, 'failed']].sort((a, b) => a[0]!.localeCompare(b[0]!)),
    );
    expect(report.undecided.find((o) => o.key === FAILED)!.lastError).toBe('ServiceUnavailable');
    // The replaced object's first version was decided; the current one (another ETag) was not.
    expect((await recordsOf(t.target, REPLACED)).map((r) => r.eTag)).not.toContain(report.undecided.find((o) => o.key === REPLACED)!.eTag);
  });

  it('leaves out objects younger than --min-age (still in the pipeline)', async () => {
    const report = await reconcile(t.target, { minAgeMs: 10 * 60_000 });
    expect(report).toMatchObject({ objects: 7, inFlight: 7, decided: 0, undecided: [] });
    const prefixed = await reconcile(t.target, { minAgeMs: 0, prefix: 'uploads/gina/' });
    expect(prefixed.undecided.map((o) => o.key)).toEqual([LOST[1], LOST[2]]);
  });

  it('--enqueue sends the undecided ones through the pipeline (not the FAILED one); then nothing is undecided but it', async () => {
    const report = await reconcile(t.target, { minAgeMs: 0, enqueue: true, rate: 50 });
    expect(report.enqueued).toBe(4);
    expect(report.undecided.filter((o) => o.enqueued).map((o) => o.key).sort()).toEqual([...LOST, REPLACED].sort());
    const decisions = await decided(t.target, [...LOST, REPLACED], (r) => r.sk === 'DECISION#auto' && report.undecided.some((o) => o.key === r.key && o.eTag === r.eTag));
    for (const object of report.undecided.filter((o) => o.enqueued)) {
      // The job the pipeline decided is the one reconcile enqueued (derived from the object, not random).
      expect(decisions.get(object.key)!.jobId).toBe(object.jobId);
      expect(decisions.get(object.key)!.status).toBe('APPROVED');
    }
    await settle();
    const after = await reconcile(t.target, { minAgeMs: 0 });
    expect(after.undecided.map((o) => o.key)).toEqual([FAILED]);
  });

  it('enqueueing the same objects twice decides them once', async () => {
    t.rekognition.failing = () => false;
    const first = await reconcile(t.target, { minAgeMs: 0, enqueue: true, includeFailed: true });
    const second = await reconcile(t.target, { minAgeMs: 0, enqueue: true, includeFailed: true });
    expect(first.enqueued).toBe(1);
    // Either it was still undecided (enqueued again, with the same job id) or already decided.
    if (second.enqueued) expect(second.undecided[0]!.jobId).toBe(first.undecided[0]!.jobId);
    await decided(t.target, [FAILED]);
    await settle();
    const records = await recordsOf(t.target, FAILED);
    expect(records.filter((r) => r.sk === 'DECISION#auto')).toHaveLength(1);
    expect(records.filter((r) => r.sk === 'DECISION#auto')[0]!.jobId).toBe(first.undecided[0]!.jobId);
    const final = await eventually(async () => {
      const report = await reconcile(t.target, { minAgeMs: 0 });
      return report.undecided.length === 0 ? report : undefined;
    });
    expect(final).toMatchObject({ objects: 7, decided: 7 });
  });

  it('derives the sequencer from LastModified, in S3 form', () => {
    const at = new Date('2026-11-25T10:00:00.000Z');
    expect(reconcileSequencer(at)).toBe(reconcileSequencer(new Date(at)));
    expect(reconcileSequencer(at)).toMatch(/^[0-9A-F]{16,}$/);
    expect(reconcileSequencer(new Date(at.getTime() + 1)) > reconcileSequencer(at)).toBe(true);
  });
});
