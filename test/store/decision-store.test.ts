/**
 * One contract, two decision stores: DynamoDB (against dynalite, the local runtime's DynamoDB) and the
 * in-memory store tests use. Both must hold the same history after the same calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb.ts';
import { DynamoDecisionStore, type DecisionStore } from '../../functions/store/decision-store.ts';
import { InMemoryDecisionStore } from '../../functions/store/memory.ts';
import { AppealOpenError, DecisionConflictError } from '../../functions/store/errors.ts';
import { appealRecord, automatedRecord, blindAnswerRecord, failureRecord, humanRecord } from '../../functions/lib/decision.ts';
import { jobIdFor } from '../../functions/lib/job-id.ts';
import { recordIdOf } from '../../functions/store/table-schema.ts';
import type { Decision, Job, ModerationState } from '../../functions/lib/types.ts';

let dynamo: LocalDynamo;
let client: DynamoDBDocumentClient;

beforeAll(async () => {
  dynamo = await startLocalDynamo();
  client = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
});

afterAll(async () => {
  client?.destroy();
  await dynamo?.close();
});

let counter = 0;
function newJob(): Job {
  counter += 1;
  const key = `uploads/alice/photo-${counter}-${Math.random().toString(36).slice(2)}.jpg`;
  const eTag = `etag${counter}`;
  const at = new Date(Date.UTC(2026, 10, 1, 0, 0, counter)).toISOString();
  return { jobId: jobIdFor({ bucket: 'uploads', key, eTag, sequencer: '01' }), bucket: 'uploads', key, eTag, sequencer: '01', uploader: 'alice', eventTime: at, receivedAt: at };
}

function automated(job: Job, verdict: 'APPROVE' | 'BORDERLINE' = 'BORDERLINE'): Decision {
  const state: ModerationState = {
    job,
    detection: {
      verdict,
      labels: [{ name: 'Explicit Nudity', parentName: 'Explicit', level: 2, confidence: 66 }],
      rule: verdict === 'BORDERLINE' ? { category: 'Explicit', label: 'Explicit Nudity', confidence: 66, action: 'review', threshold: 50 } : undefined,
      flagged: [],
      policyVersion: 'test@1',
      source: 's3-object',
      durationMs: 10,
    },
  };
  return automatedRecord(state, { decidedAt: job.receivedAt });
}

function human(previous: Decision & { pk: string; sk: string }, status: 'APPROVED' | 'REJECTED', reviewer: string, offsetMs = 60_000): Decision {
  return humanRecord(previous, { status, reviewer, reason: 'looked at it', decidedAt: new Date(Date.parse(previous.decidedAt) + offsetMs).toISOString(), supersedes: recordIdOf(previous) });
}

const implementations: Array<[string, () => DecisionStore]> = [
  ['DynamoDB (dynalite)', () => new DynamoDecisionStore({ client, tableName: dynamo.tableName, statusShards: 8 })],
  ['in memory', () => new InMemoryDecisionStore(8)],
];

describe.each(implementations)('decision store: %s', (_name, make) => {
  it('writes the automated decision once; a duplicate gets the stored one back and writes nothing', async () => {
    const store = make();
    const job = newJob();
    const first = await store.putAutomatedOnce(automated(job));
    expect(first.written).toBe(true);
    const again = await store.putAutomatedOnce({ ...automated(job, 'APPROVE'), decidedAt: '2030-01-01T00:00:00.000Z' });
    expect(again.written).toBe(false);
    if (!again.written) expect(again.existing).toMatchObject({ status: 'REVIEW', kind: 'automated', decidedAt: job.receivedAt });
    expect(await store.jobHistory(job.jobId)).toHaveLength(1);
  });

  it('the latest decision is the newest human one; a failure never is', async () => {
    const store = make();
    const job = newJob();
    const { record } = (await store.putAutomatedOnce(automated(job))) as { record: Decision & { pk: string; sk: string } };
    await store.appendFailure(failureRecord({ job, error: { Error: 'ServiceUnavailable', Cause: 'x' } }, { failedAt: new Date(Date.parse(job.receivedAt) + 90_000).toISOString() }));
    expect((await store.latestDecision(job.jobId))?.kind).toBe('automated');
    const approved = await store.appendHuman(human(record, 'APPROVED', 'dana'));
    expect(approved.sk).toBe('DECISION#human#r0001');
    const rejected = await store.appendHuman(human(record, 'REJECTED', 'erin', 120_000));
    expect(rejected.sk).toBe('DECISION#human#r0002');
    expect(await store.latestDecision(job.jobId)).toMatchObject({ status: 'REJECTED', decidedBy: 'human:erin', supersedes: recordIdOf(record) });
    expect((await store.decidedStatuses([job.jobId])).get(job.jobId)).toBe('REJECTED');
    expect((await store.jobHistory(job.jobId)).map((r) => r.kind)).toEqual(['automated', 'human', 'failure', 'human']);
    expect((await store.imageHistory(job.bucket, job.key)).map((r) => r.status)).toEqual(['REJECTED', 'FAILED', 'APPROVED', 'REVIEW']);
  });

  it('two reviewers deciding at once: exactly one write wins, the other is told who won', async () => {
    const store = make();
    const job = newJob();
    const { record } = (await store.putAutomatedOnce(automated(job))) as { record: Decision & { pk: string; sk: string } };
    const results = await Promise.allSettled([store.appendHuman(human(record, 'APPROVED', 'dana')), store.appendHuman(human(record, 'REJECTED', 'erin'))]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(DecisionConflictError);
    const winner = (won[0] as PromiseFulfilledResult<Decision>).value;
    expect((lost[0]!.reason as DecisionConflictError).message).toContain(winner.decidedBy);
    expect((await store.jobHistory(job.jobId)).filter((r) => r.kind === 'human')).toHaveLength(1);
  });

  it('answers audit queries by status, newest first, a page at a time', async () => {
    const store = make();
    const jobs = [newJob(), newJob(), newJob()];
    for (const job of jobs) await store.putAutomatedOnce(automated(job, 'APPROVE'));
    const since = new Date(jobs[0]!.receivedAt);
    const until = new Date(jobs[2]!.receivedAt);
    const first = await store.query({ statuses: ['APPROVED'], since, until, limit: 2 });
    expect(first.items.map((r) => r.jobId)).toEqual([jobs[2]!.jobId, jobs[1]!.jobId]);
    const second = await store.query({ statuses: ['APPROVED'], since, until, limit: 2, cursor: first.nextCursor });
    expect(second.items.map((r) => r.jobId)).toEqual([jobs[0]!.jobId]);
    expect(second.nextCursor).toBeUndefined();
  });
});

describe.each(implementations)('content index (never pay twice for the same bytes): %s', (_name, make) => {
  const sha = (n: number) => n.toString(16).padStart(64, '0');
  const policy = `test@${Math.random().toString(36).slice(2, 8)}`;
  const at = '2026-11-25T12:00:00.000Z';

  it('remembers the first job that decided some bytes, per policy version; a later job does not replace it', async () => {
    const store = make();
    const [first, second] = [newJob(), newJob()];
    expect(await store.content.sourceOf(sha(1), policy)).toBeUndefined();
    await store.content.remember({ contentHash: sha(1), policyVersion: policy, jobId: first.jobId, recordedAt: at });
    await store.content.remember({ contentHash: sha(1), policyVersion: policy, jobId: second.jobId, recordedAt: at });
    expect(await store.content.sourceOf(sha(1), policy)).toMatchObject({ contentHash: sha(1), policyVersion: policy, jobId: first.jobId });
    // Another policy version is another question.
    expect(await store.content.sourceOf(sha(1), `${policy}-2`)).toBeUndefined();
  });

  it('content entries are not decisions: no job history, no audit result', async () => {
    const store = make();
    const job = newJob();
    await store.content.remember({ contentHash: sha(2), policyVersion: policy, jobId: job.jobId, recordedAt: at });
    await store.content.rememberRejected({ perceptualHash: 'f0f0f0f00f0f0f0f', policyVersion: policy, jobId: job.jobId, recordedAt: at });
    expect(await store.jobHistory(job.jobId)).toEqual([]);
    expect(await store.latestDecision(job.jobId)).toBeUndefined();
    const page = await store.query({ since: new Date(at), until: new Date(at) });
    expect(page.items.filter((r) => r.jobId === job.jobId)).toEqual([]);
  });

  it('finds known-bad hashes within the distance by band lookups, nearest first, and nothing farther', async () => {
    const store = make();
    const [near, nearer, other] = [newJob(), newJob(), newJob()];
    const probe = '0123456789abcdef';
    // 8 bits away, spread over all four bands (no band equal: only the one-bit variants stored for it find it).
    await store.content.rememberRejected({ perceptualHash: '0122476a89a9cdec', policyVersion: policy, jobId: near.jobId, recordedAt: at });
    // 2 bits away.
    await store.content.rememberRejected({ perceptualHash: '0123456789abcdec', policyVersion: policy, jobId: nearer.jobId, recordedAt: at });
    // Far away (every band different by several bits).
    await store.content.rememberRejected({ perceptualHash: 'fedcba9876543210', policyVersion: policy, jobId: other.jobId, recordedAt: at });
    const matches = await store.content.nearRejected(probe, policy, 10);
    expect(matches.map((m) => [m.jobId, m.distance])).toEqual([
      [nearer.jobId, 2],
      [near.jobId, 8],
    ]);
    expect(await store.content.nearRejected(probe, policy, 5)).toHaveLength(1);
    expect(await store.content.nearRejected(probe, `${policy}-2`, 10)).toEqual([]);
    // Idempotent: storing the same entry again adds no second match.
    await store.content.rememberRejected({ perceptualHash: '0123456789abcdec', policyVersion: policy, jobId: nearer.jobId, recordedAt: at });
    expect(await store.content.nearRejected(probe, policy, 10)).toHaveLength(2);
  });
});

/** An automated REJECTED (or APPROVED) decision, sampled for a blind quality check when `sampled`. */
function decided(job: Job, status: 'REJECTED' | 'APPROVED', sampled = false): Decision {
  const state: ModerationState = {
    job,
    detection: {
      verdict: status === 'REJECTED' ? 'REJECT' : 'APPROVE',
      labels: [{ name: 'Explicit Nudity', parentName: 'Explicit', level: 2, confidence: 95 }],
      rule: status === 'REJECTED' ? { category: 'Explicit', label: 'Explicit Nudity', confidence: 95, action: 'reject', threshold: 80 } : undefined,
      flagged: [],
      policyVersion: 'test@1',
      source: 's3-object',
      durationMs: 10,
    },
  };
  // Rate 1 samples every APPROVED/REJECTED decision; 0 none.
  return automatedRecord(state, { decidedAt: job.receivedAt, qualitySampleRate: sampled ? 1 : 0 });
}

