/**
 * Labels, text and faces in the workflow (docs/architecture.md, "Labels, text and faces"): the state
 * machine with the real handlers and mocked clients, as in paths.test.ts. DetectLabels and DetectText
 * run beside moderation when the policy has rules for them; DetectFaces only for the child-safety rule
 * and only on an image with nudity or swimwear; a failed analysis is recorded as missing and the
 * moderation decision is still made; "possible minor" is REJECTED, never sent to the LLM.
 * Rekognition's answers are the shapes AWS documents.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DetectFacesCommand, DetectLabelsCommand, DetectModerationLabelsCommand, DetectTextCommand, RekognitionClient, type DetectTextCommandOutput, type FaceDetail } from '@aws-sdk/client-rekognition';
import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import sharp from 'sharp';
import type { LocalWorkflow } from '../../local/workflow.ts';
import { fakeDecisionTable, fakeQueue, fakeS3, loadHandlers, QUARANTINE, UPLOADS, useWorkflowEnv, workflowOf } from './fakes.ts';
import type { DecisionRecord, Job, ModerationState } from '../../functions/lib/types.ts';

const POLICY = {
  name: 'analysed',
  rules: { Explicit: { reject: 80, review: 50 }, 'Swimwear or Underwear': 'allow' },
  labels: { Weapon: { review: 80, reject: 95 } },
  text: { words: { reject: ['casino'] }, presets: { urls: 'review' } },
  faces: { childSafety: { confidence: 50 } },
};

useWorkflowEnv({ REVIEW_MODEL_ID: 'amazon.nova-lite-v1:0', MODERATION_POLICY: JSON.stringify(POLICY) });

const s3 = fakeS3();
const table = fakeDecisionTable();
fakeQueue();
const rekognition = mockClient(RekognitionClient);
const bedrock = mockClient(BedrockRuntimeClient);

let workflow: LocalWorkflow;

beforeAll(async () => {
  // Contextual review on: what must never reach the LLM is checked against a model that would approve anything.
  workflow = workflowOf(await loadHandlers(), 'enabled');
});

afterEach(() => {
  rekognition.reset();
  bedrock.reset();
});

let counter = 0;
async function upload(): Promise<Job> {
  counter += 1;
  const key = `uploads/alice/analysed-${counter}.jpg`;
  const image = await sharp({ create: { width: 200, height: 150, channels: 3, background: { r: 10 + counter * 9, g: 90, b: (counter * 37) % 256 } } }).jpeg().toBuffer();
  const stored = s3.put(UPLOADS, key, image);
  const now = new Date().toISOString();
  return { jobId: `jan${String(counter).padStart(37, '0')}`, bucket: UPLOADS, key, eTag: stored.eTag, size: image.length, uploader: 'alice', eventTime: now, receivedAt: now };
}

async function run(job: Job): Promise<DecisionRecord> {
  const result = await workflow.execute({ job } satisfies ModerationState, { id: `arn:aws:states:us-east-1:000000000000:execution:moderation:${job.jobId}`, name: job.jobId });
  expect(result.status, JSON.stringify(result.error ?? result.cause)).toBe('SUCCEEDED');
  return table.forJob(job.jobId).find((r) => r.kind === 'automated')!;
}

const moderation = (labels: { Name: string; ParentName: string; TaxonomyLevel: number; Confidence: number }[] = []) => ({ ModerationModelVersion: '7.0', ModerationLabels: labels });
const swimwear = (confidence: number) =>
  moderation([
    { Name: 'Swimwear or Underwear', ParentName: '', TaxonomyLevel: 1, Confidence: confidence },
    { Name: 'Female Swimwear or Underwear', ParentName: 'Swimwear or Underwear', TaxonomyLevel: 2, Confidence: confidence },
  ]);
const labels = (...found: { Name: string; Confidence: number; Parents?: string[] }[]) => ({
  LabelModelVersion: '3.0',
  Labels: found.map((label) => ({
    Name: label.Name,
    Confidence: label.Confidence,
    Parents: (label.Parents ?? []).map((Name) => ({ Name })),
    Categories: [{ Name: 'Person Description' }],
    Instances: [{ BoundingBox: { Width: 0.5, Height: 0.6, Left: 0.1, Top: 0.2 }, Confidence: label.Confidence }],
    Aliases: [],
  })),
});
const text = (...lines: string[]): Omit<DetectTextCommandOutput, '$metadata'> => ({
  TextModelVersion: '3.0',
  TextDetections: lines.flatMap((line, id) => [
    { DetectedText: line, Type: 'LINE', Id: id, Confidence: 98.5, Geometry: {} },
    ...line.split(' ').map((word, i) => ({ DetectedText: word, Type: 'WORD' as const, Id: 100 + id * 10 + i, ParentId: id, Confidence: 98 })),
  ]),
});
const face = (low: number, high: number): FaceDetail => ({
  BoundingBox: { Width: 0.2, Height: 0.3, Left: 0.4, Top: 0.1 },
  AgeRange: { Low: low, High: high },
  Smile: { Value: true, Confidence: 95 },
  EyesOpen: { Value: true, Confidence: 97 },
  Sunglasses: { Value: false, Confidence: 99 },
  Gender: { Value: 'Female', Confidence: 99 },
  Emotions: [
    { Type: 'HAPPY', Confidence: 96.2 },
    { Type: 'CALM', Confidence: 2.1 },
    { Type: 'SAD', Confidence: 0.5 },
  ],
  Landmarks: [{ Type: 'eyeLeft', X: 0.45, Y: 0.2 }],
  Pose: { Roll: 1.5, Yaw: -3.2, Pitch: 4.4 },
  Quality: { Brightness: 80.1, Sharpness: 92.3 },
  Confidence: 99.9,
});
const calls = (command: typeof DetectFacesCommand | typeof DetectLabelsCommand | typeof DetectTextCommand | typeof DetectModerationLabelsCommand) => rekognition.commandCalls(command as never).length;

/** A scripted Rekognition: moderation, labels and text as given; faces as given (or no face). */
function answer(options: { moderation?: ReturnType<typeof moderation>; labels?: ReturnType<typeof labels>; text?: ReturnType<typeof text>; faces?: FaceDetail[] }) {
  rekognition.on(DetectModerationLabelsCommand).resolves(options.moderation ?? moderation());
  rekognition.on(DetectLabelsCommand).resolves(options.labels ?? labels());
  rekognition.on(DetectTextCommand).resolves(options.text ?? text());
  rekognition.on(DetectFacesCommand).resolves({ FaceDetails: options.faces ?? [] });
  bedrock.on(ConverseCommand).resolves({
    $metadata: {},
    stopReason: 'tool_use',
    output: { message: { role: 'assistant', content: [{ toolUse: { toolUseId: 't', name: 'record_moderation_decision', input: { decision: 'APPROVE', reason: 'fine', categories: [] } as never } }] } },
    usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15 },
    metrics: { latencyMs: 1 },
  });
}

