/**
 * Appeals from the platform against the local stack (issue 14, section 3): a `Moderation Appeal
 * Request` sent to the stack's appeal queue (local SQS, as a platform would send it to `moderation
 * serve`) is drained by the same handler as the construct's appeal intake and puts the REJECTED image
 * back in the review queue as an appeal with the message, exactly like `moderation appeal`; an EventBridge
 * event's shape is accepted too; a request for an image that is not REJECTED is refused (nothing
 * written); a malformed one lands in the appeal dead-letter queue with the reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { jobRecords, listPendingReviews } from '../../cli/human-review.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { JOB_PARTITION_PREFIX } from '../../functions/store/table-schema.ts';
import { decided, eventually, png, startTestStack, upload, type TestStack } from './helpers.ts';

/** A record's job id (an index may not project it: its partition key says it too). */
const jobIdOf = (record: DecisionRecord): string => record.jobId ?? record.pk.slice(JOB_PARTITION_PREFIX.length);

describe('appeals from the platform (local stack, appeal queue)', () => {
  let t: TestStack;
  let held: Map<string, DecisionRecord>;
  const keys = { rejected: 'uploads/grace/reject-painting.png', other: 'uploads/heidi/reject-photo.png', fine: 'uploads/ivan/fine.png' };
  const send = (body: unknown) =>
    t.target.sqs.send(new SendMessageCommand({ QueueUrl: t.stack.names.appealQueueUrl, MessageBody: typeof body === 'string' ? body : JSON.stringify(body) }));

  beforeAll(async () => {
    t = await startTestStack();
    for (const [i, key] of Object.values(keys).entries()) await upload(t.target, key, await png(80 + i));
    held = await decided(t.target, Object.values(keys));
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  it('a request on the appeal queue puts the REJECTED image back in the review queue as an appeal with the message', async () => {
    const rejected = held.get(keys.rejected)!;
    expect(rejected.status).toBe('REJECTED');
    await send({ schemaVersion: '1', jobId: jobIdOf(rejected), message: 'It is a painting in a museum', requestId: 'platform-1' });
    const pending = await eventually(async () => {
      const items = await listPendingReviews(t.target);
      return items.some((p) => p.kind === 'appeal') ? items : undefined;
    });
    expect(pending.map((p) => `${p.kind} ${p.record.key}`)).toEqual([`appeal ${keys.rejected}`]);
    expect(pending[0]!.record).toMatchObject({ kind: 'appeal', status: 'REVIEW', reason: 'It is a painting in a museum', decidedBy: 'uploader:grace', contests: `${rejected.pk}|${rejected.sk}` });
  });

  it('as an EventBridge event (what the construct\'s rule would deliver, whole): filed the same way', async () => {
    const other = held.get(keys.other)!;
    await send({ version: '0', source: 'upload-platform.appeals', 'detail-type': 'Moderation Appeal Request', detail: { schemaVersion: '1', jobId: jobIdOf(other), message: 'consented, and mine' } });
    const appeal = await eventually(async () => (await jobRecords(t.target, jobIdOf(other))).find((r) => r.kind === 'appeal'));
    expect(appeal.reason).toBe('consented, and mine');
  });

  it('an image that is not REJECTED is refused (nothing written); a malformed request goes to the appeal dead-letter queue', async () => {
    const fine = held.get(keys.fine)!;
    await send({ schemaVersion: '1', jobId: jobIdOf(fine), message: 'please' });
    await send('{"jobId": "nope"}');
    const parked = await eventually(async () => {
      const { Messages = [] } = await t.target.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: t.stack.names.appealDeadLetterQueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }),
      );
      return Messages.length ? Messages : undefined;
    });
    expect(parked.map((m) => m.Body)).toEqual(['{"jobId": "nope"}']);
    expect(JSON.stringify(parked[0]!.MessageAttributes)).toMatch(/MalformedMessage/);
    // Sent before the malformed one and drained in order by one poller: the APPROVED image got no appeal.
    expect((await jobRecords(t.target, jobIdOf(fine))).map((r) => r.kind)).toEqual(['automated']);
  });
});
