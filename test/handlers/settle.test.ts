/**
 * The settle handler (functions/settle.ts): a Standard execution that ended FAILED, TIMED_OUT or
 * ABORTED outside the workflow's fail path gets its FAILED record and its dead-letter message;
 * nothing happens for a job that is decided, for the fail path's own ModerationFailed, or for any
 * other status. Against the in-memory decision store, a recording dead-letter channel and a mocked
 * Step Functions client (DescribeExecution, when the event carries no input).
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { InMemoryDecisionStore } from '../../functions/store/memory.ts';
import { useStores } from '../../functions/stores.ts';
import type { DeadLetterChannel } from '../../functions/store/dead-letter-channel.ts';
import type { CaughtError, Decision, Job } from '../../functions/lib/types.ts';
import type { SettleOutcome } from '../../functions/settle.ts';

Object.assign(process.env, {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
});

const STATE_MACHINE = 'arn:aws:states:us-east-1:000000000000:stateMachine:moderation';
const sfn = mockClient(SFNClient);
let settle: (event: never) => Promise<SettleOutcome>;
let decisions: InMemoryDecisionStore;
let sent: Array<{ job: Job; error: CaughtError; context: { failedAt: string; executionId?: string } }>;

const job: Job = {
  jobId: 'c'.repeat(40),
  bucket: 'uploads',
  key: 'uploads/hana/slow.jpg',
  eTag: 'abc',
  sequencer: '0A',
  uploader: 'hana',
  eventTime: '2026-11-25T10:00:00.000Z',
  receivedAt: '2026-11-25T10:00:01.000Z',
};
const executionArn = `arn:aws:states:us-east-1:000000000000:execution:moderation:${job.jobId}`;
const STOPPED = Date.parse('2026-11-25T10:04:31.250Z');

function event(detail: Record<string, unknown>, detailType = 'Step Functions Execution Status Change'): never {
  return {
    version: '0',
    id: 'e1',
    'detail-type': detailType,
    source: 'aws.states',
    account: '000000000000',
    time: '2026-11-25T10:04:31Z',
    region: 'us-east-1',
    resources: [executionArn],
    detail: {
      executionArn,
      stateMachineArn: STATE_MACHINE,
      name: job.jobId,
      startDate: STOPPED - 270_000,
      stopDate: STOPPED,
      input: JSON.stringify({ job }),
      inputDetails: { included: true },
      output: null,
      outputDetails: null,
      error: null,
      cause: null,
      ...detail,
    },
  } as never;
}

beforeAll(async () => {
  settle = (await import('../../functions/settle.ts')).handler as never;
});

beforeEach(() => {
  sfn.reset();
  decisions = new InMemoryDecisionStore();
  sent = [];
  const deadLetters: DeadLetterChannel = {
    sendFailedJob: async (j, error, context) => void sent.push({ job: j, error, context }),
    sendMalformed: async () => {
      throw new Error('not expected');
    },
  };
  useStores({ decisions, deadLetters });
});

describe('an execution that ended outside the fail path', () => {
  it('TIMED_OUT: a FAILED record with the reason and the execution, and the job in the dead-letter queue', async () => {
    const outcome = await settle(event({ status: 'TIMED_OUT' }));
    expect(outcome).toMatchObject({ action: 'recorded', jobId: job.jobId });
    const history = await decisions.jobHistory(job.jobId);
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({
      kind: 'failure',
      status: 'FAILED',
      key: job.key,
      uploader: 'hana',
      executionId: executionArn,
      decidedAt: new Date(STOPPED).toISOString(),
      error: { Error: 'States.Timeout' },
    });
    expect(history[0].reason).toMatch(/^States\.Timeout: the execution ran past the state machine's TimeoutSeconds/);
    expect(sent).toEqual([{ job, error: history[0].error, context: { executionId: executionArn, failedAt: new Date(STOPPED).toISOString() } }]);
  });

  it('ABORTED (StopExecution): the error and cause the operator gave', async () => {
    await settle(event({ status: 'ABORTED', error: 'OperatorStopped', cause: 'stuck on a huge TIFF' }));
    const [failure] = await decisions.jobHistory(job.jobId);
    expect(failure).toMatchObject({ status: 'FAILED', reason: 'OperatorStopped: stuck on a huge TIFF' });
    expect(sent[0].error).toEqual({ Error: 'OperatorStopped', Cause: 'stuck on a huge TIFF' });
  });

  it('ABORTED without a reason, and FAILED inside RecordFailure (a Lambda error): recorded with what is known', async () => {
    await settle(event({ status: 'ABORTED' }));
    const lambdaCause = JSON.stringify({ errorType: 'ServiceUnavailable', errorMessage: 'DynamoDB is unavailable: InternalServerError' });
    await settle(event({ status: 'FAILED', error: 'ServiceUnavailable', cause: lambdaCause, stopDate: STOPPED + 1 }));
    const reasons = (await decisions.jobHistory(job.jobId)).map((r) => r.reason);
    expect(reasons).toEqual(['ExecutionAborted: the execution was stopped (StopExecution) before it recorded a decision', 'ServiceUnavailable: DynamoDB is unavailable: InternalServerError']);
    expect(sent).toHaveLength(2);
  });

  it('reads the input with DescribeExecution when the event does not carry it', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ executionArn, status: 'TIMED_OUT', input: JSON.stringify({ job }) });
    await settle(event({ status: 'TIMED_OUT', input: undefined, inputDetails: { included: false } }));
    expect(sfn.commandCalls(DescribeExecutionCommand).map((c) => c.args[0].input)).toEqual([{ executionArn }]);
    expect(sent.map((s) => s.job)).toEqual([job]);
  });

  it('a redelivered event writes the same FAILURE item again (its time is the stop time), not a second one', async () => {
    await settle(event({ status: 'TIMED_OUT' }));
    await settle(event({ status: 'TIMED_OUT' }));
    expect(await decisions.jobHistory(job.jobId)).toHaveLength(1);
  });

  it('an input that holds no job fails loudly (EventBridge and Lambda retry, then the dead-letter queue keeps the event)', async () => {
    await expect(settle(event({ status: 'TIMED_OUT', input: '{"hello":"world"}' }))).rejects.toMatchObject({ name: 'UnreadableExecutionInput' });
    await expect(settle(event({ status: 'TIMED_OUT', input: 'not json' }))).rejects.toMatchObject({ name: 'UnreadableExecutionInput' });
    expect(sent).toEqual([]);
  });
});

describe('nothing to settle', () => {
  it('FAILED with ModerationFailed: the fail path recorded and dead-lettered the job already', async () => {
    const outcome = await settle(event({ status: 'FAILED', error: 'ModerationFailed', cause: 'The job was recorded as FAILED and sent to the dead-letter queue.' }));
    expect(outcome.action).toBe('ignored');
    expect(await decisions.jobHistory(job.jobId)).toEqual([]);
    expect(sent).toEqual([]);
    expect(sfn.commandCalls(DescribeExecutionCommand)).toHaveLength(0);
  });

  it('a job that has a decision (another execution decided it) gets no FAILED record', async () => {
    const decided: Decision = {
      kind: 'automated',
      jobId: job.jobId,
      bucket: job.bucket,
      key: job.key,
      status: 'APPROVED',
      decidedBy: 'rekognition',
      decidedAt: '2026-11-25T10:05:00.000Z',
      labels: [],
      timings: {},
      estimatedCostUsd: 0.001,
    };
    await decisions.putAutomatedOnce(decided);
    const outcome = await settle(event({ status: 'TIMED_OUT' }));
    expect(outcome).toEqual({ action: 'already-decided', jobId: job.jobId, status: 'APPROVED' });
    expect((await decisions.jobHistory(job.jobId)).map((r) => r.status)).toEqual(['APPROVED']);
    expect(sent).toEqual([]);
  });

  it.each(['RUNNING', 'SUCCEEDED', 'PENDING_REDRIVE'])('status %s', async (status) => {
    expect((await settle(event({ status }))).action).toBe('ignored');
    expect(sent).toEqual([]);
  });

  it('another event', async () => {
    expect((await settle(event({ status: 'FAILED' }, 'Step Functions State Machine Status Change'))).action).toBe('ignored');
    expect(sent).toEqual([]);
  });
});
