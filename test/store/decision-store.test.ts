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
import { DecisionConflictError } from '../../functions/store/errors.ts';
import { automatedRecord, failureRecord, humanRecord } from '../../functions/lib/decision.ts';
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