const later = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString();

describe.each(implementations)('decision store: appeals and quality samples, %s', (_name, make) => {
  it('an appeal is its own record (APPEAL#r0001, status REVIEW, found by the REVIEW status query); the latest decision ignores it', async () => {
    const store = make();
    const job = newJob();
    const { record: rejected } = (await store.putAutomatedOnce(decided(job, 'REJECTED'))) as { record: Decision & { pk: string; sk: string } };
    const filedAt = later(job.receivedAt, 1000);
    const appeal = await store.appendAppeal(appealRecord(rejected, { message: 'it is a painting', filedAt, contests: recordIdOf(rejected) }));
    expect(appeal).toMatchObject({ sk: 'APPEAL#r0001', kind: 'appeal', status: 'REVIEW', reason: 'it is a painting', contests: recordIdOf(rejected), decidedBy: 'uploader:alice' });
    expect(await store.latestDecision(job.jobId)).toMatchObject({ kind: 'automated', status: 'REJECTED' });
    expect((await store.decidedStatuses([job.jobId])).get(job.jobId)).toBe('REJECTED');
    const review = await store.query({ statuses: ['REVIEW'], since: new Date(filedAt), until: new Date(filedAt) });
    expect(review.items.filter((r) => r.jobId === job.jobId).map((r) => r.kind)).toEqual(['appeal']);
    expect((await store.jobHistory(job.jobId)).map((r) => r.kind)).toEqual(['automated', 'appeal']);
  });

  it('one open appeal at a time: a second is refused until a human decides the first; then the next is r0002', async () => {
    const store = make();
    const job = newJob();
    const { record: rejected } = (await store.putAutomatedOnce(decided(job, 'REJECTED'))) as { record: Decision & { pk: string; sk: string } };
    const file = (message: string, ms: number) => store.appendAppeal(appealRecord(rejected, { message, filedAt: later(job.receivedAt, ms), contests: recordIdOf(rejected) }));
    const first = await file('first', 1000);
    await expect(file('again', 2000)).rejects.toBeInstanceOf(AppealOpenError);
    await expect(file('again', 2000)).rejects.toThrow(/already has an open appeal, filed at .*"first"/);
    // The outcome: a human decision that supersedes the rejection and names the appeal.
    const denied = await store.appendHuman(
      humanRecord(rejected, { status: 'REJECTED', reviewer: 'dana', reason: 'explicit', decidedAt: later(job.receivedAt, 3000), supersedes: recordIdOf(rejected), appealOf: recordIdOf(first) }),
    );
    expect(denied).toMatchObject({ kind: 'human', appealOf: recordIdOf(first), supersedes: recordIdOf(rejected), previousStatus: 'REJECTED' });
    expect(await store.latestDecision(job.jobId)).toMatchObject({ kind: 'human', decidedBy: 'human:dana' });
    const second = await file('a second look, please', 4000);
    expect(second.sk).toBe('APPEAL#r0002');
  });

  it('two appeals filed at once: exactly one is written, the other is told it is open', async () => {
    const store = make();
    const job = newJob();
    const { record: rejected } = (await store.putAutomatedOnce(decided(job, 'REJECTED'))) as { record: Decision & { pk: string; sk: string } };
    const at = later(job.receivedAt, 1000);
    const results = await Promise.allSettled(['one', 'two'].map((message) => store.appendAppeal(appealRecord(rejected, { message, filedAt: at, contests: recordIdOf(rejected) }))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
    expect(lost.reason).toBeInstanceOf(AppealOpenError);
    expect((await store.jobHistory(job.jobId)).filter((r) => r.kind === 'appeal')).toHaveLength(1);
  });

  it('a sampled decision gets its blind queue entry (QUALITY#sample, REVIEW, no verdict), once, repaired by a redelivery', async () => {
    const store = make();
    const [sampled, plain, repaired] = [newJob(), newJob(), newJob()];
    const decision = decided(sampled, 'REJECTED', true);
    expect(decision.qualitySample).toBe(true);
    const { record } = (await store.putAutomatedOnce(decision)) as { record: Decision & { pk: string; sk: string } };
    expect(record.qualitySample).toBe(true);
    await store.putAutomatedOnce(decision); // a duplicate delivery
    const history = await store.jobHistory(sampled.jobId);
    expect(history.map((r) => `${r.kind} ${r.sk} ${r.status}`)).toEqual(['automated DECISION#auto REJECTED', 'sample QUALITY#sample REVIEW']);
    const entry = history[1]!;
    expect(entry).toMatchObject({ sampleOf: recordIdOf(record), labels: [], decidedAt: record.decidedAt });
    expect(entry.rule).toBeUndefined();
    expect(entry.reason).not.toMatch(/REJECT/);
    expect(await store.latestDecision(sampled.jobId)).toMatchObject({ kind: 'automated', status: 'REJECTED' });
    const review = await store.query({ statuses: ['REVIEW'], since: new Date(record.decidedAt), until: new Date(record.decidedAt) });
    expect(review.items.filter((r) => r.jobId === sampled.jobId).map((r) => r.kind)).toEqual(['sample']);

    await store.putAutomatedOnce(decided(plain, 'APPROVED'));
    expect((await store.jobHistory(plain.jobId)).map((r) => r.kind)).toEqual(['automated']);

    // A crash between the two writes: the automated record is there, the entry is not. The
    // redelivery (the same choice: it is a function of the job id) writes the entry.
    await store.putAutomatedOnce({ ...decided(repaired, 'APPROVED', true), qualitySample: undefined });
    expect((await store.jobHistory(repaired.jobId)).map((r) => r.kind)).toEqual(['automated']);
    const again = await store.putAutomatedOnce(decided(repaired, 'APPROVED', true));
    expect(again.written).toBe(false);
    expect((await store.jobHistory(repaired.jobId)).map((r) => r.kind)).toEqual(['automated', 'sample']);
  });

  it('a blind answer is written once (two at once: one wins) and never becomes the latest decision', async () => {
    const store = make();
    const job = newJob();
    await store.putAutomatedOnce(decided(job, 'APPROVED', true));
    const entry = (await store.jobHistory(job.jobId)).find((r) => r.kind === 'sample')!;
    const answer = (status: 'APPROVED' | 'REJECTED', reviewer: string) =>
      store.appendBlindAnswer(blindAnswerRecord(entry, { status, reviewer, decidedAt: later(job.receivedAt, 5000), sampleOf: entry.sampleOf! }));
    const results = await Promise.allSettled([answer('REJECTED', 'dana'), answer('APPROVED', 'erin')]);
    const won = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof answer>>> => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(won[0]!.value).toMatchObject({ kind: 'blind', sk: 'QUALITY#answer' });
    expect(lost[0]!.reason).toBeInstanceOf(DecisionConflictError);
    expect((lost[0]!.reason as DecisionConflictError).message).toContain(won[0]!.value.decidedBy);
    expect(await store.latestDecision(job.jobId)).toMatchObject({ kind: 'automated', status: 'APPROVED' });
    expect((await store.decidedStatuses([job.jobId])).get(job.jobId)).toBe('APPROVED');
    expect((await store.jobHistory(job.jobId)).map((r) => r.kind)).toEqual(['automated', 'sample', 'blind']);
  });
});

describe.each(implementations)('label index (audit --label): %s', (_name, make) => {
  const withLabels = (job: Job, labels: { name: string; parents?: string[] }[]): Decision => ({
    ...automated(job, 'APPROVE'),
    analysis: { labels: labels.map((label) => ({ name: label.name, confidence: 95, ...(label.parents ? { parents: label.parents } : {}) })), labelCount: labels.length },
  });

  it('finds the automated decisions with a label or a parent, any case, newest first, a page at a time; nothing else', async () => {
    const store = make();
    const label = `Bicycle${counter}`;
    const jobs = [newJob(), newJob(), newJob()];
    for (const job of jobs) {
      const decision = withLabels(job, [{ name: label, parents: ['Vehicle', 'Transportation'] }, { name: 'Person' }]);
      const put = await store.putAutomatedOnce(decision);
      expect(put.written).toBe(true);
      if (put.written) expect(await store.labels.remember(put.record)).toBe(4);
    }
    const other = newJob();
    await store.putAutomatedOnce(withLabels(other, [{ name: 'Cat' }]));
    await store.labels.remember({ ...withLabels(other, [{ name: 'Cat' }]), decidedAt: other.receivedAt });

    const all = await store.labels.find({ label: label.toUpperCase() });
    expect(all.items.map((r) => r.jobId)).toEqual([...jobs].reverse().map((j) => j.jobId));
    expect(all.items[0]).toMatchObject({ kind: 'automated', analysis: { labels: [{ name: label }, { name: 'Person' }] } });
    expect(all.nextCursor).toBeUndefined();
    // By a parent; oldest first; paged with the cursor.
    const first = await store.labels.find({ label: `  ${label.toLowerCase()} `, order: 'oldest', limit: 2 });
    expect(first.items.map((r) => r.jobId)).toEqual([jobs[0]!.jobId, jobs[1]!.jobId]);
    const second = await store.labels.find({ label: `  ${label.toLowerCase()} `, order: 'oldest', limit: 2, cursor: first.nextCursor });
    expect(second.items.map((r) => r.jobId)).toEqual([jobs[2]!.jobId]);
    expect(second.nextCursor).toBeUndefined();
    // A time window on decidedAt (inclusive).
    const window = await store.labels.find({ label, since: new Date(jobs[1]!.receivedAt), until: new Date(jobs[1]!.receivedAt) });
    expect(window.items.map((r) => r.jobId)).toEqual([jobs[1]!.jobId]);
    expect((await store.labels.find({ label: 'Vehicle' })).items.map((r) => r.jobId)).toEqual(expect.arrayContaining(jobs.map((j) => j.jobId)));
    expect((await store.labels.find({ label: 'Vehicle' })).items.map((r) => r.jobId)).not.toContain(other.jobId);
    // Index items are not decisions: the job's history and the audit queries never see them.
    expect(await store.jobHistory(jobs[0]!.jobId)).toHaveLength(1);
    const audit = await store.query({ statuses: ['APPROVED'], since: new Date(jobs[0]!.receivedAt), until: new Date(jobs[2]!.receivedAt) });
    expect(audit.items.every((r) => r.pk.startsWith('JOB#'))).toBe(true);
    // Writing them again (a retry) changes nothing.
    await store.labels.remember({ ...withLabels(jobs[0]!, [{ name: label }]), decidedAt: jobs[0]!.receivedAt });
    expect((await store.labels.find({ label })).items).toHaveLength(3);
  });
});
