/**
 * `moderation dlq` against the local stack. A Rekognition outage sends real jobs down the workflow's
 * fail path (FAILED in the history, the job in the DLQ); a malformed message is parked by ingest; a
 * raw S3 notification sits there as SQS's redrive leaves it. Then: list and show them; a dry run
 * changes nothing; --max 5 moves exactly 5; replaying a job twice decides it once (Rekognition is
 * asked once); a full redrive (StartMessageMoveTask) moves the rest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { buildS3Notification } from '../../functions/lib/s3-event.ts';
import { listDlq, parseDlqFilter, queueDepth, replayDlq, showDlqMessage, waitForIntakeDrain } from '../../cli/dlq.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { decided, eventually, png, recordsOf, startTestStack, upload, type TestStack } from './helpers.ts';

const FLAKY = Array.from({ length: 8 }, (_, i) => `uploads/dave/flaky/img-${i}.png`);
const REDRIVEN = 'uploads/erin/redriven.png';

describe('moderation dlq (local stack)', () => {
  let t: TestStack;
  let outage = true;
  let rawNotification: string;
  /** The dead-letter body of each flaky job, as the fail path wrote it. */
  const bodies = new Map<string, string>();
  /** Flaky keys without a decision yet. */
  let decidedFlaky = new Set<string>();
  const remainingFlaky = () => FLAKY.filter((k) => !decidedFlaky.has(k));

  const settle = async () => {
    expect(await waitForIntakeDrain(t.target, 30_000)).toBe(true);
    await t.stack.services.poller.idle();
  };
  const dlqDepth = () => queueDepth(t.target, t.target.names.deadLetterQueueUrl);
  const auto = async (key: string): Promise<DecisionRecord | undefined> => (await recordsOf(t.target, key)).find((r) => r.sk === 'DECISION#auto');

  beforeAll(async () => {
    // The ingest handler, except that (during the setup) notifications for REDRIVEN are consumed and lost.
    let losing = true;
    const ingest = async (event: SQSEvent) => {
      const { handler } = await import('../../functions/ingest.ts');
      return handler({ Records: event.Records.filter((r) => !(losing && r.body.includes('redriven'))) });
    };
    t = await startTestStack({ functions: { ingest } });
    t.rekognition.failing = (key) => outage && key.includes('/flaky/');

    for (const [i, key] of FLAKY.entries()) await upload(t.target, key, await png(100 + i));
    // A body nobody can read: ingest parks it in the DLQ at once (errorName MalformedMessage).
    await t.target.sqs.send(new SendMessageCommand({ QueueUrl: t.target.names.intakeQueueUrl, MessageBody: 'hello, is this the moderation queue?' }));
    // An upload whose notification was lost, and that notification as SQS's redrive would leave it in the DLQ.
    const eTag = await upload(t.target, REDRIVEN, await png(200));
    rawNotification = JSON.stringify(buildS3Notification([{ bucket: t.target.names.uploadsBucket, key: REDRIVEN, size: 1, eTag, sequencer: '00000000000000A1' }]));
    await t.target.sqs.send(new SendMessageCommand({ QueueUrl: t.target.names.deadLetterQueueUrl, MessageBody: rawNotification }));

    await eventually(async () => ((await dlqDepth()).visible === 10 ? true : undefined), 30_000);
    await settle();
    losing = false;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('the outage left FAILED records and dead-lettered jobs', async () => {
    for (const key of FLAKY) {
      const records = await recordsOf(t.target, key);
      expect(records.map((r) => r.status)).toEqual(['FAILED']);
      expect(t.rekognition.calls.get(key)).toBe(4); // the first attempt + the ASL's 3 retries for ServiceUnavailable
    }
  });

  it('lists every message with its kind, error and original job (consuming nothing)', async () => {
    const messages = await listDlq(t.target);
    expect(messages).toHaveLength(10);
    const byKind = (kind: string) => messages.filter((m) => m.kind === kind);
    expect(byKind('failed-job')).toHaveLength(8);
    expect(byKind('failed-job').every((m) => m.errorName === 'ServiceUnavailable' && /Rekognition/.test(m.errorMessage) && m.executionId)).toBe(true);
    expect(byKind('failed-job').map((m) => m.jobs[0]!.key).sort()).toEqual([...FLAKY].sort());
    for (const m of byKind('failed-job')) bodies.set(m.jobs[0]!.key, m.body);
    expect(JSON.parse(byKind('s3-notification')[0]!.body)).toEqual(JSON.parse(rawNotification));
    expect(byKind('malformed')).toEqual([expect.objectContaining({ errorName: 'MalformedMessage', jobs: [] })]);
    expect(byKind('s3-notification')).toEqual([expect.objectContaining({ errorName: 'MaxReceiveCountExceeded', jobs: [expect.objectContaining({ key: REDRIVEN })] })]);
    // Still all there, visible.
    expect(await dlqDepth()).toMatchObject({ visible: 10, inFlight: 0 });

    const shown = await showDlqMessage(t.target, FLAKY[3]!);
    expect(shown.error?.Cause).toMatch(/ServiceUnavailable|Rekognition/);
    expect((await showDlqMessage(t.target, shown.jobs[0]!.jobId.slice(0, 8))).messageId).toBe(shown.messageId);
    expect((await listDlq(t.target, { filter: parseDlqFilter(['error:MalformedMessage']) })).map((m) => m.kind)).toEqual(['malformed']);
  });

  it('replay --dry-run reports what would move and changes nothing', async () => {
    const callsBefore = new Map(t.rekognition.calls);
    const report = await replayDlq(t.target, { dryRun: true, rate: 100 });
    expect(report).toMatchObject({ mode: 'per-message', dryRun: true, moved: 9 });
    expect(report.skipped).toEqual([expect.objectContaining({ kind: 'malformed', note: expect.stringMatching(/park it again/) })]);
    // replayDlq returns after it has made every message it peeked at visible again.
    expect(await dlqDepth()).toMatchObject({ visible: 10, inFlight: 0 });
    expect(await queueDepth(t.target, t.target.names.intakeQueueUrl)).toMatchObject({ visible: 0, inFlight: 0 });
    for (const key of [...FLAKY, REDRIVEN]) expect(await auto(key)).toBeUndefined();
    expect(t.rekognition.calls).toEqual(callsBefore);
  });

  it('replay --max 5 moves exactly 5 (rate-limited), and those jobs are decided', async () => {
    outage = false;
    const started = Date.now();
    const report = await replayDlq(t.target, { max: 5, rate: 10, filter: parseDlqFilter(['key:uploads/dave/flaky/']) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400); // 5 messages at 10/s
    expect(report).toMatchObject({ mode: 'per-message', dryRun: false, moved: 5, remaining: { visible: 5, inFlight: 0 } });
    expect(report.items.every((i) => i.kind === 'failed-job' && i.keys[0]!.startsWith('uploads/dave/flaky/'))).toBe(true);
    const moved = report.items.map((i) => i.keys[0]!);
    decidedFlaky = new Set(moved);
    const decisions = await decided(t.target, moved);
    for (const key of moved) expect(decisions.get(key)!.status).toBe('APPROVED');
    await settle();
    const untouched = FLAKY.filter((k) => !moved.includes(k));
    for (const key of untouched) expect(await auto(key)).toBeUndefined();
    expect((await listDlq(t.target)).map((m) => m.jobs[0]?.key).filter((k) => k?.includes('/flaky/')).sort()).toEqual(untouched.sort());
    expect(remainingFlaky().sort()).toEqual(untouched.sort());
  });

  it('a message replayed twice is decided once', async () => {
    // (a) Sequentially: a job replayed above, its dead-letter body sent back to the DLQ and replayed again.
    const key = FLAKY.find((k) => !remainingFlaky().includes(k))!;
    const first = (await auto(key))!;
    expect(t.rekognition.calls.get(key)).toBe(5); // 4 attempts during the outage + 1 when replayed
    const recordsBefore = await recordsOf(t.target, key);
    await t.target.sqs.send(new SendMessageCommand({ QueueUrl: t.target.names.deadLetterQueueUrl, MessageBody: bodies.get(key)! }));
    const again = await replayDlq(t.target, { filter: parseDlqFilter([`key:${key}`]) });
    expect(again.moved).toBe(1);
    expect(again.items[0]!.decided).toEqual([`${first.jobId.slice(0, 12)} APPROVED`]);
    await settle();
    expect(await auto(key)).toEqual(first); // the same decision, not a second one
    expect(await recordsOf(t.target, key)).toHaveLength(recordsBefore.length);
    expect(t.rekognition.calls.get(key)).toBe(5); // the detect step stopped before Rekognition

    // (b) At once: two copies of one message in the DLQ, replayed together.
    const twin = remainingFlaky()[0]!;
    await t.target.sqs.send(new SendMessageCommand({ QueueUrl: t.target.names.deadLetterQueueUrl, MessageBody: bodies.get(twin)! }));
    const both = await replayDlq(t.target, { filter: parseDlqFilter([`key:${twin}`]) });
    expect(both.moved).toBe(2);
    decidedFlaky.add(twin);
    await settle();
    const records = await recordsOf(t.target, twin);
    expect(records.filter((r) => r.sk === 'DECISION#auto')).toHaveLength(1);
    expect(records.map((r) => r.status).sort()).toEqual(['APPROVED', 'FAILED']);
  });

  it('a full redrive moves the rest with StartMessageMoveTask; the malformed body is parked again', async () => {
    const before = await dlqDepth();
    expect(before.visible).toBe(4); // 2 flaky jobs, the malformed body, the raw notification
    const report = await replayDlq(t.target, { rate: 50 });
    expect(report.mode).toBe('move-task');
    expect(report.task?.status).toBe('COMPLETED');
    expect(report.moved).toBe(4);
    const rest = [...remainingFlaky(), REDRIVEN];
    const decisions = await decided(t.target, rest);
    expect([...decisions.values()].map((r) => r.status)).toEqual(['APPROVED', 'APPROVED', 'APPROVED']);
    await settle();
    // Ingest cannot read the malformed body any better than before: it is back, alone.
    const left = await eventually(async () => {
      const messages = await listDlq(t.target);
      return messages.length === 1 ? messages : undefined;
    });
    expect(left[0]).toMatchObject({ kind: 'malformed', errorName: 'MalformedMessage' });
    // Every flaky upload ended in exactly one decision.
    for (const key of FLAKY) expect((await recordsOf(t.target, key)).filter((r) => r.sk === 'DECISION#auto')).toHaveLength(1);
  });

  it('refuses bad options', async () => {
    await expect(replayDlq(t.target, { max: -1 })).rejects.toThrow(/--max/);
    await expect(replayDlq(t.target, { rate: 0 })).rejects.toThrow(/--rate/);
    expect(() => parseDlqFilter(['key:'])).toThrow(/needs a value/);
  });
});
