/**
 * The appeal intake handler (functions/appeal-intake.ts) over in-memory stores: a valid request for
 * a REJECTED image is filed (the image back in the review queue as an appeal, the same code path as
 * `moderation appeal`), also when it arrives as an EventBridge event; a redelivery writes nothing; an
 * unknown job, an image that is not REJECTED or one with another appeal open is refused (logged,
 * counted, not retried); a malformed request goes to the appeal dead-letter queue at once with the
 * reason; a store outage is a batch item failure (SQS retries it, then redrives it).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { InMemoryDecisionStore } from '../../functions/store/memory.ts';
import { useStores } from '../../functions/stores.ts';
import { automatedRecord } from '../../functions/lib/decision.ts';
import { jobIdFor } from '../../functions/lib/job-id.ts';
import { APPEAL_REQUEST_DETAIL_TYPE } from '../../functions/lib/appeal-request.ts';
import type { DeadLetterChannel } from '../../functions/store/dead-letter-channel.ts';
import type { Job, ModerationState } from '../../functions/lib/types.ts';
import { handler, useAppealDeadLetters } from '../../functions/appeal-intake.ts';
import { metrics } from '../../functions/observability.ts';

const store = new InMemoryDecisionStore();
const parked: Array<{ body: string; error: { name: string; message: string } }> = [];
const deadLetters: DeadLetterChannel = {
  sendFailedJob: async () => {
    throw new Error('not expected');
  },
  sendMalformed: async (body, error) => {
    parked.push({ body, error: { name: error.name, message: error.message } });
  },
};

function job(key: string): Job {
  const at = '2026-11-02T10:00:00.000Z';
  return { jobId: jobIdFor({ bucket: 'uploads', key, versionId: 'v1' }), bucket: 'uploads', key, versionId: 'v1', uploader: 'grace', eventTime: at, receivedAt: at };
}

async function decide(key: string, verdict: 'REJECT' | 'APPROVE'): Promise<string> {
  const j = job(key);
  const state: ModerationState = {
    job: j,
    detection: {
      verdict,
      labels: verdict === 'REJECT' ? [{ name: 'Explicit', parentName: '', level: 1, confidence: 95 }] : [],
      flagged: [],
      ...(verdict === 'REJECT' ? { rule: { category: 'Explicit', label: 'Explicit', confidence: 95, action: 'reject' as const, threshold: 80 } } : {}),
      policyVersion: 'sha256:0123456789abcdef',
      source: 's3-object',
      durationMs: 5,
    },
  };
  await store.putAutomatedOnce(automatedRecord(state, { decidedAt: '2026-11-02T10:00:01.000Z' }));
  return j.jobId;
}

let nextId = 0;
const message = (body: unknown): SQSRecord =>
  ({ messageId: `m${++nextId}`, body: typeof body === 'string' ? body : JSON.stringify(body), receiptHandle: 'r', attributes: {}, messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:appeals', awsRegion: 'us-east-1' }) as SQSRecord;
const batch = (...records: SQSRecord[]): SQSEvent => ({ Records: records });
const counted = vi.spyOn(metrics, 'addMetric');
const appeals = (jobId: string) => [...store.items.values()].filter((r) => r.jobId === jobId && r.kind === 'appeal');

let rejected: string;
let approved: string;

beforeAll(async () => {
  useStores({ decisions: store });
  useAppealDeadLetters(deadLetters);
  rejected = await decide('uploads/grace/painting.png', 'REJECT');
  approved = await decide('uploads/grace/fine.png', 'APPROVE');
});

afterAll(() => {
  useStores({});
  useAppealDeadLetters(undefined);
  counted.mockRestore();
});

beforeEach(() => {
  counted.mockClear();
  parked.length = 0;
});

const metricNames = () => counted.mock.calls.map(([name]) => name);

describe('appeal intake', () => {
  it('files a valid request for a REJECTED image: an appeal record with the message, in the review queue (status REVIEW)', async () => {
    const out = await handler(batch(message({ schemaVersion: '1', jobId: rejected, message: 'It is a painting in a museum', requestId: 'platform-42' })));
    expect(out.batchItemFailures).toEqual([]);
    expect(appeals(rejected)).toEqual([expect.objectContaining({ kind: 'appeal', status: 'REVIEW', reason: 'It is a painting in a museum', decidedBy: 'uploader:grace', sk: 'APPEAL#r0001' })]);
    expect(metricNames()).toEqual(['AppealsFiled']);
  });

  it('a redelivery (or the same request as an EventBridge event) writes nothing', async () => {
    const event = { version: '0', id: 'e1', source: 'upload-platform.appeals', 'detail-type': APPEAL_REQUEST_DETAIL_TYPE, detail: { schemaVersion: '1', jobId: rejected, message: 'It is a painting in a museum' } };
    const out = await handler(batch(message({ schemaVersion: '1', jobId: rejected, message: 'It is a painting in a museum' }), message(event)));
    expect(out.batchItemFailures).toEqual([]);
    expect(appeals(rejected)).toHaveLength(1);
    expect(metricNames()).toEqual(['AppealsAlreadyFiled', 'AppealsAlreadyFiled']);
  });

  it('an EventBridge event carrying a request is filed like a message', async () => {
    const other = await decide('uploads/heidi/photo.png', 'REJECT');
    const event = { version: '0', id: 'e2', source: 'upload-platform.appeals', 'detail-type': APPEAL_REQUEST_DETAIL_TYPE, detail: { schemaVersion: '1', jobId: other, message: 'mine, and consented' } };
    expect((await handler(batch(message(event)))).batchItemFailures).toEqual([]);
    expect(appeals(other).map((r) => r.reason)).toEqual(['mine, and consented']);
  });

  it.each([
    ['an unknown job', () => 'f'.repeat(40), 'x'],
    ['an image that is not REJECTED', () => approved, 'please'],
    ['another appeal open for the job', () => rejected, 'a second, different message'],
  ])('refuses %s: nothing written, not retried, not dead-lettered', async (_what, jobId, text) => {
    const before = store.items.size;
    const out = await handler(batch(message({ schemaVersion: '1', jobId: jobId(), message: text })));
    expect(out.batchItemFailures).toEqual([]);
    expect(store.items.size).toBe(before);
    expect(parked).toEqual([]);
    expect(metricNames()).toEqual(['AppealsRefused']);
  });

  it.each([
    ['not JSON', 'appeal please', /not JSON/],
    ['no jobId', { schemaVersion: '1', message: 'x' }, /jobId: /],
    ['a jobId that is not one', { schemaVersion: '1', jobId: 'JOB-1', message: 'x' }, /jobId: must be a job id/],
    ['an empty message', { schemaVersion: '1', jobId: 'a'.repeat(40), message: '   ' }, /message: must not be empty/],
    ['an unknown field', { schemaVersion: '1', jobId: 'a'.repeat(40), message: 'x', uploaderEmail: 'a@b.c' }, /uploaderEmail|Unrecognized key/],
    ['another version', { schemaVersion: '2', jobId: 'a'.repeat(40), message: 'x' }, /schemaVersion/],
    ['an event of another detail-type', { 'detail-type': 'Moderation Decision', detail: { jobId: 'a'.repeat(40) } }, /detail-type "Moderation Decision"/],
  ])('a malformed request (%s) goes to the appeal dead-letter queue at once, with the reason', async (_what, body, reason) => {
    const before = store.items.size;
    const record = message(body);
    const out = await handler(batch(record));
    expect(out.batchItemFailures).toEqual([]);
    expect(store.items.size).toBe(before);
    expect(parked).toHaveLength(1);
    expect(parked[0]!.body).toBe(record.body);
    expect(parked[0]!.error.name).toBe('MalformedMessage');
    expect(parked[0]!.error.message).toMatch(reason);
    expect(metricNames()).toEqual(['MalformedAppeals']);
  });

  it('a store outage is a batch item failure (SQS retries it), and only that message', async () => {
    const failing = vi.spyOn(store, 'jobHistory').mockRejectedValueOnce(Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' }));
    const bad = message({ schemaVersion: '1', jobId: rejected, message: 'It is a painting in a museum' });
    const out = await handler(batch(bad));
    expect(out.batchItemFailures).toEqual([{ itemIdentifier: bad.messageId }]);
    expect(parked).toEqual([]);
    failing.mockRestore();
  });
});
