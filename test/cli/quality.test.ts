/**
 * Measured quality against a local stack (issue 14, section 4): with a sample rate of 1 every
 * automated APPROVED and REJECTED decision also enters the review queue blind (an entry with no
 * verdict); a blind answer is recorded (kind `blind`) and not applied; `moderation quality` reports
 * the agreement per status and per category with Wilson intervals, from the blind answers and an
 * appeal's override, on seeded data with known numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectTaggingCommand } from '@aws-sdk/client-s3';
import { decideReview, fileAppeal, jobRecords, listPendingReviews } from '../../cli/human-review.ts';
import type { QualityData } from '../../cli/quality.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { decided, png, startTestStack, upload, type TestStack } from './helpers.ts';
import { moderation } from '../e2e/cli.ts';

describe('moderation quality (local stack, every APPROVED/REJECTED decision sampled)', () => {
  let t: TestStack;
  let records: Map<string, DecisionRecord>;
  // 'reject' in a key → REJECTED (Explicit), 'borderline' → REVIEW, else APPROVED with no label.
  const approved = ['uploads/a/fine-1.png', 'uploads/a/fine-2.png', 'uploads/b/fine-3.png', 'uploads/b/fine-4.png'];
  const rejected = ['uploads/c/reject-1.png', 'uploads/c/reject-2.png', 'uploads/d/reject-3.png'];
  const appealed = 'uploads/e/reject-4.png';
  const held = 'uploads/f/borderline-1.png';
  const all = [...approved, ...rejected, appealed, held];
  const job = (key: string) => records.get(key)!.jobId;
  const cli = (args: string[]) => moderation([...args, '--home', t.home]);

  beforeAll(async () => {
    t = await startTestStack({ qualitySampleRate: 1 });
    for (const [i, key] of all.entries()) await upload(t.target, key, await png(70 + i));
    records = await decided(t.target, all);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  it('samples every APPROVED and REJECTED decision (the automated record says so) and never a REVIEW one', async () => {
    for (const key of [...approved, ...rejected, appealed]) expect(records.get(key)!.qualitySample, key).toBe(true);
    expect(records.get(held)!.status).toBe('REVIEW');
    expect(records.get(held)!.qualitySample).toBeUndefined();
    expect((await jobRecords(t.target, job(approved[0]!))).map((r) => `${r.kind} ${r.sk}`)).toEqual(['automated DECISION#auto', 'sample QUALITY#sample']);
  });

  it('lists the samples blind: `review list --kind sample --json` has no verdict, label or rule', async () => {
    const pending = await listPendingReviews(t.target, { kinds: ['sample'] });
    expect(pending.map((p) => p.record.key).sort()).toEqual([...approved, ...rejected, appealed].sort());
    const listed = await cli(['review', 'list', '--kind', 'sample', '--json']);
    expect(listed.code).toBe(0);
    const rows = JSON.parse(listed.stdout) as Array<DecisionRecord & { queue: string }>;
    expect(rows).toHaveLength(8);
    for (const row of rows) {
      expect(row).toMatchObject({ kind: 'sample', queue: 'sample', status: 'REVIEW', labels: [] });
      expect(row.rule).toBeUndefined();
      expect(row.category).toBeUndefined();
      expect(JSON.stringify(row)).not.toMatch(/APPROVED|REJECTED|Explicit/);
    }
    const all = await listPendingReviews(t.target);
    expect(all.map((p) => p.kind).sort()).toEqual([...Array(8).fill('sample'), 'review'].sort());
  });

  it('a blind answer is recorded (kind blind), never applied, answered once', async () => {
    const key = approved[0]!;
    const before = (await t.target.s3.send(new GetObjectTaggingCommand({ Bucket: t.target.names.uploadsBucket, Key: key }))).TagSet;
    const result = await decideReview(t.target, job(key), { status: 'REJECTED', reviewer: 'dana', reason: 'looks explicit to me' });
    expect(result).toMatchObject({ kind: 'sample', alreadyRecorded: false, applied: { action: 'skipped' } });
    expect(result.record).toMatchObject({ kind: 'blind', sk: 'QUALITY#answer', status: 'REJECTED', decidedBy: 'human:dana', sampleOf: `${records.get(key)!.pk}|DECISION#auto` });
    const after = (await t.target.s3.send(new GetObjectTaggingCommand({ Bucket: t.target.names.uploadsBucket, Key: key }))).TagSet;
    expect(after).toEqual(before); // still APPROVED: a measurement, not an override
    expect((await decideReview(t.target, job(key), { status: 'REJECTED', reviewer: 'erin', reason: 'same' })).alreadyRecorded).toBe(true);
    await expect(decideReview(t.target, job(key), { status: 'APPROVED', reviewer: 'erin', reason: 'fine' })).rejects.toThrow(/quality sample was already answered REJECTED by human:dana/);
    expect((await listPendingReviews(t.target, { kinds: ['sample'] })).map((p) => p.record.key)).not.toContain(key);
  });

  it('reports agreement per status and category with counts and 95% Wilson intervals (deterministic numbers)', async () => {
    // Blind answers: of the 4 approved, 3 approve (one already rejected above); of the 3 rejected, 2 reject.
    for (const key of approved.slice(1)) await decideReview(t.target, job(key), { status: 'APPROVED', reviewer: 'dana', reason: 'fine' });
    await decideReview(t.target, job(rejected[0]!), { status: 'REJECTED', reviewer: 'dana', reason: 'explicit' });
    await decideReview(t.target, job(rejected[1]!), { status: 'REJECTED', reviewer: 'dana', reason: 'explicit' });
    await decideReview(t.target, job(rejected[2]!), { status: 'APPROVED', reviewer: 'dana', reason: 'a statue' });
    // An appeal granted: an override (the sample of that job is answered by the human decision).
    await fileAppeal(t.target, job(appealed), { message: 'it is a painting' });
    await decideReview(t.target, job(appealed), { status: 'APPROVED', reviewer: 'erin', reason: 'art' });
    // A human decision on an image held for review: no verdict to agree with, not counted.
    await decideReview(t.target, job(held), { status: 'APPROVED', reviewer: 'erin', reason: 'fine' });
    expect(await listPendingReviews(t.target)).toEqual([]);

    const result = await cli(['quality', '--since', '1h', '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const data = JSON.parse(result.stdout) as QualityData;
    expect(data).toMatchObject({ samples: 8, unanswered: 0, appeals: 1, openAppeals: 0 });
    // 8 observations: 7 blind answers (5 agree) and 1 appeal outcome (an override).
    expect(data.overall).toMatchObject({ checked: 8, agreed: 5, rate: 0.625, overrides: 1, blind: { checked: 7, agreed: 5 } });
    const approvedRow = data.byStatus.find((r) => r.name === 'APPROVED')!;
    expect(approvedRow).toMatchObject({ checked: 4, agreed: 3, rate: 0.75, overrides: 0 });
    expect(approvedRow.ci!.low).toBeCloseTo(0.3006, 4); // Wilson 3/4
    expect(approvedRow.ci!.high).toBeCloseTo(0.9544, 4);
    const rejectedRow = data.byStatus.find((r) => r.name === 'REJECTED')!;
    expect(rejectedRow).toMatchObject({ checked: 4, agreed: 2, rate: 0.5, overrides: 1, blind: { checked: 3, agreed: 2 } });
    expect(rejectedRow.ci!.low).toBeCloseTo(0.15, 2); // Wilson 2/4: 0.1500–0.8500
    expect(rejectedRow.ci!.high).toBeCloseTo(0.85, 2);
    expect(data.byCategory.map((r) => [r.name, r.checked, r.agreed, r.overrides])).toEqual([
      ['(no label)', 4, 3, 0],
      ['Explicit', 4, 2, 1],
    ]);

    const text = await cli(['quality', '--since', '1h']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Agreement with the automated decisions \(since .*\): 7 blind answers, 1 appeal outcome \(1 override\)\.\n8 quality samples in the window, 0 still unanswered; 1 appeal, 0 still open\./);
    expect(text.stdout).toMatch(/all\s+8\s+5\s+62\.5%\s+30\.6%–86\.3%\s+7\s+71\.4%\s+35\.9%–91\.8%\s+1/);
    expect(text.stdout).toMatch(/APPROVED\s+4\s+3\s+75\.0%\s+30\.1%–95\.4%/);
    expect(text.stdout).toMatch(/Explicit\s+4\s+2\s+50\.0%\s+15\.0%–85\.0%\s+3\s+66\.7%/);

    // A window with nothing in it.
    const empty = await cli(['quality', '--since', '2020-01-01', '--until', '2020-01-02', '--json']);
    expect(JSON.parse(empty.stdout)).toMatchObject({ samples: 0, overall: { checked: 0 } });
    const help = await cli(['quality', '--help']);
    expect(help.stdout).toMatch(/--since <when>[\s\S]*--json/);
  });

  it('`run` and `serve` take --quality-sample (0 to 1 or a percentage), refused out of range before anything starts', async () => {
    for (const command of ['run', 'serve']) {
      const help = await moderation([command, '--help']);
      expect(help.stdout).toMatch(/--quality-sample <rate>/);
    }
    const run = await moderation(['run', 'samples/approve-shapes.png', '--quality-sample', '150%', '--home', t.home]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('error: --quality-sample must be a fraction from 0 to 1 (or a percentage such as 5%), got "150%"\n');
    const serve = await moderation(['serve', '--quality-sample', 'often', '--home', `${t.home}/other`]);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toMatch(/^error: --quality-sample must be a fraction from 0 to 1/);
  });
});
