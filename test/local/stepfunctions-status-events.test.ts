/**
 * The local Step Functions endpoint tells each status change of a STANDARD execution as the
 * EventBridge event Step Functions sends on AWS ("Step Functions Execution Status Change"), knows
 * the ends FAILED, TIMED_OUT (the definition's TimeoutSeconds, overridden locally) and ABORTED
 * (StopExecution), retries a listener that throws like an asynchronous Lambda invocation, and
 * sends nothing for Express executions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand, StartSyncExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { startStepFunctionsEndpoint, type ExecutionRunner, type ExecutionStatusChangeEvent, type StepFunctionsEndpoint } from '../../local/stepfunctions.ts';
import { moderationWorkflow, type ModerationHandlers, type StepName } from '../../local/functions.ts';
import { eventually } from './stack-helpers.ts';

type State = Record<string, any>;
const credentials = { accessKeyId: 'x', secretAccessKey: 'y' };
const gates: Array<() => void> = [];

/** Workflow steps: a key with 'hang' waits in detect until released, 'boom' fails past the fail path. */
function stubs(): Pick<ModerationHandlers, StepName> {
  const step = (fn: (state: State) => State | Promise<State>) => (async (state: State) => fn(state)) as never;
  return {
    detect: step(async (state) => {
      if (state.job.key.includes('hang')) await new Promise<void>((resolve) => gates.push(resolve));
      return { ...state, detection: { verdict: 'APPROVE' } };
    }),
    review: step((state) => state),
    record: step((state) => ({ ...state, decision: { status: 'APPROVED', decidedBy: 'rekognition', decidedAt: 'now', duplicate: false } })),
    apply: step((state) => ({ ...state, applied: { action: 'tagged', detail: 'ok' } })),
    // The fail path itself breaks: the execution fails with this error, not ModerationFailed.
    fail: step(() => {
      throw Object.assign(new Error('DynamoDB is unavailable'), { name: 'ServiceUnavailable' });
    }),
  };
}

describe('status change events of STANDARD executions', () => {
  let sfn: StepFunctionsEndpoint;
  let client: SFNClient;
  const events: ExecutionStatusChangeEvent[] = [];
  const signals: AbortSignal[] = [];
  let standard: string;
  let express: string;

  beforeAll(async () => {
    const handlers = stubs();
    const workflow = moderationWorkflow({ handlers, contextualReview: false, retryIntervalOverrides: { Detect: 0, Record: 0, Apply: 0, RecordFailure: 0 }, timeoutSeconds: 1 });
    const watching: ExecutionRunner = {
      execute: (input, execution) => {
        if (execution.signal) signals.push(execution.signal);
        return workflow.execute(input, execution);
      },
    };
    sfn = await startStepFunctionsEndpoint({
      stateMachines: [
        { name: 'moderation', type: 'STANDARD', workflow: watching },
        { name: 'moderation-express', type: 'EXPRESS', workflow },
      ],
      statusChanges: (event) => void events.push(event),
    });
    client = new SFNClient({ endpoint: sfn.endpoint, region: 'us-east-1', credentials, disableHostPrefix: true });
    standard = sfn.stateMachineArn('moderation');
    express = sfn.stateMachineArn('moderation-express');
  });

  afterAll(async () => {
    for (const open of gates.splice(0)) open();
    client?.destroy();
    await sfn?.close();
  });

  const start = async (key: string, name: string) => {
    const input = JSON.stringify({ job: { jobId: name, bucket: 'uploads', key } });
    return (await client.send(new StartExecutionCommand({ stateMachineArn: standard, name, input }))).executionArn!;
  };
  const ended = (executionArn: string) =>
    eventually(async () => events.find((e) => e.detail.executionArn === executionArn && e.detail.status !== 'RUNNING'), 10_000);

  it('RUNNING at the start, then SUCCEEDED, in the shape EventBridge delivers', async () => {
    const executionArn = await start('uploads/a/fine.jpg', 'fine');
    const end = await ended(executionArn);
    const running = events.find((e) => e.detail.executionArn === executionArn && e.detail.status === 'RUNNING')!;
    expect(running.detail.stopDate).toBeNull();
    expect(end).toMatchObject({
      version: '0',
      source: 'aws.states',
      'detail-type': 'Step Functions Execution Status Change',
      account: '000000000000',
      region: 'us-east-1',
      resources: [executionArn],
      detail: { executionArn, stateMachineArn: standard, name: 'fine', status: 'SUCCEEDED', input: expect.stringContaining('fine.jpg'), error: null, cause: null },
    });
    expect(end.detail.stopDate).toBeGreaterThanOrEqual(end.detail.startDate);
    expect(JSON.parse(end.detail.output!).applied.action).toBe('tagged');
  });

  it('TIMED_OUT when the execution runs past TimeoutSeconds (a local override of the definition\'s 270)', async () => {
    const executionArn = await start('uploads/a/hang-timeout.jpg', 'hang-timeout');
    const end = await ended(executionArn);
    expect(end.detail).toMatchObject({ status: 'TIMED_OUT', error: 'States.Timeout', input: expect.stringContaining('hang-timeout.jpg') });
    expect(end.detail.stopDate! - end.detail.startDate).toBeGreaterThanOrEqual(900);
    expect((await client.send(new DescribeExecutionCommand({ executionArn }))).status).toBe('TIMED_OUT');
  });

  it('FAILED with the error of a fail path that broke (not ModerationFailed)', async () => {
    const boom = moderationWorkflow({
      handlers: {
        ...stubs(),
        detect: (async () => {
          throw Object.assign(new Error('bad'), { name: 'Exploded' });
        }) as never,
      },
      contextualReview: false,
      retryIntervalOverrides: { Detect: 0, RecordFailure: 0 },
    });
    const local = await startStepFunctionsEndpoint({ stateMachines: [{ name: 'm', type: 'STANDARD', workflow: boom }], statusChanges: (event) => void events.push(event) });
    const c = new SFNClient({ endpoint: local.endpoint, region: 'us-east-1', credentials });
    try {
      const { executionArn } = await c.send(new StartExecutionCommand({ stateMachineArn: local.stateMachineArn('m'), name: 'boom', input: JSON.stringify({ job: { jobId: 'boom', key: 'k' } }) }));
      const end = await ended(executionArn!);
      expect(end.detail).toMatchObject({ status: 'FAILED', error: 'ServiceUnavailable', cause: expect.stringContaining('DynamoDB is unavailable') });
    } finally {
      c.destroy();
      await local.close();
    }
  });

  it('StopExecution ends a running execution ABORTED at once, with the given error and cause, and aborts the run', async () => {
    const executionArn = await start('uploads/a/hang-stop.jpg', 'hang-stop');
    await eventually(async () => (events.some((e) => e.detail.executionArn === executionArn && e.detail.status === 'RUNNING') ? true : undefined));
    const stopped = await client.send(new StopExecutionCommand({ executionArn, error: 'OperatorStopped', cause: 'stuck' }));
    expect(stopped.stopDate).toBeInstanceOf(Date);
    const described = await client.send(new DescribeExecutionCommand({ executionArn }));
    expect(described).toMatchObject({ status: 'ABORTED', error: 'OperatorStopped', cause: 'stuck' });
    const end = await ended(executionArn);
    expect(end.detail).toMatchObject({ status: 'ABORTED', error: 'OperatorStopped', cause: 'stuck' });
    expect(signals.at(-1)?.aborted).toBe(true);
    // The run ends (the workflow heard the abort) and no second end is told.
    await eventually(async () => (sfn.running() === 0 && sfn.statusChangesInFlight() === 0 ? true : undefined));
    expect(events.filter((e) => e.detail.executionArn === executionArn).map((e) => e.detail.status)).toEqual(['RUNNING', 'ABORTED']);
    expect((await client.send(new DescribeExecutionCommand({ executionArn }))).status).toBe('ABORTED');
    // Stopping it again changes nothing; an unknown execution is ExecutionDoesNotExist.
    await client.send(new StopExecutionCommand({ executionArn }));
    await expect(client.send(new StopExecutionCommand({ executionArn: `${executionArn}-nope` }))).rejects.toMatchObject({ name: 'ExecutionDoesNotExist' });
  });

  it('an ended execution keeps its name: StartExecution with it is ExecutionAlreadyExists', async () => {
    await expect(start('uploads/a/hang-timeout.jpg', 'hang-timeout')).rejects.toMatchObject({ name: 'ExecutionAlreadyExists' });
  });

  it('Express executions send no events (as on AWS)', async () => {
    const before = events.length;
    const result = await client.send(new StartSyncExecutionCommand({ stateMachineArn: express, input: JSON.stringify({ job: { jobId: 'e', key: 'uploads/a/e.jpg' } }) }));
    expect(result.status).toBe('SUCCEEDED');
    expect(events.length).toBe(before);
  });
});