describe('analysis in the workflow', () => {
  it('runs DetectLabels and DetectText beside moderation (same image), records them bounded, and indexes the labels', async () => {
    answer({ labels: labels({ Name: 'Person', Confidence: 99.2 }, { Name: 'Bicycle', Confidence: 91.04, Parents: ['Vehicle', 'Transportation'] }), text: text('Hello world') });
    const job = await upload();
    const record = await run(job);
    expect(record).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition' });
    expect(calls(DetectLabelsCommand)).toBe(1);
    expect(calls(DetectTextCommand)).toBe(1);
    // No nudity or swimwear: the child-safety rule does not look for faces.
    expect(calls(DetectFacesCommand)).toBe(0);
    const image = { S3Object: { Bucket: UPLOADS, Name: job.key, Version: undefined } };
    expect(rekognition.commandCalls(DetectLabelsCommand)[0]!.args[0].input.Image).toEqual(image);
    expect(rekognition.commandCalls(DetectTextCommand)[0]!.args[0].input.Image).toEqual(image);
    expect(record.analysis).toMatchObject({
      labels: [
        { name: 'Person', confidence: 99.2, categories: ['Person Description'], instances: 1 },
        { name: 'Bicycle', confidence: 91, parents: ['Vehicle', 'Transportation'] },
      ],
      labelCount: 2,
      labelModelVersion: '3.0',
      text: { lines: [{ text: 'Hello world', confidence: 98.5 }], total: 1 },
    });
    expect(record.analysis?.missing).toBeUndefined();
    // Three billed images: moderation, labels, text.
    expect(record.estimatedCostUsd).toBeCloseTo(0.003, 8);
    // audit --label: by the label, by a parent, any case; a label it does not have finds nothing.
    for (const name of ['Bicycle', 'vehicle', 'PERSON']) {
      expect((await table.store.labels.find({ label: name })).items.map((r) => r.jobId)).toContain(job.jobId);
    }
    expect((await table.store.labels.find({ label: 'Cat' })).items.map((r) => r.jobId)).not.toContain(job.jobId);
  });

  it('a labels rule rejects (by a parent), and holds for review below its reject threshold', async () => {
    answer({ labels: labels({ Name: 'Gun', Confidence: 97, Parents: ['Weapon'] }, { Name: 'Weapon', Confidence: 97 }) });
    const rejected = await run(await upload());
    expect(rejected).toMatchObject({ status: 'REJECTED', decidedBy: 'rekognition', category: 'label:Weapon', rule: { category: 'label:Weapon', action: 'reject', threshold: 95 } });
    expect(rejected.reason).toMatch(/label (Gun \(via "Weapon"\)|Weapon) 97\.0% ≥ reject threshold 95 of labels rule "Weapon"/);

    rekognition.reset();
    bedrock.reset();
    answer({ labels: labels({ Name: 'Weapon', Confidence: 85 }) });
    const held = await run(await upload());
    // BORDERLINE from a labels rule is like any borderline: contextual review may decide it.
    expect(held).toMatchObject({ status: 'APPROVED', decidedBy: 'bedrock:amazon.nova-lite-v1:0', rule: { category: 'label:Weapon', action: 'review', threshold: 80 } });
  });

  it('text rules: a blocked word (whole word, any case) rejects; a URL is held for review', async () => {
    answer({ text: text('Best CASINO bonus!') });
    const rejected = await run(await upload());
    expect(rejected).toMatchObject({ status: 'REJECTED', rule: { category: 'text:word', action: 'reject' } });
    expect(rejected.reason).toContain('"casino"');

    rekognition.reset();
    answer({ text: text('occasionally we play') });
    expect(await run(await upload())).toMatchObject({ status: 'APPROVED' });

    rekognition.reset();
    bedrock.reset();
    answer({ text: text('visit www.example-spam.com now') });
    const held = await run(await upload());
    expect(held.rule).toMatchObject({ category: 'text:urls', action: 'review', label: 'www.example-spam.com' });
  });

  describe('child safety: a face estimated under 18 with nudity or swimwear', () => {
    it('17: REJECTED "possible minor", never sent to the LLM, although swimwear is allowed', async () => {
      answer({ moderation: swimwear(88), faces: [face(30, 38), face(17, 23)] });
      const record = await run(await upload());
      expect(record).toMatchObject({ status: 'REJECTED', decidedBy: 'rekognition', rule: { category: 'child-safety', label: 'Swimwear or Underwear', action: 'reject', threshold: 50 } });
      expect(record.reason).toMatch(/^possible minor: a face estimated aged 17-23 with Swimwear or Underwear 88\.0%/);
      expect(calls(DetectFacesCommand)).toBe(1);
      expect(rekognition.commandCalls(DetectFacesCommand)[0]!.args[0].input.Attributes).toEqual(['ALL']);
      expect(bedrock.commandCalls(ConverseCommand)).toHaveLength(0);
      expect(record.llm).toBeUndefined();
      // What is stored of a face: no gender, no landmarks.
      expect(record.analysis?.faces?.[0]).toMatchObject({ ageRange: { low: 17, high: 23 }, smile: true, eyesOpen: true, sunglasses: false, emotions: [{ type: 'HAPPY', confidence: 96.2 }, { type: 'CALM', confidence: 2.1 }] });
      expect(JSON.stringify(record.analysis)).not.toMatch(/Female|gender|eyeLeft/i);
      expect(s3.get(QUARANTINE, `${UPLOADS}/${record.key}`)).toBeDefined();
    });

    it('18: the rule does not apply; swimwear stays allowed', async () => {
      answer({ moderation: swimwear(88), faces: [face(18, 26)] });
      const record = await run(await upload());
      expect(record).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition' });
      expect(calls(DetectFacesCommand)).toBe(1);
      expect(record.analysis?.faces).toHaveLength(1);
    });

    it('swimwear below the rule\'s confidence, or no face: no minor', async () => {
      answer({ moderation: swimwear(45), faces: [face(8, 12)] });
      expect(await run(await upload())).toMatchObject({ status: 'APPROVED' });
      expect(calls(DetectFacesCommand)).toBe(0);
      rekognition.reset();
      answer({ moderation: swimwear(90), faces: [] });
      expect(await run(await upload())).toMatchObject({ status: 'APPROVED', analysis: { faces: [], faceCount: 0 } });
    });

    it('DetectFaces failing: held for a human (REVIEW), never the LLM, never approved; the record says faces are missing', async () => {
      answer({ moderation: swimwear(88) });
      rekognition.on(DetectFacesCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException', $metadata: { httpStatusCode: 400 } }));
      const record = await run(await upload());
      expect(record).toMatchObject({ status: 'REVIEW', decidedBy: 'policy', analysis: { missing: ['faces'], reasons: { faces: 'ProvisionedThroughputExceededException: Rate exceeded' } } });
      expect(record.reason).toMatch(/child-safety check could not run/);
      expect(bedrock.commandCalls(ConverseCommand)).toHaveLength(0);
    });
  });

  it('an analysis that fails never blocks the decision: moderation decides, the record says what is missing', async () => {
    answer({ moderation: moderation([{ Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: 93 }]), text: text('hello') });
    rekognition.on(DetectLabelsCommand).rejects(Object.assign(new Error('We encountered an internal error.'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }));
    const record = await run(await upload());
    expect(record).toMatchObject({ status: 'REJECTED', decidedBy: 'rekognition', rule: { category: 'Explicit' }, analysis: { missing: ['labels'], text: { total: 1 } } });
    expect(record.analysis?.reasons?.labels).toMatch(/^InternalServerError/);
    // Billed: moderation, text and the child-safety DetectFaces (explicit content); not the failed DetectLabels.
    expect(calls(DetectFacesCommand)).toBe(1);
    expect(record.estimatedCostUsd).toBeCloseTo(0.003, 8);
  });
});
