/**
 * The state machine definition, executed locally with aws-local-stepfunctions and the real
 * handlers; AWS clients are mocked (in-memory S3, DynamoDB, SQS; scripted Rekognition and
 * Bedrock). Each test follows one path to its end and checks what the pipeline left behind.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DetectModerationLabelsCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import { BedrockRuntimeClient, ConverseCommand, type ConverseCommandOutput } from '@aws-sdk/client-bedrock-runtime';
import sharp from 'sharp';
import type { ExecutionResult, LocalWorkflow } from '../../local/workflow.ts';
import { DLQ_URL, fakeDecisionTable, fakeQueue, fakeS3, loadHandlers, QUARANTINE, UPLOADS, useWorkflowEnv, workflowOf, type Handlers } from './fakes.ts';
import type { Job, ModerationState } from '../../functions/lib/types.ts';
import { humanRecord } from '../../functions/lib/decision.ts';
import { recordIdOf } from '../../functions/store/table-schema.ts';

const MODEL = 'amazon.nova-lite-v1:0';

useWorkflowEnv({
  REVIEW_MODEL_ID: MODEL,
  // Explicit content: reject at 80, review from 50.
  MODERATION_POLICY: JSON.stringify({ name: 'test', rules: { Explicit: { reject: 80, review: 50 } } }),
});

const s3 = fakeS3();
const table = fakeDecisionTable();
const queue = fakeQueue();
const rekognition = mockClient(RekognitionClient);
const bedrock = mockClient(BedrockRuntimeClient);

let functions: Handlers;

beforeAll(async () => {
  functions = await loadHandlers();
});

afterEach(() => {
  rekognition.reset();
  bedrock.reset();
});

// Building a LocalWorkflow validates the definition (about half a second): one per setting.
const workflows = new Map<string, LocalWorkflow>();
function workflow(contextualReview: 'enabled' | 'disabled' = 'enabled'): LocalWorkflow {
  const cached = workflows.get(contextualReview);
  if (cached) return cached;
  const created = workflowOf(functions, contextualReview);
  workflows.set(contextualReview, created);
  return created;
}

let counter = 0;
async function upload(body?: Buffer): Promise<Job> {
  counter += 1;
  const key = `uploads/alice/photo ${counter}.jpg`;
  // A colour of its own per upload: identical bytes would repeat an earlier test's decision (content reuse).
  const image = body ?? (await sharp({ create: { width: 200, height: 150, channels: 3, background: { r: 48, g: 128, b: (counter * 7) % 256 } } }).jpeg().toBuffer());
  const stored = s3.put(UPLOADS, key, image);
  const now = new Date().toISOString();
  return { jobId: `job${String(counter).padStart(37, '0')}`, bucket: UPLOADS, key, eTag: stored.eTag, size: image.length, uploader: 'alice', eventTime: now, receivedAt: now };
}

async function run(job: Job, contextualReview: 'enabled' | 'disabled' = 'enabled'): Promise<ExecutionResult> {
  return workflow(contextualReview).execute({ job } satisfies ModerationState, { id: `arn:aws:states:us-east-1:000000000000:execution:moderation:${job.jobId}`, name: job.jobId });
}

const explicit = (confidence: number) => ({
  ModerationModelVersion: '7.0',
  ModerationLabels: [
    { Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: confidence },
    { Name: 'Explicit Nudity', ParentName: 'Explicit', TaxonomyLevel: 2, Confidence: confidence },
  ],
});

function toolAnswer(input: unknown): ConverseCommandOutput {
  return {
    $metadata: {},
    stopReason: 'tool_use',
    output: { message: { role: 'assistant', content: [{ toolUse: { toolUseId: 't1', name: 'record_moderation_decision', input: input as never } }] } },
    usage: { inputTokens: 1200, outputTokens: 40, totalTokens: 1240 },
    metrics: { latencyMs: 10 },
  };
}

function decisionOf(job: Job) {
  const items = table.forJob(job.jobId).filter((item) => item.sk === 'DECISION#auto');
  expect(items).toHaveLength(1);
  return items[0]!;
}

function statusTag(bucket: string, key: string): string | undefined {
  return s3.get(bucket, key)?.tags.find((tag) => tag.Key === 'moderation-status')?.Value;
}

describe('moderation state machine', () => {
  it('approves a clean image and tags it', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
    const job = await upload();
    const result = await run(job);
    expect(result.status).toBe('SUCCEEDED');
    const decision = decisionOf(job);
    expect(decision).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition', modelVersion: '7.0', uploader: 'alice' });
    expect(statusTag(UPLOADS, job.key)).toBe('APPROVED');
    // Asked Rekognition by S3 reference, with the policy's lowest review threshold as MinConfidence.
    const call = rekognition.commandCalls(DetectModerationLabelsCommand)[0]!.args[0].input;
    expect(call.Image?.S3Object).toEqual({ Bucket: UPLOADS, Name: job.key, Version: undefined });
    expect(call.MinConfidence).toBe(50);
  });

  it('rejects a high-confidence label and moves the object to quarantine', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(97));
    const job = await upload();
    const result = await run(job);
    expect(result.status).toBe('SUCCEEDED');
    expect(decisionOf(job)).toMatchObject({ status: 'REJECTED', decidedBy: 'rekognition', category: 'Explicit' });
    expect(decisionOf(job).rule).toMatchObject({ action: 'reject', threshold: 80 });
    expect(s3.get(UPLOADS, job.key)).toBeUndefined();
    expect(statusTag(QUARANTINE, `${UPLOADS}/${job.key}`)).toBe('REJECTED');
    expect(bedrock.commandCalls(ConverseCommand)).toHaveLength(0);
  });

  it.each([
    ['APPROVE', 'APPROVED'],
    ['REJECT', 'REJECTED'],
  ] as const)('sends a borderline image to Bedrock, which answers %s', async (answer, status) => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(62));
    bedrock.on(ConverseCommand).resolves(toolAnswer({ decision: answer, reason: 'a classical statue in a museum', categories: [] }));
    const job = await upload();
    expect((await run(job)).status).toBe('SUCCEEDED');
    const decision = decisionOf(job);
    expect(decision).toMatchObject({ status, decidedBy: `bedrock:${MODEL}`, reason: 'a classical statue in a museum' });
    expect(decision.llm).toMatchObject({ modelId: MODEL, decision: answer, inputTokens: 1200, outputTokens: 40 });
    const request = bedrock.commandCalls(ConverseCommand)[0]!.args[0].input;
    expect(request.inferenceConfig?.temperature).toBe(0);
    expect(request.toolConfig?.toolChoice).toEqual({ tool: { name: 'record_moderation_decision' } });
    expect(request.messages?.[0]?.content?.[0]?.image?.format).toBe('jpeg');
  });

  it('holds a borderline image for a human when Bedrock answers in prose', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(62));
    bedrock.on(ConverseCommand).resolves({
      $metadata: {},
      stopReason: 'end_turn',
      output: { message: { role: 'assistant', content: [{ text: 'APPROVE. This looks fine to me.' }] } },
      usage: { inputTokens: 1000, outputTokens: 9, totalTokens: 1009 },
      metrics: { latencyMs: 5 },
    });
    const job = await upload();
    await run(job);
    const decision = decisionOf(job);
    expect(decision.status).toBe('REVIEW');
    expect(String(decision.reason)).toMatch(/no tool answer/);
    expect(statusTag(UPLOADS, job.key)).toBe('REVIEW');
  });

  it('holds a borderline image for a human when contextual review is off', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(62));
    const job = await upload();
    await run(job, 'disabled');
    expect(decisionOf(job)).toMatchObject({ status: 'REVIEW', decidedBy: 'policy' });
    expect(bedrock.commandCalls(ConverseCommand)).toHaveLength(0);
  });

  it('a redelivery after a human decision applies the human decision, not the automated one', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(62));
    const job = await upload();
    await run(job, 'disabled');
    const automated = decisionOf(job);
    expect(automated.status).toBe('REVIEW');
    await table.store.appendHuman(
      humanRecord(automated, { status: 'APPROVED', reviewer: 'dana', reason: 'a painting', decidedAt: new Date().toISOString(), supersedes: recordIdOf(automated) }),
    );
    const calls = rekognition.commandCalls(DetectModerationLabelsCommand).length;
    // SQS delivers the same notification again (or an operator replays it from the DLQ).
    const again = await run(job, 'disabled');
    expect(again.status).toBe('SUCCEEDED');
    expect(rekognition.commandCalls(DetectModerationLabelsCommand)).toHaveLength(calls);
    expect(statusTag(UPLOADS, job.key)).toBe('APPROVED');
    expect(table.forJob(job.jobId).filter((r) => r.kind === 'automated')).toHaveLength(1);
  });

  it('holds a borderline image for a human when Bedrock stays unavailable (fail closed)', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(62));
    bedrock.on(ConverseCommand).rejects(Object.assign(new Error('model is busy'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 429 } }));
    const job = await upload();
    const result = await run(job);
    expect(result.status).toBe('SUCCEEDED');
    expect(decisionOf(job)).toMatchObject({ status: 'REVIEW', decidedBy: 'policy' });
    expect(String(decisionOf(job).reason)).toMatch(/contextual review failed \(Throttled\)/);
    expect(bedrock.commandCalls(ConverseCommand).length).toBeGreaterThan(1);
  });

  it('retries a throttled Rekognition call and then decides, with the retries in the event log', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    rekognition.on(DetectModerationLabelsCommand).rejectsOnce(throttled).rejectsOnce(throttled).resolves(explicit(10));
    const job = await upload();
    const result = await run(job);
    expect(result.status).toBe('SUCCEEDED');
    expect(decisionOf(job).status).toBe('APPROVED');
    const retries = result.events.filter((e) => e.type === 'StateRetried' && e.state?.name === 'Detect');
    expect(retries).toHaveLength(2);
    const failures = result.events.filter((e) => e.type === 'StateFailed' && e.state?.name === 'Detect');
    expect(failures.map((e) => (e as { Error: string }).Error)).toEqual(['Throttled', 'Throttled']);
  });

  it('records FAILED and dead-letters the job when Rekognition fails past its retries', async () => {
    rekognition
      .on(DetectModerationLabelsCommand)
      .rejects(Object.assign(new Error('internal error'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }));
    const job = await upload();
    const before = queue.sent.length;
    const result = await run(job);
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('ModerationFailed');
    // 1 try + 3 retries for ServiceUnavailable.
    expect(rekognition.commandCalls(DetectModerationLabelsCommand)).toHaveLength(4);
    const failed = table.forJob(job.jobId);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ status: 'FAILED', error: { Error: 'ServiceUnavailable' } });
    expect(String(failed[0]!.sk)).toMatch(/^FAILURE#/);
    expect(queue.sent.length).toBe(before + 1);
    const message = JSON.parse(queue.sent.at(-1)!.MessageBody!);
    expect(message.moderationJob).toMatchObject({ jobId: job.jobId, key: job.key });
    expect(message.error.Error).toBe('ServiceUnavailable');
    expect(queue.sent.at(-1)!.QueueUrl).toBe(DLQ_URL);
  });

  it('decides the same job once when it runs twice', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(20));
    const job = await upload();
    const first = await run(job);
    const second = await run(job);
    expect([first.status, second.status]).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect(table.forJob(job.jobId)).toHaveLength(1);
    expect(rekognition.commandCalls(DetectModerationLabelsCommand)).toHaveLength(1);
    expect((second.output as ModerationState).decision).toMatchObject({ status: 'APPROVED', duplicate: true });
  });

  it('writes one decision when two runs of a job race past detection', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit(99));
    const job = await upload();
    const [a, b] = await Promise.all([run(job), run(job)]);
    expect([a.status, b.status]).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect(table.forJob(job.jobId)).toHaveLength(1);
    const outcomes = [a, b].map((r) => (r.output as ModerationState).decision?.duplicate).sort();
    expect(outcomes).toEqual([false, true]);
    expect(statusTag(QUARANTINE, `${UPLOADS}/${job.key}`)).toBe('REJECTED');
  });

  it('marks a file that is not an image UNUSABLE with its reason, without calling Rekognition', async () => {
    const job = await upload(Buffer.from('this is a text file, not a JPEG\n'.repeat(10)));
    const result = await run(job);
    expect(result.status).toBe('SUCCEEDED');
    expect(decisionOf(job)).toMatchObject({ status: 'UNUSABLE', decidedBy: 'policy' });
    expect(String(decisionOf(job).reason)).toMatch(/not an image/);
    expect(rekognition.commandCalls(DetectModerationLabelsCommand)).toHaveLength(0);
    expect(statusTag(UPLOADS, job.key)).toBe('UNUSABLE');
  });

  it('converts a WebP upload and sends Rekognition JPEG bytes', async () => {
    rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
    const webp = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#208040' } }).webp().toBuffer();
    const job = await upload(webp);
    await run(job);
    expect(decisionOf(job).status).toBe('APPROVED');
    const bytes = rekognition.commandCalls(DetectModerationLabelsCommand)[0]!.args[0].input.Image?.Bytes;
    expect(bytes).toBeDefined();
    expect((await sharp(Buffer.from(bytes!)).metadata()).format).toBe('jpeg');
  });

  describe('every frame counts (invariant 7)', () => {
    /** A 2-frame animated GIF: a harmless first frame, then the frame that must be rejected (red here). */
    const twoFrameGif = async () => {
      const frame = (background: string) => sharp({ create: { width: 64, height: 64, channels: 3, background } }).raw().toBuffer();
      const strip = Buffer.concat([await frame('#3080c0'), await frame('#e01010')]);
      return sharp(strip, { raw: { width: 64, height: 128, channels: 3, pageHeight: 64 } }).gif({ delay: [100, 100], loop: 0 }).toBuffer();
    };
    /** Rekognition as a stub that sees the pixels: a red frame is explicit. */
    const explicitWhenRed = async (input: { Image?: { Bytes?: Uint8Array } }) => {
      const { channels } = await sharp(Buffer.from(input.Image!.Bytes!)).stats();
      return channels[0]!.mean > 150 && channels[2]!.mean < 100 ? explicit(96) : { ModerationModelVersion: '7.0', ModerationLabels: [] };
    };

    it('a harmless first frame followed by an explicit one is REJECTED; the record names the frame and the count', async () => {
      rekognition.on(DetectModerationLabelsCommand).callsFake(explicitWhenRed);
      const job = await upload(await twoFrameGif());
      expect((await run(job)).status).toBe('SUCCEEDED');
      const decision = decisionOf(job);
      expect(decision.status).toBe('REJECTED');
      expect(decision.frames).toMatchObject({ total: 2, decidingFrame: 1 });
      expect(rekognition.commandCalls(DetectModerationLabelsCommand)).toHaveLength(2);
    });

    it('an SVG is held for a person by default, and never sent to the LLM', async () => {
      rekognition.on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
      const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="120" height="120"><rect width="120" height="120" fill="#3080c0"/></svg>');
      const job = await upload(svg);
      expect((await run(job)).status).toBe('SUCCEEDED');
      expect(decisionOf(job)).toMatchObject({ status: 'REVIEW', decidedBy: 'policy' });
      expect(String(decisionOf(job).reason)).toMatch(/SVG/);
      expect(bedrock.commandCalls(ConverseCommand)).toHaveLength(0);
    });
  });
});