describe('delivery', () => {
  const runner: ExecutionRunner = { execute: async () => ({ status: 'FAILED', error: 'Boom', cause: 'x', events: [] }) };

  it('a listener that throws is retried (three deliveries in all, like an asynchronous Lambda invocation); close waits for deliveries', async () => {
    const seen: string[] = [];
    const sfn = await startStepFunctionsEndpoint({
      stateMachines: [{ name: 'm', type: 'STANDARD', workflow: runner }],
      statusChangeRetryMs: 0,
      statusChanges: async (event) => {
        seen.push(event.detail.status);
        if (event.detail.status === 'FAILED' && seen.filter((s) => s === 'FAILED').length < 3) throw new Error('settle is down');
      },
    });
    const client = new SFNClient({ endpoint: sfn.endpoint, region: 'us-east-1', credentials });
    try {
      await client.send(new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('m'), name: 'retry', input: '{}' }));
      await eventually(async () => (sfn.running() === 0 && sfn.statusChangesInFlight() === 0 ? true : undefined));
      expect(seen).toEqual(['RUNNING', 'FAILED', 'FAILED', 'FAILED']);
    } finally {
      client.destroy();
      await sfn.close();
    }
  });

  it('a listener that keeps failing is given up after the last attempt (logged), without breaking the endpoint', async () => {
    const logged: string[] = [];
    let calls = 0;
    const sfn = await startStepFunctionsEndpoint({
      stateMachines: [{ name: 'm', type: 'STANDARD', workflow: runner }],
      statusChangeRetryMs: 0,
      statusChangeAttempts: 2,
      statusChanges: () => {
        calls++;
        throw new Error('settle is down');
      },
      log: { info: () => {}, warn: () => {}, error: (message: string) => void logged.push(message) },
    });
    const client = new SFNClient({ endpoint: sfn.endpoint, region: 'us-east-1', credentials });
    try {
      await client.send(new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('m'), name: 'down', input: '{}' }));
      await eventually(async () => (sfn.running() === 0 && sfn.statusChangesInFlight() === 0 ? true : undefined));
      expect(calls).toBe(4); // RUNNING twice, FAILED twice
      expect(logged.filter((m) => m.includes('giving up'))).toHaveLength(2);
      expect((await client.send(new DescribeExecutionCommand({ executionArn: sfn.executions()[0].executionArn }))).status).toBe('FAILED');
    } finally {
      client.destroy();
      await sfn.close();
    }
  });
});
