/**
 * STANDARD workflows lose nothing (docs/architecture.md, invariant 1), on the local stack with the
 * real handlers: ingest deletes the intake message once an execution has started, so an execution
 * that times out (TimeoutSeconds, made 3 s here by the stack's local override) or is stopped
 * (StopExecution) is settled by functions/settle.ts, which the local Step Functions endpoint's
 * status change events reach as EventBridge's rule does on AWS: a FAILED record with the reason and
 * the job in the dead-letter queue. A redelivery of the S3 event then meets ExecutionAlreadyExists,
 * sees that execution ended, and starts a replay-named one that decides the job.
 * Runs in its own process: the handlers read WORKFLOW_TYPE once, at import.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectTaggingCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { localClientConfig, startLocalStack, type LocalStack } from '../../local/stack.ts';
import { buildS3Notification } from '../../functions/lib/s3-event.ts';
import type { Job, ModerationState } from '../../functions/lib/types.ts';
import { eventually, jpeg, RETRY_NOW, startFakeRekognition, tempHome, type FakeRekognition } from './stack-helpers.ts';

const TIMEOUT_SECONDS = 3;

describe('local stack (STANDARD): executions that end badly are settled, and a redelivery decides the job', () => {
  const home = tempHome();
  let rekognition: FakeRekognition;
  let stack: LocalStack;
  let s3: S3Client;
  let sqs: SQSClient;
  let sfn: SFNClient;
  let table: DynamoDBDocumentClient;
  const savedEnv = { ...process.env };
  /** Keys whose next detect call waits here until the test opens the gate. */
  const held = new Map<string, () => void>();
  const holding = new Set<string>();

  beforeAll(async () => {
    rekognition = await startFakeRekognition();
    stack = await startLocalStack({
      home: home.dir,
      workflowType: 'STANDARD',
      detector: { endpoint: rekognition.endpoint },
      executionTimeoutSeconds: TIMEOUT_SECONDS,
      functions: {
        // The real detect step, held for the first try of a key marked 'hold'.
        detect: (async (state: ModerationState) => {
          if (state.job.key.includes('hold') && !holding.has(state.job.key)) {
            holding.add(state.job.key);
            await new Promise<void>((resolve) => held.set(state.job.key, resolve));
          }
          const { handler } = await import('../../functions/detect.ts');
          return handler(state);
        }) as never,
      },
      retryIntervalOverrides: RETRY_NOW,
      persistQueues: false,
      quiet: true,
    });
    const config = localClientConfig(stack);
    s3 = new S3Client(config.s3);
    sqs = new SQSClient(config.sqs);
    sfn = new SFNClient(config.stepfunctions);
    table = DynamoDBDocumentClient.from(new DynamoDBClient(config.dynamodb));
  });

  afterAll(async () => {
    for (const open of held.values()) open();
    for (const c of [s3, sqs, sfn, table]) c?.destroy();
    await stack?.stop();
    await rekognition?.close();
    home.remove();
    process.env = savedEnv;
  });

  const recordsOf = async (key: string) =>
    ((await table.send(new ScanCommand({ TableName: stack.names.decisionTable }))).Items ?? []).filter((item) => item.key === key);
  /** The dead-letter queue's messages for a key, peeked (visibility 0: they stay; one receive may return a message more than once). */
  const deadLettersFor = async (key: string) => {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.names.deadLetterQueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }),
    );
    const unique = new Map(Messages.filter((m) => m.MessageAttributes?.objectKey?.StringValue === key).map((m) => [m.MessageId, m]));
    return [...unique.values()].map((m) => JSON.parse(m.Body!) as { moderationJob: Job; error: { Error: string }; executionId: string });
  };
  const executionsOf = (key: string) => stack.services.stepFunctions.executions().filter((e) => (JSON.parse(e.input) as ModerationState).job.key === key);
  /** The S3 event for a job again: what S3's at-least-once delivery (or `reconcile --enqueue`) sends. */
  const redeliver = (job: Job) =>
    sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.names.intakeQueueUrl,
        MessageBody: JSON.stringify(buildS3Notification([{ bucket: job.bucket, key: job.key, size: job.size ?? 1, eTag: job.eTag!, sequencer: job.sequencer!, versionId: job.versionId }])),
      }),
    );
  const quiet = () => eventually(async () => (stack.services.stepFunctions.running() === 0 && stack.services.stepFunctions.statusChangesInFlight() === 0 ? true : undefined), 20_000);

  it('an execution that times out: a FAILED record with the reason, the job in the DLQ; a redelivery starts a new execution that decides it', async () => {
    const key = 'uploads/hana/hold-timeout.jpg';
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: await jpeg() }));

    // The first execution waits in detect past the TimeoutSeconds: TIMED_OUT, then settled.
    const [failure] = await eventually(async () => {
      const records = await recordsOf(key);
      return records.length ? records : undefined;
    }, 20_000);
    const first = executionsOf(key)[0];
    expect(first).toMatchObject({ status: 'TIMED_OUT', name: failure.jobId });
    expect(failure).toMatchObject({ kind: 'failure', status: 'FAILED', executionId: first.executionArn, error: { Error: 'States.Timeout' }, uploader: 'hana' });
    expect(failure.reason).toMatch(/^States\.Timeout: /);
    const [dead] = await eventually(async () => {
      const letters = await deadLettersFor(key);
      return letters.length ? letters : undefined;
    });
    expect(dead).toMatchObject({ moderationJob: { jobId: failure.jobId, key }, error: { Error: 'States.Timeout' }, executionId: first.executionArn });
    held.get(key)!();

    // S3 delivers the event again: the name (the job id) is taken by an execution that timed out.
    const stats = stack.services.poller.stats();
    await redeliver(dead.moderationJob);
    const decided = await eventually(async () => (await recordsOf(key)).find((r) => r.kind === 'automated'), 20_000);
    expect(decided).toMatchObject({ status: 'APPROVED', jobId: failure.jobId });
    const executions = executionsOf(key);
    expect(executions).toHaveLength(2);
    expect(executions[1].name).toMatch(new RegExp(`^${failure.jobId}-r\\d{13}$`));
    expect(decided.executionId).toBe(executions[1].executionArn);
    await quiet();
    expect(executionsOf(key).map((e) => e.status)).toEqual(['TIMED_OUT', 'SUCCEEDED']);
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: stack.names.uploadsBucket, Key: key }));
    expect(tags.TagSet).toContainEqual({ Key: 'moderation-status', Value: 'APPROVED' });
    expect(stack.services.poller.stats()).toMatchObject({ retried: stats.retried, handlerErrors: stats.handlerErrors });
    // The SUCCEEDED end settles nothing: still one FAILED record (history) and one dead letter.
    expect((await recordsOf(key)).map((r) => r.status).sort()).toEqual(['APPROVED', 'FAILED']);
    expect(await deadLettersFor(key)).toHaveLength(1);
  });

  it('an execution stopped with StopExecution (ABORTED) is settled with the reason given', async () => {
    const key = 'uploads/ivy/hold-stop.jpg';
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: await jpeg(96, 96, 40) }));
    await eventually(async () => (held.has(key) ? true : undefined));
    const [execution] = executionsOf(key);
    await sfn.send(new StopExecutionCommand({ executionArn: execution.executionArn, error: 'OperatorStopped', cause: 'stuck on a huge TIFF' }));
    const [failure] = await eventually(async () => {
      const records = await recordsOf(key);
      return records.length ? records : undefined;
    });
    expect(failure).toMatchObject({ status: 'FAILED', reason: 'OperatorStopped: stuck on a huge TIFF', executionId: execution.executionArn });
    expect(await eventually(async () => ((await deadLettersFor(key)).length ? deadLettersFor(key) : undefined))).toEqual([
      expect.objectContaining({ error: expect.objectContaining({ Error: 'OperatorStopped' }) }),
    ]);
    held.get(key)!();
    await quiet();
    expect(executionsOf(key).map((e) => e.status)).toEqual(['ABORTED']);
  });

  it("a failure the workflow's fail path handled (ModerationFailed) is recorded and dead-lettered once, not again by settle", async () => {
    const key = 'uploads/juno/broken.jpg';
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: await jpeg(128, 128, 200) }));
    await eventually(async () => (executionsOf(key)[0]?.status === 'FAILED' ? true : undefined), 20_000);
    await quiet();
    expect(executionsOf(key)[0]).toMatchObject({ error: 'ModerationFailed' });
    const records = await recordsOf(key);
    expect(records.map((r) => r.status)).toEqual(['FAILED']);
    expect(records[0].error.Error).toBe('ServiceUnavailable');
    expect(await deadLettersFor(key)).toHaveLength(1);
  });
});
