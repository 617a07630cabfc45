/**
 * The ingest handler: SQS batch → one workflow per job, partial batch failures, malformed bodies
 * parked in the dead-letter queue, Express and Standard start semantics.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand, StartSyncExecutionCommand } from '@aws-sdk/client-sfn';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { buildS3Notification, deadLetterBody } from '../../functions/lib/s3-event.ts';
import { jobIdFor } from '../../functions/lib/job-id.ts';

const DLQ_URL = 'http://sqs.local/000000000000/dlq';
const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:moderation';

function baseEnv(workflowType: string) {
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    STATE_MACHINE_ARN: ARN,
    WORKFLOW_TYPE: workflowType,
    UPLOADS_BUCKET: 'uploads',
    UPLOADS_PREFIX: 'uploads/',
    DEAD_LETTER_QUEUE_URL: DLQ_URL,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
}

async function loadHandler(workflowType: 'EXPRESS' | 'STANDARD') {
  baseEnv(workflowType);
  vi.resetModules();
  return (await import('../../functions/ingest.ts')).handler;
}

function message(id: string, body: string): SQSRecord {
  return {
    messageId: id,
    receiptHandle: `rh-${id}`,
    body,
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'x', ApproximateFirstReceiveTimestamp: '0' },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:intake',
    awsRegion: 'us-east-1',
  };
}

function upload(key: string, bucket = 'uploads'): string {
  return JSON.stringify(buildS3Notification([{ bucket, key, size: 10, eTag: 'abc', sequencer: '0A1B' }]));
}

const sfn = mockClient(SFNClient);
const sqs = mockClient(SQSClient);

beforeEach(() => {
  sfn.reset();
  sqs.reset();
  sqs.on(SendMessageCommand).resolves({ MessageId: 'm' });
});

describe('ingest (Express)', () => {
  it('starts one synchronous execution per job and reports only the failed message', async () => {
    const handler = await loadHandler('EXPRESS');
    sfn.on(StartSyncExecutionCommand).callsFake((input) => {
      const key = JSON.parse(input.input).job.key as string;
      if (key.includes('bad')) return { executionArn: 'x', status: 'FAILED', error: 'States.Runtime', cause: 'boom' };
      if (key.includes('handled')) return { executionArn: 'y', status: 'FAILED', error: 'ModerationFailed' };
      return { executionArn: 'z', status: 'SUCCEEDED' };
    });
    const event: SQSEvent = {
      Records: [message('1', upload('uploads/a/ok.jpg')), message('2', upload('uploads/a/bad.jpg')), message('3', upload('uploads/a/handled.jpg'))],
    };
    const result = await handler(event);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: '2' }]);
    const calls = sfn.commandCalls(StartSyncExecutionCommand).map((c) => c.args[0].input);
    expect(calls).toHaveLength(3);
    expect(calls[0]!.stateMachineArn).toBe(ARN);
    expect(JSON.parse(calls[0]!.input!).job).toMatchObject({ bucket: 'uploads', key: 'uploads/a/ok.jpg', uploader: 'a' });
  });

  it('retries a message when Step Functions throttles', async () => {
    const handler = await loadHandler('EXPRESS');
    sfn.on(StartSyncExecutionCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }));
    const result = await handler({ Records: [message('1', upload('uploads/a/x.jpg'))] });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: '1' }]);
  });

  it('parks a malformed body in the dead-letter queue with the reason, without failing its neighbours', async () => {
    const handler = await loadHandler('EXPRESS');
    sfn.on(StartSyncExecutionCommand).resolves({ executionArn: 'z', status: 'SUCCEEDED' });
    const result = await handler({ Records: [message('1', 'not json {'), message('2', upload('uploads/a/ok.jpg'))] });
    expect(result.batchItemFailures).toEqual([]);
    const sent = sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ QueueUrl: DLQ_URL, MessageBody: 'not json {' });
    expect(sent[0]!.MessageAttributes?.errorName?.StringValue).toBe('MalformedMessage');
    expect(sfn.commandCalls(StartSyncExecutionCommand)).toHaveLength(1);
  });

  it('ignores test events, foreign buckets and keys outside the prefix without starting anything', async () => {
    const handler = await loadHandler('EXPRESS');
    const testEvent = JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: '2026-11-25T00:00:00Z', Bucket: 'uploads', RequestId: 'r', HostId: 'h' });
    const result = await handler({ Records: [message('1', testEvent), message('2', upload('uploads/a/x.jpg', 'other')), message('3', upload('elsewhere/x.jpg'))] });
    expect(result.batchItemFailures).toEqual([]);
    expect(sfn.commandCalls(StartSyncExecutionCommand)).toHaveLength(0);
  });
});

describe('ingest (Standard)', () => {
  const exists = () => Object.assign(new Error('exists'), { name: 'ExecutionAlreadyExists', $metadata: { httpStatusCode: 400 } });

  it.each(['RUNNING', 'PENDING_REDRIVE', 'SUCCEEDED'] as const)('names the execution by the job id; ExecutionAlreadyExists of a %s execution means the job is in hand', async (status) => {
    const handler = await loadHandler('STANDARD');
    sfn.on(StartExecutionCommand).resolvesOnce({ executionArn: 'a', startDate: new Date() }).rejects(exists());
    sfn.on(DescribeExecutionCommand).resolves({ status });
    const body = upload('uploads/a/x.jpg');
    const result = await handler({ Records: [message('1', body)] });
    const second = await handler({ Records: [message('2', body)] });
    expect(result.batchItemFailures).toEqual([]);
    expect(second.batchItemFailures).toEqual([]);
    const names = sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input.name);
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^[0-9a-f]{40}$/);
    expect(names[1]).toBe(names[0]);
    // The execution it asked about: the state machine's ARN with `execution` and the name.
    expect(sfn.commandCalls(DescribeExecutionCommand).map((c) => c.args[0].input.executionArn)).toEqual([
      `arn:aws:states:us-east-1:000000000000:execution:moderation:${names[0]}`,
    ]);
  });

  it.each(['FAILED', 'TIMED_OUT', 'ABORTED'] as const)(
    'ExecutionAlreadyExists of a %s execution: the delivery starts a replay-named execution (the job is not dropped)',
    async (status) => {
      const handler = await loadHandler('STANDARD');
      sfn.on(StartExecutionCommand).rejectsOnce(exists()).resolves({ executionArn: 'b', startDate: new Date() });
      sfn.on(DescribeExecutionCommand).resolves({ status });
      const before = Date.now();
      const result = await handler({ Records: [message('1', upload('uploads/a/x.jpg'))] });
      expect(result.batchItemFailures).toEqual([]);
      const starts = sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input);
      expect(starts).toHaveLength(2);
      const [jobId, retry] = [starts[0]!.name!, starts[1]!.name!];
      expect(retry).toMatch(new RegExp(`^${jobId}-r\\d{13}$`));
      expect(Number(retry.split('-r')[1])).toBeGreaterThanOrEqual(before);
      expect(retry.length).toBeLessThanOrEqual(80);
      expect(starts[1]!.input).toBe(starts[0]!.input);
    },
  );

  it('an execution that exists but is no longer described (its history is gone) counts as over: a replay-named execution starts', async () => {
    const handler = await loadHandler('STANDARD');
    sfn.on(StartExecutionCommand).rejectsOnce(exists()).resolves({ executionArn: 'b', startDate: new Date() });
    sfn.on(DescribeExecutionCommand).rejects(Object.assign(new Error('gone'), { name: 'ExecutionDoesNotExist', $metadata: { httpStatusCode: 400 } }));
    const result = await handler({ Records: [message('1', upload('uploads/a/x.jpg'))] });
    expect(result.batchItemFailures).toEqual([]);
    expect(sfn.commandCalls(StartExecutionCommand)[1]!.args[0].input.name).toMatch(/-r\d{13}$/);
  });

  it('two deliveries in the same millisecond: the second finds the replay name taken and leaves the job to it', async () => {
    const handler = await loadHandler('STANDARD');
    sfn.on(StartExecutionCommand).rejects(exists());
    sfn.on(DescribeExecutionCommand).resolves({ status: 'TIMED_OUT' });
    const result = await handler({ Records: [message('1', upload('uploads/a/x.jpg'))] });
    expect(result.batchItemFailures).toEqual([]);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(2);
  });

  it('a failing DescribeExecution retries the message (never a silent drop)', async () => {
    const handler = await loadHandler('STANDARD');
    sfn.on(StartExecutionCommand).rejects(exists());
    sfn.on(DescribeExecutionCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }));
    const result = await handler({ Records: [message('1', upload('uploads/a/x.jpg'))] });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: '1' }]);
  });

  it('gives a dead-letter replay its own execution name (names are unique for 90 days)', async () => {
    const handler = await loadHandler('STANDARD');
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'a', startDate: new Date() });
    const now = new Date().toISOString();
    const ref = { bucket: 'uploads', key: 'uploads/a/x.jpg', eTag: 'abc', sequencer: '01' };
    const job = { jobId: jobIdFor(ref), ...ref, eventTime: now, receivedAt: now };
    const replay = deadLetterBody(job, { Error: 'ServiceUnavailable', Cause: 'x' }, { failedAt: '2026-11-25T10:00:00.000Z' });
    await handler({ Records: [message('1', replay)] });
    const name = sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input.name!;
    expect(name.startsWith(job.jobId)).toBe(true);
    expect(name).not.toBe(job.jobId);
    expect(name.length).toBeLessThanOrEqual(80);
  });
});

describe('execution names and ARNs', () => {
  it('builds the execution ARN from the state machine ARN (any partition) and refuses anything else', async () => {
    baseEnv('STANDARD');
    vi.resetModules();
    const { executionArnOf, replayName } = await import('../../functions/ingest.ts');
    expect(executionArnOf('arn:aws-cn:states:cn-north-1:123456789012:stateMachine:m', 'abc')).toBe('arn:aws-cn:states:cn-north-1:123456789012:execution:m:abc');
    expect(() => executionArnOf('arn:aws:states:us-east-1:123456789012:execution:m:x', 'abc')).toThrow(/not a state machine ARN/);
    expect(replayName('f'.repeat(40), 1_764_000_000_000)).toBe(`${'f'.repeat(40)}-r1764000000000`);
  });
});
