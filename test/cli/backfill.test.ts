/**
 * `moderation backfill` against the local stack: objects that were in the bucket before the
 * pipeline (their notifications never processed) are sent through it at a set rate, resumably;
 * what is decided is skipped; a bucket that cannot be listed is one clear error and nothing sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSEvent } from 'aws-lambda';
import { decodeS3Key } from '../../functions/lib/s3-event.ts';
import { backfill, checkpointFileFor } from '../../cli/backfill.ts';
import { queueDepth, waitForIntakeDrain } from '../../cli/dlq.ts';
import { decided, png, recordsOf, startTestStack, upload, type TestStack } from './helpers.ts';

const BEFORE = ['uploads/old/a.png', 'uploads/old/b.png', 'uploads/old/c d.png', 'uploads/old/e.png', 'uploads/old/f.png'];
const ALREADY = ['uploads/new/x.png', 'uploads/new/y.png'];

describe('moderation backfill (local stack)', () => {
  let t: TestStack;
  let quiet = true;
  const home = mkdtempSync(join(tmpdir(), 'moderation-backfill-'));

  beforeAll(async () => {
    // Until `quiet` is off, the bucket's notifications are consumed and dropped: the objects
    // uploaded meanwhile are what a bucket holds before the pipeline exists.
    const ingest = async (event: SQSEvent) => {
      const { handler } = await import('../../functions/ingest.ts');
      const keep = event.Records.filter((r) => !(quiet && BEFORE.includes(decodeS3Key(JSON.parse(r.body).Records[0].s3.object.key))));
      return handler({ Records: keep });
    };
    t = await startTestStack({ functions: { ingest } });
    for (const [i, key] of BEFORE.entries()) await upload(t.target, key, await png(500 + i));
    for (const [i, key] of ALREADY.entries()) await upload(t.target, key, await png(600 + i));
    await decided(t.target, ALREADY);
    expect(await waitForIntakeDrain(t.target, 30_000)).toBe(true);
    quiet = false;
  });

  afterAll(async () => {
    await t?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('sends what has no decision, resumably: stopped after 2, resumed for the rest; decided once each', async () => {
    const checkpointFile = checkpointFileFor(home, t.target.names.uploadsBucket, 'uploads/');
    const first = await backfill(t.target, { prefix: 'uploads/', rate: 50, max: 2, checkpointFile });
    expect(first).toMatchObject({ enqueued: 2, complete: false });
    expect(existsSync(checkpointFile)).toBe(true);

    const rest = await backfill(t.target, { prefix: 'uploads/', rate: 50, resume: true, checkpointFile });
    expect(rest.resumedAfter).toBe(first.lastKey);
    expect(rest).toMatchObject({ enqueued: BEFORE.length - 2, complete: true });
    // Keys are walked in order; the decided ones were skipped by whichever run met them.
    expect(first.alreadyDecided + rest.alreadyDecided).toBe(ALREADY.length);
    expect(first.listed + rest.listed).toBe(BEFORE.length + ALREADY.length);
    expect(existsSync(checkpointFile)).toBe(false);

    await decided(t.target, BEFORE);
    expect(await waitForIntakeDrain(t.target, 30_000)).toBe(true);
    for (const key of BEFORE) expect((await recordsOf(t.target, key)).filter((r) => r.kind === 'automated' || r.sk === 'DECISION#auto')).toHaveLength(1);

    // Nothing is left: a new run sends nothing.
    expect(await backfill(t.target, { prefix: 'uploads/', checkpointFile })).toMatchObject({ enqueued: 0, alreadyDecided: BEFORE.length + ALREADY.length, complete: true });
  });

  it('a dry run counts and sends nothing, and keeps no position', async () => {
    const before = await queueDepth(t.target, t.target.names.intakeQueueUrl);
    const report = await backfill(t.target, { prefix: 'uploads/old/', dryRun: true, checkpointFile: join(home, 'dry.json') });
    expect(report).toMatchObject({ dryRun: true, listed: BEFORE.length, alreadyDecided: BEFORE.length, enqueued: 0, complete: true });
    expect(existsSync(join(home, 'dry.json'))).toBe(false);
    expect(await queueDepth(t.target, t.target.names.intakeQueueUrl)).toEqual(before);
  });

  it('--resume without an interrupted run, and a bucket that cannot be listed, are clear errors; nothing is sent', async () => {
    await expect(backfill(t.target, { prefix: 'uploads/', resume: true, checkpointFile: join(home, 'none.json') })).rejects.toThrow(/no interrupted backfill/);
    const before = await queueDepth(t.target, t.target.names.intakeQueueUrl);
    const elsewhere = { ...t.target, names: { ...t.target.names, uploadsBucket: 'no-such-bucket' } };
    await expect(backfill(elsewhere, { prefix: 'uploads/', checkpointFile: join(home, 'x.json') })).rejects.toMatchObject({
      name: 'UsageError',
      message: expect.stringMatching(/cannot list s3:\/\/no-such-bucket\/uploads\/: bucket no-such-bucket does not exist/),
    });
    expect(await queueDepth(t.target, t.target.names.intakeQueueUrl)).toEqual(before);
  });
});
