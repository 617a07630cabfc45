/**
 * The local Step Functions endpoint answers a real SFNClient (the ingest handler's, unchanged but for
 * disableHostPrefix): StartSyncExecution, StartExecution, ExecutionAlreadyExists, DescribeExecution,
 * running statemachine/moderation.asl.json with stub functions invoked like Lambda.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DescribeExecutionCommand,
  SFNClient,
  StartExecutionCommand,
  StartSyncExecutionCommand,
} from '@aws-sdk/client-sfn';
import { startStepFunctionsEndpoint, type StepFunctionsEndpoint } from '../../local/stepfunctions.ts';
import { moderationWorkflow, type ModerationHandlers, type StepName } from '../../local/functions.ts';
import { eventually } from './stack-helpers.ts';

type State = Record<string, any>;

const calls: Array<{ step: string; state: State }> = [];
let release: (() => void) | undefined;

function stubs(): Pick<ModerationHandlers, StepName> {
  const step = (name: string, fn: (state: State) => State | Promise<State>) =>
    (async (state: State) => {
      calls.push({ step: name, state });
      return fn(state);
    }) as never;
  return {
    detect: step('detect', async (state) => {
      if (state.job.key.includes('boom')) throw Object.assign(new Error('the detector exploded'), { name: 'Exploded' });
      if (state.job.key.includes('slow')) await new Promise<void>((resolve) => (release = resolve));
      // A Date goes over the wire as a string, as through Lambda.
      return { ...state, detection: { verdict: 'APPROVE', at: new Date(0) } };
    }),
    review: step('review', (state) => state),
    record: step('record', (state) => ({ ...state, decision: { status: 'APPROVED', decidedBy: 'rekognition', decidedAt: 'now', duplicate: false } })),
    apply: step('apply', (state) => ({ ...state, applied: { action: 'tagged', detail: 'ok' } })),
    fail: step('fail', (state) => ({ ...state, decision: { status: 'FAILED', decidedBy: 'policy', decidedAt: 'now', duplicate: false } })),
  };
}

describe('local Step Functions endpoint', () => {
  let sfn: StepFunctionsEndpoint;
  let client: SFNClient;
  const express = 'arn:aws:states:us-east-1:000000000000:stateMachine:moderation';
  const standard = 'arn:aws:states:us-east-1:000000000000:stateMachine:moderation-standard';

  beforeAll(async () => {
    const handlers = stubs();
    const retryIntervalOverrides = { Detect: 0, Record: 0, Apply: 0, RecordFailure: 0 };
    sfn = await startStepFunctionsEndpoint({
      stateMachines: [
        { name: 'moderation', type: 'EXPRESS', workflow: moderationWorkflow({ handlers, contextualReview: false, retryIntervalOverrides }) },
        { name: 'moderation-standard', type: 'STANDARD', workflow: moderationWorkflow({ handlers, contextualReview: false, retryIntervalOverrides }) },
      ],
    });
    client = new SFNClient({ endpoint: sfn.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, disableHostPrefix: true });
  });

  afterAll(async () => {
    client.destroy();
    await sfn.close();
  });

  it('StartSyncExecution runs the ASL to the end and answers in the real shape', async () => {
    const input = { job: { jobId: 'j1', key: 'uploads/a.jpg', bucket: 'b' } };
    const out = await client.send(new StartSyncExecutionCommand({ stateMachineArn: express, name: 'j1-abc', input: JSON.stringify(input) }));
    expect(out.status).toBe('SUCCEEDED');
    expect(out.executionArn).toMatch(/^arn:aws:states:us-east-1:000000000000:express:moderation:j1-abc:[0-9a-f-]{36}$/);
    expect(out.stateMachineArn).toBe(express);
    expect(out.name).toBe('j1-abc');
    expect(out.startDate).toBeInstanceOf(Date);
    expect(out.stopDate!.getTime()).toBeGreaterThanOrEqual(out.startDate!.getTime());
    expect(JSON.parse(out.input!)).toEqual(input);
    const output = JSON.parse(out.output!);
    expect(output.settings).toEqual({ contextualReview: 'disabled', executionId: out.executionArn });
    expect(output.detection.at).toBe('1970-01-01T00:00:00.000Z');
    expect(output.decision.status).toBe('APPROVED');
    expect(output.applied.action).toBe('tagged');
    expect(out.billingDetails?.billedDurationInMilliseconds).toBeGreaterThanOrEqual(100);
  });

  it('reports a failed execution with the Fail state error; the fail step got a Lambda-shaped Cause', async () => {
    const out = await client.send(
      new StartSyncExecutionCommand({ stateMachineArn: express, input: JSON.stringify({ job: { jobId: 'j2', key: 'uploads/boom.jpg', bucket: 'b' } }) }),
    );
    expect(out.status).toBe('FAILED');
    expect(out.error).toBe('ModerationFailed');
    expect(out.output).toBeUndefined();
    const failCall = calls.find((c) => c.step === 'fail' && c.state.job.jobId === 'j2')!;
    expect(failCall.state.error.Error).toBe('Exploded');
    expect(JSON.parse(failCall.state.error.Cause)).toMatchObject({ errorType: 'Exploded', errorMessage: 'the detector exploded' });
  });

  it('StartExecution (STANDARD) runs in the background; DescribeExecution follows it; a reused name is ExecutionAlreadyExists', async () => {
    const input = JSON.stringify({ job: { jobId: 'j3', key: 'uploads/slow.jpg', bucket: 'b' } });
    const started = await client.send(new StartExecutionCommand({ stateMachineArn: standard, name: 'j3', input }));
    expect(started.executionArn).toBe('arn:aws:states:us-east-1:000000000000:execution:moderation-standard:j3');
    expect(started.startDate).toBeInstanceOf(Date);

    const running = await client.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
    expect(running).toMatchObject({ status: 'RUNNING', name: 'j3', stateMachineArn: standard, input });
    expect(sfn.running()).toBe(1);

    // Same name and input while running: idempotent, the same execution.
    const again = await client.send(new StartExecutionCommand({ stateMachineArn: standard, name: 'j3', input }));
    expect(again.executionArn).toBe(started.executionArn);
    // Same name, other input: taken.
    await expect(client.send(new StartExecutionCommand({ stateMachineArn: standard, name: 'j3', input: '{"job":{}}' }))).rejects.toMatchObject({
      name: 'ExecutionAlreadyExists',
      $metadata: { httpStatusCode: 400 },
    });

    await eventually(async () => release);
    release!();
    const done = await eventually(async () => {
      const d = await client.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
      return d.status === 'RUNNING' ? undefined : d;
    });
    expect(done.status).toBe('SUCCEEDED');
    expect(done.stopDate).toBeInstanceOf(Date);
    expect(JSON.parse(done.output!).decision.status).toBe('APPROVED');
    // Closed: even the same input cannot reuse the name.
    await expect(client.send(new StartExecutionCommand({ stateMachineArn: standard, name: 'j3', input }))).rejects.toMatchObject({ name: 'ExecutionAlreadyExists' });
  });

  it('answers errors in the AWS JSON shape', async () => {
    await expect(client.send(new StartSyncExecutionCommand({ stateMachineArn: standard, input: '{}' }))).rejects.toMatchObject({
      name: 'StateMachineTypeNotSupported',
    });
    await expect(
      client.send(new StartExecutionCommand({ stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:nope', input: '{}' })),
    ).rejects.toMatchObject({ name: 'StateMachineDoesNotExist' });
    await expect(client.send(new StartExecutionCommand({ stateMachineArn: standard, name: 'has space', input: '{}' }))).rejects.toMatchObject({ name: 'InvalidName' });
    await expect(client.send(new StartExecutionCommand({ stateMachineArn: standard, input: '{not json' }))).rejects.toMatchObject({ name: 'InvalidExecutionInput' });
    await expect(
      client.send(new DescribeExecutionCommand({ executionArn: 'arn:aws:states:us-east-1:000000000000:execution:moderation-standard:missing' })),
    ).rejects.toMatchObject({ name: 'ExecutionDoesNotExist' });

    const raw = await fetch(sfn.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AWSStepFunctions.ListActivities' },
      body: '{}',
    });
    expect(raw.status).toBe(400);
    expect(raw.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
    expect(await raw.json()).toMatchObject({ __type: expect.stringMatching(/#UnknownOperationException$/), message: expect.any(String) });
  });

  it('a client without disableHostPrefix would call sync-<host> for StartSyncExecution (why the ingest client sets it)', async () => {
    const prefixed = new SFNClient({ endpoint: sfn.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 });
    let host: string | undefined;
    prefixed.middlewareStack.add(
      (next) => async (args) => {
        host = (args.request as { hostname?: string }).hostname;
        throw new Error('stop here');
      },
      { step: 'finalizeRequest' },
    );
    await expect(prefixed.send(new StartSyncExecutionCommand({ stateMachineArn: express, input: '{}' }))).rejects.toThrow('stop here');
    expect(host).toBe('sync-127.0.0.1');
    prefixed.destroy();
  });
});

describe('execution history', () => {
  it('keeps a bounded history for DescribeExecution but remembers STANDARD names beyond it', async () => {
    const runner = { execute: async (input: unknown) => ({ status: 'SUCCEEDED' as const, output: input, events: [] }) };
    const sfn = await startStepFunctionsEndpoint({ stateMachines: [{ name: 'm', type: 'STANDARD', workflow: runner }], historyLimit: 2 });
    const client = new SFNClient({ endpoint: sfn.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const stateMachineArn = sfn.stateMachineArn('m');
    try {
      const arns: string[] = [];
      for (const name of ['a', 'b', 'c']) {
        arns.push((await client.send(new StartExecutionCommand({ stateMachineArn, name, input: '{}' }))).executionArn!);
        await eventually(async () => (sfn.running() === 0 ? true : undefined));
      }
      expect(sfn.executions().map((e) => e.name)).toEqual(['b', 'c']);
      await expect(client.send(new DescribeExecutionCommand({ executionArn: arns[0] }))).rejects.toMatchObject({ name: 'ExecutionDoesNotExist' });
      expect((await client.send(new DescribeExecutionCommand({ executionArn: arns[2] }))).status).toBe('SUCCEEDED');
      await expect(client.send(new StartExecutionCommand({ stateMachineArn, name: 'a', input: '{}' }))).rejects.toMatchObject({ name: 'ExecutionAlreadyExists' });
    } finally {
      client.destroy();
      await sfn.close();
    }
  });
});
