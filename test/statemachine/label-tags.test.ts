/**
 * Label tags on the object (the policy's `objectTags`, functions/lib/tags.ts): the state machine with
 * the real handlers and mocked clients, as in analysis.test.ts. The apply step writes the most
 * confident DetectLabels labels as `moderation-label:<Name>` tags beside the status, within S3's ten
 * and after the uploader's own tags; a rejected image's quarantine copy carries them; identical bytes
 * that repeat a decision get the same tags without a DetectLabels call.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DetectLabelsCommand, DetectModerationLabelsCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import { S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import type { LocalWorkflow } from '../../local/workflow.ts';
import { fakeDecisionTable, fakeQueue, fakeS3, loadHandlers, QUARANTINE, UPLOADS, useWorkflowEnv, workflowOf } from './fakes.ts';
import { quarantineKeyFor } from '../../functions/lib/quarantine.ts';
import { applyDecision } from '../../functions/lib/apply-decision.ts';
import { humanRecord } from '../../functions/lib/decision.ts';
import { recordIdOf } from '../../functions/store/table-schema.ts';
import { S3ObjectStore } from '../../functions/store/object-store.ts';
import type { DecisionRecord, Job, ModerationState } from '../../functions/lib/types.ts';

const POLICY = {
  name: 'tagged',
  rules: { Explicit: { reject: 80, review: 50 } },
  objectTags: { labels: 3, minConfidence: 75 },
};

useWorkflowEnv({ MODERATION_POLICY: JSON.stringify(POLICY) });

const s3 = fakeS3();
const table = fakeDecisionTable();
fakeQueue();
const rekognition = mockClient(RekognitionClient);

let workflow: LocalWorkflow;

beforeAll(async () => {
  workflow = workflowOf(await loadHandlers());
});

afterEach(() => {
  rekognition.reset();
});

let counter = 0;
async function imageBytes(seed: number): Promise<Buffer> {
  return sharp({ create: { width: 120, height: 90, channels: 3, background: { r: (seed * 53) % 256, g: (seed * 97) % 256, b: (seed * 31) % 256 } } })
    .jpeg()
    .toBuffer();
}

async function upload(bytes?: Buffer, tags: { Key: string; Value: string }[] = []): Promise<Job> {
  counter += 1;
  const key = `uploads/alice/tagged-${counter}.jpg`;
  const body = bytes ?? (await imageBytes(counter));
  const stored = s3.put(UPLOADS, key, body);
  stored.tags = tags;
  const now = new Date().toISOString();
  return { jobId: `tag${String(counter).padStart(37, '0')}`, bucket: UPLOADS, key, eTag: stored.eTag, size: body.length, uploader: 'alice', eventTime: now, receivedAt: now };
}

let executions = 0;
async function run(job: Job): Promise<{ record: DecisionRecord; state: ModerationState }> {
  executions += 1;
  const name = `${job.jobId}-${executions}`;
  const result = await workflow.execute({ job } satisfies ModerationState, { id: `arn:aws:states:us-east-1:000000000000:execution:moderation:${name}`, name });
  expect(result.status, JSON.stringify(result.error ?? result.cause)).toBe('SUCCEEDED');
  return { record: table.forJob(job.jobId).find((r) => r.kind === 'automated')!, state: result.output as ModerationState };
}

const labels = (...found: [string, number][]) => ({
  LabelModelVersion: '3.0',
  Labels: found.map(([Name, Confidence]) => ({ Name, Confidence, Parents: [], Categories: [], Instances: [], Aliases: [] })),
});

function answer(found: [string, number][], moderation: { Name: string; ParentName: string; TaxonomyLevel: number; Confidence: number }[] = []) {
  rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: moderation });
  rekognition.on(DetectLabelsCommand).resolves(labels(...found));
}

const labelTagsOf = (tags: { Key: string; Value: string }[]) => tags.filter((tag) => tag.Key.startsWith('moderation-label:'));

describe('label tags (objectTags.labels)', () => {
  it('writes the most confident labels at the policy confidence as moderation-label:<Name> tags, after the uploader’s own', async () => {
    // Out of order, one below the confidence, one whose name S3 would refuse as it is.
    answer([
      ['Road', 88.2],
      ['Tree', 70.1],
      ['Car', 97.6],
      ["Jack-o'-Lantern", 81],
      ['Person', 79.5],
    ]);
    const job = await upload(undefined, [{ Key: 'team', Value: 'blue' }]);
    const { record, state } = await run(job);
    expect(record.status).toBe('APPROVED');
    // The policy asks for labels only for the tags: DetectLabels runs on the same image.
    expect(rekognition.commandCalls(DetectLabelsCommand)).toHaveLength(1);
    const tags = s3.get(UPLOADS, job.key)!.tags;
    expect(tags.slice(0, 3)).toEqual([
      { Key: 'team', Value: 'blue' },
      { Key: 'moderation-status', Value: 'APPROVED' },
      { Key: 'moderation-job', Value: job.jobId },
    ]);
    expect(labelTagsOf(tags)).toEqual([
      { Key: 'moderation-label:Car', Value: '98' },
      { Key: 'moderation-label:Road', Value: '88' },
      { Key: 'moderation-label:Jack-o-Lantern', Value: '81' },
    ]);
    expect(state.applied?.detail).toContain('3 label tags (Car, Road, Jack-o-Lantern)');
    // What the image shows is in the record's analysis already; the tags are not recorded twice.
    expect(record.analysis?.labels?.map((label) => label.name)).toContain('Tree');
    expect(record).not.toHaveProperty('objectTags');
  });

  it('never takes the room of the status tag or the uploader’s tags: on a crowded object the labels are left out, and the step says so', async () => {
    answer([
      ['Car', 97],
      ['Road', 90],
    ]);
    const own = Array.from({ length: 7 }, (_, i) => ({ Key: `own-${i}`, Value: String(i) }));
    const job = await upload(undefined, own);
    const { state } = await run(job);
    const tags = s3.get(UPLOADS, job.key)!.tags;
    expect(tags).toHaveLength(10);
    expect(tags.slice(0, 7)).toEqual(own);
    expect(tags).toContainEqual({ Key: 'moderation-status', Value: 'APPROVED' });
    // Seven of the uploader's, status and job: room for one label, the most confident.
    expect(labelTagsOf(tags)).toEqual([{ Key: 'moderation-label:Car', Value: '97' }]);
    expect(state.applied?.detail).toContain('left out moderation-label:Road');
  });

  it('writes no label tag when nothing reaches the confidence', async () => {
    answer([['Tree', 60]]);
    const job = await upload();
    await run(job);
    const tags = s3.get(UPLOADS, job.key)!.tags;
    expect(tags.map((tag) => tag.Key)).toEqual(['moderation-status', 'moderation-job']);
  });

  it('tags the quarantine copy of a rejected image with its labels', async () => {
    answer([['Poster', 92]], [{ Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: 95 }]);
    const job = await upload();
    const { record } = await run(job);
    expect(record.status).toBe('REJECTED');
    expect(s3.get(UPLOADS, job.key)).toBeUndefined();
    const copy = s3.get(QUARANTINE, quarantineKeyFor(UPLOADS, job.key))!;
    expect(copy.tags).toContainEqual({ Key: 'moderation-status', Value: 'REJECTED' });
    expect(labelTagsOf(copy.tags)).toEqual([{ Key: 'moderation-label:Poster', Value: '92' }]);
  });

  it('gives identical bytes that repeat a decision the same label tags, without a DetectLabels call', async () => {
    answer([
      ['Bicycle', 93.4],
      ['Wheel', 85],
    ]);
    const bytes = await imageBytes(1000);
    const first = await upload(bytes);
    await run(first);
    rekognition.reset();
    answer([['Something else', 99]]);
    const repeat = await upload(bytes);
    const { record } = await run(repeat);
    expect(record.reusedFrom).toBe(first.jobId);
    expect(rekognition.commandCalls(DetectLabelsCommand)).toHaveLength(0);
    expect(rekognition.commandCalls(DetectModerationLabelsCommand)).toHaveLength(0);
    expect(labelTagsOf(s3.get(UPLOADS, repeat.key)!.tags)).toEqual([
      { Key: 'moderation-label:Bicycle', Value: '93' },
      { Key: 'moderation-label:Wheel', Value: '85' },
    ]);
  });

  it('a person’s decision keeps the label tags: on the object, and on the quarantine copy of a REJECT', async () => {
    answer([['Poster', 91]]);
    const job = await upload();
    await run(job);
    const objects = new S3ObjectStore(new S3Client({ region: 'us-east-1' }));
    await applyDecision(objects, job, 'REVIEW', QUARANTINE);
    expect(labelTagsOf(s3.get(UPLOADS, job.key)!.tags)).toEqual([{ Key: 'moderation-label:Poster', Value: '91' }]);
    expect(s3.get(UPLOADS, job.key)!.tags).toContainEqual({ Key: 'moderation-status', Value: 'REVIEW' });
    await applyDecision(objects, job, 'REJECTED', QUARANTINE);
    const copy = s3.get(QUARANTINE, quarantineKeyFor(UPLOADS, job.key))!;
    expect(labelTagsOf(copy.tags)).toEqual([{ Key: 'moderation-label:Poster', Value: '91' }]);
  });

  it('no labels to make them from (DetectLabels failed): the object keeps the label tags it has', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
    rekognition.on(DetectLabelsCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }));
    const job = await upload(undefined, [{ Key: 'moderation-label:Kept', Value: '88' }]);
    const { record } = await run(job);
    expect(record.analysis?.missing).toEqual(['labels']);
    expect(labelTagsOf(s3.get(UPLOADS, job.key)!.tags)).toEqual([{ Key: 'moderation-label:Kept', Value: '88' }]);
  });

  it('a repeat of bytes a person decided since still gets the labels of the automated decision', async () => {
    answer([['Bicycle', 93]]);
    const bytes = await imageBytes(2000);
    const first = await upload(bytes);
    const { record: automated } = await run(first);
    await table.store.appendHuman(
      humanRecord(automated, { status: 'APPROVED', reviewer: 'dana', reason: 'fine', decidedAt: new Date(Date.now() + 1000).toISOString(), supersedes: recordIdOf(automated) }),
    );
    rekognition.reset();
    answer([['Something else', 99]]);
    const repeat = await upload(bytes);
    const { record } = await run(repeat);
    expect(record.reusedFrom).toBe(first.jobId);
    expect(labelTagsOf(s3.get(UPLOADS, repeat.key)!.tags)).toEqual([{ Key: 'moderation-label:Bicycle', Value: '93' }]);
  });

  it('a replay of a job decided before (its Apply had failed) writes the label tags too', async () => {
    answer([['Kite', 87]]);
    const job = await upload();
    await run(job);
    // As if Apply had never succeeded: the object carries nothing of the decision.
    s3.get(UPLOADS, job.key)!.tags = [];
    rekognition.reset();
    const { state } = await run(job);
    expect(state.decision).toMatchObject({ duplicate: true });
    expect(rekognition.commandCalls(DetectLabelsCommand)).toHaveLength(0);
    const tags = s3.get(UPLOADS, job.key)!.tags;
    expect(tags).toContainEqual({ Key: 'moderation-status', Value: 'APPROVED' });
    expect(labelTagsOf(tags)).toEqual([{ Key: 'moderation-label:Kite', Value: '87' }]);
  });
});
