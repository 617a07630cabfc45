/**
 * `moderation audit` against the local stack: 1,400 decisions written with the pipeline's own record
 * builders, spread over six days and every write shard, come back complete and in time order for a
 * status + window query (merged across the shards, page by page through the cursor), and by image,
 * uploader and category; exports hold the same rows. Query only.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchWriteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { automatedRecord, failureRecord, humanRecord } from '../../functions/lib/decision.ts';
import { decisionItem, recordIdOf } from '../../functions/store/table-schema.ts';
import { jobIdFor } from '../../functions/lib/job-id.ts';
import type { DecisionRecord, DecisionStatus, ModerationState } from '../../functions/lib/types.ts';
import { iterateDecisions, planQuery, queryDecisions, resolveCategories, type AuditQuery } from '../../cli/audit.ts';
import { auditQueryFromFlags, exportDecisions } from '../../cli/commands/audit.ts';
import { startTestStack, type TestStack } from './helpers.ts';

const run = promisify(execFile);
const DAY = 86_400_000;
const START = Date.parse('2026-11-01T00:00:00.000Z');
const COUNT = 1_400;
const BUCKET = 'moderation-uploads';

/** Category rotation for rejected images: [label, parent, top-level]. */
const REJECT_LABELS = [
  ['Explicit Nudity', 'Explicit', 'Explicit'],
  ['Graphic Violence', 'Violence', 'Violence'],
  ['Hate Symbols', '', 'Hate Symbols'],
] as const;

function seed(): DecisionRecord[] {
  const records: DecisionRecord[] = [];
  let previousAt = '';
  for (let i = 0; i < COUNT; i++) {
    // Spread over six days; every 50th record shares its instant with the one before (ties across shards).
    const decidedAt = i % 50 === 49 ? previousAt : new Date(START + Math.floor((i * 6 * DAY) / COUNT) + (i % 7) * 13).toISOString();
    previousAt = decidedAt;
    const uploader = `user${i % 9}`;
    const key = `uploads/${uploader}/photo-${String(i).padStart(4, '0')}.png`;
    const eTag = `etag${i}`;
    const sequencer = (0x1000 + i).toString(16);
    const job = { jobId: jobIdFor({ bucket: BUCKET, key, eTag, sequencer }), bucket: BUCKET, key, eTag, sequencer, uploader, eventTime: decidedAt, receivedAt: decidedAt };
    const kind = i % 5;
    if (kind === 4) {
      records.push(decisionItem(failureRecord({ job, error: { Error: 'ServiceUnavailable', Cause: 'Rekognition is unavailable' } }, { failedAt: decidedAt }), { shards: 8 }));
      continue;
    }
    const [label, parent] = REJECT_LABELS[i % 3]!;
    const state: ModerationState = {
      job,
      settings: { contextualReview: 'disabled', executionId: `arn:aws:states:us-east-1:000000000000:express:moderation:${job.jobId}` },
      detection: {
        verdict: kind <= 1 ? 'REJECT' : kind === 2 ? 'APPROVE' : 'BORDERLINE',
        labels: kind === 2 ? [] : [{ name: label, parentName: parent, level: parent ? 2 : 1, confidence: kind <= 1 ? 95 : 66 }],
        rule: kind === 2 ? undefined : { category: parent || label, label, confidence: kind <= 1 ? 95 : 66, action: kind <= 1 ? 'reject' : 'review', threshold: kind <= 1 ? 80 : 50 },
        flagged: [],
        policyVersion: 'standard@seed',
        modelVersion: '7.0',
        source: 's3-object',
        durationMs: 300,
      },
    };
    records.push(decisionItem(automatedRecord(state, { decidedAt }), { shards: 8 }));
  }
  return records;
}

