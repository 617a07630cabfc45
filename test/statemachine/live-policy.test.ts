/**
 * The live policy through the state machine (ASL + the real handlers, mocked clients): with
 * POLICY_PARAMETER set, Detect reads the policy set from SSM. Never readable: PolicyUnavailable is
 * retried like ServiceUnavailable, then FAILED with the job dead-lettered, and Rekognition is never
 * asked (fail closed: nothing is judged without a policy). Readable: each upload is judged by the
 * policy its key routes to, and the record carries that policy's name and version.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DetectModerationLabelsCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import sharp from 'sharp';
import type { ExecutionResult, LocalWorkflow } from '../../local/workflow.ts';
import { fakeDecisionTable, fakeQueue, fakeS3, loadHandlers, UPLOADS, useWorkflowEnv, workflowOf } from './fakes.ts';
import { presetPolicy } from '../../functions/lib/policy.ts';
import type { Job, ModerationState } from '../../functions/lib/types.ts';

const PARAMETER = '/test/policy';

useWorkflowEnv({
  // The fallback, never used while the parameter is set.
  MODERATION_POLICY: 'permissive',
  POLICY_PARAMETER: PARAMETER,
  POLICY_CACHE_SECONDS: '0',
});

const s3 = fakeS3();
const table = fakeDecisionTable();
const queue = fakeQueue();
const rekognition = mockClient(RekognitionClient);
const ssm = mockClient(SSMClient);
let workflow: LocalWorkflow;

beforeAll(async () => {
  workflow = workflowOf(await loadHandlers());
});

afterEach(() => {
  rekognition.reset();
  ssm.reset();
});

let counter = 0;
async function upload(uploader: string): Promise<Job> {
  counter += 1;
  const key = `uploads/${uploader}/photo ${counter}.jpg`;
  const image = await sharp({ create: { width: 200, height: 150, channels: 3, background: { r: 90, g: (counter * 11) % 256, b: 40 } } }).jpeg().toBuffer();
  const stored = s3.put(UPLOADS, key, image);
  const now = new Date().toISOString();
  return { jobId: `live${String(counter).padStart(36, '0')}`, bucket: UPLOADS, key, eTag: stored.eTag, size: image.length, uploader, eventTime: now, receivedAt: now };
}

function run(job: Job): Promise<ExecutionResult> {
  return workflow.execute({ job } satisfies ModerationState, { id: `arn:aws:states:us-east-1:000000000000:execution:moderation:${job.jobId}`, name: job.jobId });
}

/** Explicit at 62: standard holds it for review (50), strict rejects it (50), permissive approves it (review 70). */
const explicit62 = {
  ModerationModelVersion: '7.0',
  ModerationLabels: [
    { Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: 62 },
    { Name: 'Explicit Nudity', ParentName: 'Explicit', TaxonomyLevel: 2, Confidence: 62 },
  ],
};

describe('the live policy in the state machine', () => {
  it('never readable: PolicyUnavailable is retried, then FAILED and dead-lettered; Rekognition is never asked', async () => {
    ssm.on(GetParameterCommand).rejects(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4583'), { name: 'Error', code: 'ECONNREFUSED' }));
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit62);
    const job = await upload('alice');
    const result = await run(job);
    expect(result.status).toBe('FAILED');
    // 1 try + 3 retries (the ServiceUnavailable retrier).
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(4);
    expect(ssm.commandCalls(GetParameterCommand)[0]!.args[0].input).toEqual({ Name: PARAMETER });
    expect(rekognition.commandCalls(DetectModerationLabelsCommand)).toHaveLength(0);
    const [failure] = table.forJob(job.jobId);
    expect(failure).toMatchObject({ status: 'FAILED', error: { Error: 'PolicyUnavailable' } });
    expect(JSON.parse(queue.sent.at(-1)!.MessageBody!).error.Error).toBe('PolicyUnavailable');
  });

  it('readable: each upload is judged by the policy its key routes to, and the record names it', async () => {
    const set = JSON.stringify({ policies: { kids: 'strict' }, routes: [{ prefix: 'uploads/kids/', policy: 'kids' }], default: 'standard' });
    ssm.on(GetParameterCommand).resolves({ Parameter: { Name: PARAMETER, Value: set, Version: 3, Type: 'String' } });
    rekognition.on(DetectModerationLabelsCommand).resolves(explicit62);
    const kids = await upload('kids');
    const adult = await upload('bob');
    expect((await run(kids)).status).toBe('SUCCEEDED');
    expect((await run(adult)).status).toBe('SUCCEEDED');
    expect(table.forJob(kids.jobId)[0]).toMatchObject({ status: 'REJECTED', policyName: 'kids', policyVersion: presetPolicy('strict').version });
    expect(table.forJob(adult.jobId)[0]).toMatchObject({ status: 'REVIEW', policyName: 'standard', policyVersion: presetPolicy('standard').version });
    // Each call asked with the routed policy's MinConfidence (strict 30, standard 50).
    expect(rekognition.commandCalls(DetectModerationLabelsCommand).map((c) => c.args[0].input.MinConfidence)).toEqual([30, 50]);
  });
});
