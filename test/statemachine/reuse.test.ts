/**
 * Never pay twice for the same bytes (docs/architecture.md): the state machine with the real handlers
 * and mocked clients, as in paths.test.ts. Identical bytes repeat the earlier decision without a
 * Rekognition call (also when uploaded in parts: the ETag differs, the SHA-256 does not); a policy
 * change, a REVIEW and a FAILED are never repeated; a near-duplicate of a REJECTED image is rejected
 * as a repeat; a distinct image is not matched; a human override is what a repeat gets.
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DetectModerationLabelsCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import type { LocalWorkflow } from '../../local/workflow.ts';
import { fakeDecisionTable, fakeQueue, fakeS3, loadHandlers, QUARANTINE, UPLOADS, useWorkflowEnv, workflowOf, type Handlers } from './fakes.ts';
import type { DecisionRecord, Job, ModerationState } from '../../functions/lib/types.ts';
import { humanRecord } from '../../functions/lib/decision.ts';
import { recordIdOf } from '../../functions/store/table-schema.ts';
import { sceneJpeg, transformedCopies } from '../../bench/scenes.ts';

const POLICY = { name: 'test', rules: { Explicit: { reject: 80, review: 50 } } };

useWorkflowEnv({ MODERATION_POLICY: JSON.stringify(POLICY) });

const s3 = fakeS3();
const table = fakeDecisionTable();
fakeQueue();
const rekognition = mockClient(RekognitionClient);

let handlers: Handlers;
let addMetric: ReturnType<typeof vi.spyOn>;

let workflow: LocalWorkflow;

beforeAll(async () => {
  handlers = await loadHandlers();
  workflow = workflowOf(handlers);
  const { metrics } = await import('../../functions/observability.ts');
  addMetric = vi.spyOn(metrics, 'addMetric');
});

afterEach(() => {
  rekognition.reset();
});

let counter = 0;
function upload(body: Buffer, options: { multipartParts?: number } = {}): Job {
  counter += 1;
  const key = `uploads/alice/upload-${counter}.jpg`;
  const stored = s3.put(UPLOADS, key, body);
  if (options.multipartParts) {
    // What S3 gives a multipart upload: the MD5 of the parts' MD5s, with the part count. Not a content hash.
    const size = Math.ceil(body.length / options.multipartParts);
    const parts = Array.from({ length: options.multipartParts }, (_, i) => createHash('md5').update(body.subarray(i * size, (i + 1) * size)).digest());
    stored.eTag = `"${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${options.multipartParts}"`;
  }
  const now = new Date().toISOString();
  return { jobId: `job${String(counter).padStart(37, '0')}`, bucket: UPLOADS, key, eTag: stored.eTag, size: body.length, uploader: 'alice', eventTime: now, receivedAt: now };
}

async function run(job: Job, on: LocalWorkflow = workflow, ends: 'SUCCEEDED' | 'FAILED' = 'SUCCEEDED'): Promise<DecisionRecord> {
  const result = await on.execute({ job } satisfies ModerationState, { id: `arn:aws:states:us-east-1:000000000000:execution:moderation:${job.jobId}`, name: job.jobId });
  expect(result.status, JSON.stringify(result.error ?? result.cause)).toBe(ends);
  return table.forJob(job.jobId).find((r) => r.kind === 'automated' || r.kind === 'failure')!;
}

const explicit = (confidence: number) => ({
  ModerationModelVersion: '7.0',
  ModerationLabels: [
    { Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: confidence },
    { Name: 'Explicit Nudity', ParentName: 'Explicit', TaxonomyLevel: 2, Confidence: confidence },
  ],
});
const calls = () => rekognition.commandCalls(DetectModerationLabelsCommand).length;
const statusTag = (key: string) => s3.get(UPLOADS, key)?.tags.find((tag) => tag.Key === 'moderation-status')?.Value;
const quarantined = (key: string) => s3.get(QUARANTINE, `${UPLOADS}/${key}`) !== undefined;
const reusedMetrics = () => addMetric.mock.calls.filter((args: unknown[]) => args[0] === 'ReusedDecisions').length;

describe('identical bytes', () => {
  it('under a second key: the decision is repeated without a Rekognition call, reusedFrom names the first job', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(97));
    const bytes = await sceneJpeg(1);
    const first = upload(bytes);
    expect(await run(first)).toMatchObject({ status: 'REJECTED', decidedBy: 'rekognition' });
    expect(calls()).toBe(1);
    const metricsBefore = reusedMetrics();

    const second = upload(Buffer.from(bytes));
    const record = await run(second);
    expect(calls()).toBe(1);
    expect(record).toMatchObject({ status: 'REJECTED', decidedBy: 'policy', reusedFrom: first.jobId, labels: expect.arrayContaining([expect.objectContaining({ name: 'Explicit Nudity' })]) });
    expect(record.reason).toMatch(new RegExp(`the same bytes were decided before under this policy version \\(job ${first.jobId}, REJECTED by rekognition`));
    expect(record.estimatedCostUsd).toBe(0);
    // Applied like any decision: the repeat is quarantined too.
    expect(quarantined(second.key)).toBe(true);
    expect(reusedMetrics()).toBe(metricsBefore + 1);
  });

  it('uploaded in parts (a multipart ETag): the same bytes are recognised by their SHA-256', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
    const bytes = await sceneJpeg(2);
    const whole = upload(bytes);
    expect((await run(whole)).status).toBe('APPROVED');
    const parts = upload(Buffer.from(bytes), { multipartParts: 3 });
    expect(parts.eTag).toMatch(/-3"$/);
    expect(parts.eTag).not.toBe(whole.eTag);
    const record = await run(parts);
    expect(calls()).toBe(1);
    expect(record).toMatchObject({ status: 'APPROVED', reusedFrom: whole.jobId });
    expect(statusTag(parts.key)).toBe('APPROVED');
    // And the other way round: bytes first uploaded in parts are repeated for a single PUT.
    const again = upload(Buffer.from(bytes));
    expect(await run(again)).toMatchObject({ status: 'APPROVED', reusedFrom: whole.jobId });
    expect(calls()).toBe(1);
  });

  it('a human override made since is what a repeat gets (the latest decision of the earlier job)', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(97));
    const bytes = await sceneJpeg(3);
    const first = upload(bytes);
    const automated = await run(first);
    expect(automated.status).toBe('REJECTED');
    await table.store.appendHuman(
      humanRecord(automated, { status: 'APPROVED', reviewer: 'dana', reason: 'a medical illustration', decidedAt: new Date(Date.now() + 1000).toISOString(), supersedes: recordIdOf(automated) }),
    );
    const repeat = await run(upload(Buffer.from(bytes)));
    expect(repeat).toMatchObject({ status: 'APPROVED', decidedBy: 'policy', reusedFrom: first.jobId });
    expect(repeat.reason).toContain('APPROVED by human:dana');
    expect(calls()).toBe(1);
  });

  it('a REVIEW is not repeated: the same bytes go to Rekognition again', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(62));
    const bytes = await sceneJpeg(4);
    expect((await run(upload(bytes))).status).toBe('REVIEW');
    const again = await run(upload(Buffer.from(bytes)));
    expect(again.status).toBe('REVIEW');
    expect(again.reusedFrom).toBeUndefined();
    expect(calls()).toBe(2);
  });

  it('a FAILED is not repeated: the same bytes go to Rekognition again', async () => {
    rekognition.on(DetectModerationLabelsCommand).rejectsOnce(Object.assign(new Error('no access'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }));
    const bytes = await sceneJpeg(5);
    expect((await run(upload(bytes), workflow, 'FAILED')).status).toBe('FAILED');
    rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
    const again = await run(upload(Buffer.from(bytes)));
    expect(again).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition' });
    expect(again.reusedFrom).toBeUndefined();
  });

  it('under another policy version the bytes are judged again', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(70));
    const bytes = await sceneJpeg(6);
    const first = await run(upload(bytes));
    expect(first.status).toBe('REVIEW');
    expect(calls()).toBe(1);
    // The same bytes decided APPROVED... under this policy:
    rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
    const approved = upload(await sceneJpeg(7));
    expect((await run(approved)).status).toBe('APPROVED');
    expect(calls()).toBe(2);

    // A new container with another policy (Explicit rejected from 60): new module instances, the same table and bucket.
    vi.resetModules();
    process.env.MODERATION_POLICY = JSON.stringify({ name: 'stricter', rules: { Explicit: { reject: 60, review: 40 } } });
    try {
      (await import('../../functions/stores.ts')).useStores({ decisions: table.store });
      const stricter = workflowOf(await loadHandlers());
      const judged = await run(upload(await sceneJpeg(7)), stricter);
      expect(calls()).toBe(3);
      expect(judged).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition' });
      expect(judged.reusedFrom).toBeUndefined();
      expect(judged.policyVersion).not.toBe(first.policyVersion);
    } finally {
      process.env.MODERATION_POLICY = JSON.stringify(POLICY);
    }
  });
});

describe('known bad: near-duplicates of a rejected image', () => {
  it.each(['resized', 'jpeg60', 'crop3'] as const)('a %s copy of a REJECTED image is rejected without Rekognition, as a repeat', async (kind) => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(97));
    const original = await sceneJpeg(20 + kind.length);
    const rejected = upload(original);
    expect((await run(rejected)).status).toBe('REJECTED');
    const before = calls();

    const copy = upload((await transformedCopies(original))[kind]);
    const record = await run(copy);
    expect(calls()).toBe(before);
    expect(record).toMatchObject({ status: 'REJECTED', decidedBy: 'policy', reusedFrom: rejected.jobId });
    expect(record.reason).toMatch(/^near-duplicate of a rejected image \(distance \d+\)/);
    expect(quarantined(copy.key)).toBe(true);
  });

  it('a distinct image is not matched: Rekognition judges it', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(97));
    expect((await run(upload(await sceneJpeg(30)))).status).toBe('REJECTED');
    rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
    const before = calls();
    const distinct = await run(upload(await sceneJpeg(31)));
    expect(calls()).toBe(before + 1);
    expect(distinct).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition' });
    expect(distinct.reusedFrom).toBeUndefined();
  });

  it('once a human overturns the rejection, its near-duplicates are judged again', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(97));
    const original = await sceneJpeg(40);
    const automated = await run(upload(original));
    await table.store.appendHuman(
      humanRecord(automated, { status: 'APPROVED', reviewer: 'dana', reason: 'not explicit', decidedAt: new Date(Date.now() + 1000).toISOString(), supersedes: recordIdOf(automated) }),
    );
    rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
    const before = calls();
    const copy = await run(upload((await transformedCopies(original)).jpeg60));
    expect(calls()).toBe(before + 1);
    expect(copy).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition' });
  });

  it('flat images have no perceptual hash and are never matched', async () => {
    const sharp = (await import('sharp')).default;
    const flat = (b: number) => sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 200, g: 40, b } } }).jpeg().toBuffer();
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(97));
    const rejected = await run(upload(await flat(10)));
    expect(rejected.status).toBe('REJECTED');
    rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
    const other = await run(upload(await flat(12)));
    expect(other).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition' });
  });
});