/** Newest first, ties in any order: compare the instants and the sets. */
function expectSameOrdered(actual: DecisionRecord[], expected: DecisionRecord[], order: 'newest' | 'oldest' = 'newest'): void {
  const sorted = [...expected].sort((a, b) => (order === 'newest' ? b.decidedAt.localeCompare(a.decidedAt) : a.decidedAt.localeCompare(b.decidedAt)));
  expect(actual.map((r) => r.decidedAt)).toEqual(sorted.map((r) => r.decidedAt));
  expect(new Set(actual.map((r) => `${r.pk}|${r.sk}`))).toEqual(new Set(expected.map((r) => `${r.pk}|${r.sk}`)));
  expect(actual.length).toBe(expected.length);
}

describe('moderation audit (local stack, 1,400 decisions over six days)', () => {
  let t: TestStack;
  let records: DecisionRecord[];
  let seedMs = 0;

  beforeAll(async () => {
    t = await startTestStack();
    records = seed();
    const started = Date.now();
    const chunks: DecisionRecord[][] = [];
    for (let i = 0; i < records.length; i += 25) chunks.push(records.slice(i, i + 25));
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < chunks.length) {
          const chunk = chunks[next++]!;
          let request: Record<string, unknown[]> | undefined = { [t.target.names.decisionTable]: chunk.map((Item) => ({ PutRequest: { Item } })) };
          while (request && Object.keys(request).length) {
            const out = await t.target.dynamodb.send(new BatchWriteCommand({ RequestItems: request as never }));
            request = out.UnprocessedItems as typeof request;
          }
        }
      }),
    );
    seedMs = Date.now() - started;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('seeds every status over all 8 write shards (fast enough to seed per run)', () => {
    for (const status of ['REJECTED', 'APPROVED', 'REVIEW', 'FAILED'] as DecisionStatus[]) {
      const shards = new Set(records.filter((r) => r.status === status).map((r) => r.statusShard));
      expect(shards.size).toBe(8);
    }
    expect(records.length).toBeGreaterThanOrEqual(1_000);
    expect(seedMs).toBeLessThan(20_000);
  });

  it('returns every REJECTED decision of a window, complete and newest first, merged over the shards', async () => {
    const since = new Date(START + 1.5 * DAY);
    const until = new Date(START + 4 * DAY + 0.25 * DAY);
    const expected = records.filter((r) => r.status === 'REJECTED' && r.decidedAt >= since.toISOString() && r.decidedAt <= until.toISOString());
    expect(expected.length).toBeGreaterThan(200);
    const page = await queryDecisions(t.target, { statuses: ['REJECTED'], since, until });
    expect(page.plan).toMatchObject({ index: 'byStatus', partitions: Array.from({ length: 8 }, (_, i) => `REJECTED#${i}`) });
    expect(page.nextCursor).toBeUndefined();
    expectSameOrdered(page.items, expected);
  });

  it('pages through the same window with a cursor: no row lost, none repeated, order kept across pages', async () => {
    const query: AuditQuery = { statuses: ['REJECTED'], since: new Date(START + 1.5 * DAY), until: new Date(START + 4.25 * DAY) };
    const expected = (await queryDecisions(t.target, query)).items;
    const seen: DecisionRecord[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await queryDecisions(t.target, { ...query, limit: 97, cursor });
      expect(page.items.length).toBeLessThanOrEqual(97);
      seen.push(...page.items);
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(Math.ceil(expected.length / 97));
    expectSameOrdered(seen, expected);
  });

  it('oldest first, several statuses at once, and everything in a window when no status is given', async () => {
    const since = new Date(START + 2 * DAY);
    const until = new Date(START + 3 * DAY - 1);
    const inWindow = records.filter((r) => r.decidedAt >= since.toISOString() && r.decidedAt <= until.toISOString());
    const oldest = await queryDecisions(t.target, { statuses: ['REVIEW', 'FAILED'], since, until, order: 'oldest' });
    expectSameOrdered(oldest.items, inWindow.filter((r) => r.status === 'REVIEW' || r.status === 'FAILED'), 'oldest');
    expect(oldest.plan.partitions).toHaveLength(16);
    const everything = await queryDecisions(t.target, { since, until });
    expect(everything.plan.partitions).toHaveLength(40);
    expectSameOrdered(everything.items, inWindow);
  });

  it('by uploader (narrowed by status) and by category', async () => {
    const byUploader = await queryDecisions(t.target, { uploader: 'user3', statuses: ['REJECTED'] });
    expect(byUploader.plan).toMatchObject({ index: 'byUploader', filters: ['status'] });
    expectSameOrdered(byUploader.items, records.filter((r) => r.uploader === 'user3' && r.status === 'REJECTED'));

    // byUploader is sparse (no APPROVED record in it): an uploader's approvals come from byStatus's
    // APPROVED shards filtered by uploader, merged by time with the rest of their history.
    const everythingOfUser3 = await queryDecisions(t.target, { uploader: 'user3' });
    expect(everythingOfUser3.plan).toMatchObject({ index: 'byUploader', indexes: ['byUploader', 'byStatus'], filters: ['uploader'] });
    expect(everythingOfUser3.plan.partitions).toHaveLength(1 + 8);
    const ofUser3 = records.filter((r) => r.uploader === 'user3');
    expect(ofUser3.some((r) => r.status === 'APPROVED') && ofUser3.some((r) => r.status !== 'APPROVED')).toBe(true);
    expectSameOrdered(everythingOfUser3.items, ofUser3);
    const approvedOfUser3 = await queryDecisions(t.target, { uploader: 'user3', statuses: ['APPROVED'] });
    expect(approvedOfUser3.plan).toMatchObject({ index: 'byStatus', indexes: ['byStatus'], filters: ['uploader'] });
    expectSameOrdered(approvedOfUser3.items, ofUser3.filter((r) => r.status === 'APPROVED'));

    const violence = resolveCategories('graphic violence');
    expect(violence).toEqual(['Violence']);
    const byCategory = await queryDecisions(t.target, { categories: violence, since: new Date(START + 5 * DAY) });
    expectSameOrdered(byCategory.items, records.filter((r) => r.category === 'Violence' && r.decidedAt >= new Date(START + 5 * DAY).toISOString()));
    // A model 6.1 name that model 7 split over several top-level categories fans out over each.
    expect(resolveCategories('Suggestive').length).toBeGreaterThan(1);
  });

  it("by image: the whole history newest first, a human decision beside the automated one", async () => {
    const automated = records.find((r) => r.status === 'REVIEW')!;
    const human = decisionItem(humanRecord(automated, { status: 'APPROVED', reviewer: 'dana', reason: 'a painting', decidedAt: new Date(Date.parse(automated.decidedAt) + 60_000).toISOString(), supersedes: recordIdOf(automated) }), { shards: 8, revision: 1 });
    await t.target.dynamodb.send(new PutCommand({ TableName: t.target.names.decisionTable, Item: human }));
    const query = auditQueryFromFlags({ key: automated.key }, t.target.names.uploadsBucket);
    expect(query.image).toEqual({ bucket: BUCKET, key: automated.key });
    const page = await queryDecisions(t.target, query);
    expect(page.items.map((r) => [r.status, r.decidedBy])).toEqual([
      ['APPROVED', 'human:dana'],
      ['REVIEW', 'policy'],
    ]);
    expect(page.plan.index).toBe('byImage');
  });

  it('refuses a cursor from another query, a reversed window, an unknown status or category', async () => {
    const first = await queryDecisions(t.target, { statuses: ['APPROVED'], limit: 3 });
    expect(first.nextCursor).toBeDefined();
    await expect(queryDecisions(t.target, { statuses: ['REJECTED'], limit: 3, cursor: first.nextCursor })).rejects.toThrow(/another query/);
    await expect(queryDecisions(t.target, { statuses: ['APPROVED'], cursor: 'not-a-cursor' })).rejects.toMatchObject({ name: 'InvalidCursor', userFacing: true });
    expect(() => auditQueryFromFlags({ since: '2026-11-05', until: '2026-11-01' }, BUCKET)).toThrow(/after --until/);
    expect(() => auditQueryFromFlags({ status: 'REJECTED,DENIED' }, BUCKET)).toThrow(/unknown status "DENIED"/);
    expect(() => auditQueryFromFlags({ since: '2026-02-30' }, BUCKET)).toThrow(/not a valid date/);
    expect(() => auditQueryFromFlags({ category: 'Kittens' }, BUCKET)).toThrow(/unknown moderation category/);
  });

  it('a date alone as --until is the end of that day', () => {
    const query = auditQueryFromFlags({ since: '2026-11-02', until: '2026-11-03' }, BUCKET);
    expect(query.since?.toISOString()).toBe('2026-11-02T00:00:00.000Z');
    expect(query.until?.toISOString()).toBe('2026-11-03T23:59:59.999Z');
  });

  it('exports the same rows as CSV and JSON', async () => {
    const query: AuditQuery = { statuses: ['FAILED'], since: new Date(START), until: new Date(START + 2 * DAY) };
    const expected = records.filter((r) => r.status === 'FAILED' && r.decidedAt <= new Date(START + 2 * DAY).toISOString());
    const csvFile = join(t.home, 'failed.csv');
    const csv = await exportDecisions(t.target, query, csvFile, 'csv');
    expect(csv.count).toBe(expected.length);
    const lines = readFileSync(csvFile, 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(/^decidedAt,status,bucket,key,/);
    expect(lines).toHaveLength(expected.length + 1);
    expect(lines.slice(1).every((line) => line.includes(',FAILED,'))).toBe(true);

    const jsonFile = join(t.home, 'failed.json');
    await exportDecisions(t.target, query, jsonFile, 'json');
    const parsed = JSON.parse(readFileSync(jsonFile, 'utf8')) as DecisionRecord[];
    expectSameOrdered(parsed, expected);

    // A limited export stops there and says where to continue.
    const limited = await exportDecisions(t.target, query, join(t.home, 'first.jsonl'), 'jsonl', 10);
    expect(limited.count).toBe(10);
    expect(limited.nextCursor).toBeDefined();
    const rest: DecisionRecord[] = [];
    for await (const record of iterateDecisions(t.target, { ...query, cursor: limited.nextCursor })) rest.push(record);
    expect(rest).toHaveLength(expected.length - 10);
  });

  it('the command prints CSV to stdout and the cursor to stderr (bin/moderation.js, via serve.json)', async () => {
    const { stdout, stderr } = await run(
      process.execPath,
      ['bin/moderation.js', 'audit', '--status', 'rejected', '--since', '2026-11-02', '--until', '2026-11-03', '--format', 'csv', '--limit', '5', '--home', t.home],
      { cwd: join(import.meta.dirname, '../..'), env: { ...process.env, MODERATION_STACK: '' } },
    );
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(6);
    expect(lines.slice(1).every((line) => line.split(',')[1] === 'REJECTED')).toBe(true);
    const dates = lines.slice(1).map((line) => line.split(',')[0]!);
    expect(dates).toEqual([...dates].sort().reverse());
    expect(dates[0]! <= '2026-11-03T23:59:59.999Z').toBe(true);
    expect(stderr).toMatch(/--cursor \S+/);
  });

  it('plans a Query on one index for each access pattern (never a Scan)', () => {
    expect(planQuery({ image: { bucket: 'b', key: 'k' }, statuses: ['REJECTED'] }, 8).plan).toMatchObject({ index: 'byImage', filters: ['status'] });
    // An uploader's decisions in a category: the category's partition (it holds every status), filtered.
    expect(planQuery({ categories: ['Violence'], uploader: 'u' }, 8).plan).toMatchObject({ index: 'byCategory', filters: ['uploader'] });
    expect(planQuery({ uploader: 'u', statuses: ['REJECTED', 'FAILED'] }, 8).plan).toMatchObject({ indexes: ['byUploader'], partitions: ['u'], filters: ['status'] });
    expect(planQuery({}, 4).plan.partitions).toHaveLength(20);
  });
});
