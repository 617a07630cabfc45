/**
 * The local stack with a STANDARD workflow (StartExecution named by the job id, run in the
 * background) and contextual review on, the review step replaced by a stub (no Bedrock here).
 * Runs in its own process: the handlers read WORKFLOW_TYPE once, at import.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { localClientConfig, startLocalStack, type DetectorStartOptions, type LocalStack } from '../../local/stack.ts';
import type { ModerationState } from '../../functions/lib/types.ts';
import { eventually, jpeg, RETRY_NOW, startFakeRekognition, tempHome, type FakeRekognition } from './stack-helpers.ts';

describe('local stack (STANDARD, contextual review on)', () => {
  const home = tempHome();
  let rekognition: FakeRekognition;
  let stack: LocalStack;
  let s3: S3Client;
  let sqs: SQSClient;
  let sfn: SFNClient;
  let table: DynamoDBDocumentClient;
  const reviewed: string[] = [];
  let detectorOptions: DetectorStartOptions | undefined;
  let detectorClosed = false;
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    stack = await startLocalStack({
      home: home.dir,
      workflowType: 'STANDARD',
      contextualReview: { modelId: 'stub.model-v1' },
      // The factory form (what starts the nsfwjs detector by default), with the fake.
      detector: {
        start: async (options) => {
          detectorOptions = options;
          rekognition = await startFakeRekognition(options.port);
          return { endpoint: rekognition.endpoint, close: async () => void (detectorClosed = true) };
        },
      },
      functions: {
        review: (async (state: ModerationState) => {
          reviewed.push(state.job.key);
          return { ...state, review: { decision: 'REJECT', reason: 'the stub saw enough', categories: ['Explicit'], modelId: 'stub.model-v1', durationMs: 1 } };
        }) as never,
      },
      retryIntervalOverrides: RETRY_NOW,
      quiet: true,
    });
    const config = localClientConfig(stack);
    s3 = new S3Client(config.s3);
    sqs = new SQSClient(config.sqs);
    sfn = new SFNClient(config.stepfunctions);
    table = DynamoDBDocumentClient.from(new DynamoDBClient(config.dynamodb));
  });

  afterAll(async () => {
    for (const c of [s3, sqs, sfn, table]) c?.destroy();
    await stack?.stop();
    expect(detectorClosed).toBe(true);
    await rekognition.close();
    home.remove();
    process.env = savedEnv;
  });

  // The table also holds the content index (never paying twice for the same bytes): decisions only.
  const decisions = async () => ((await table.send(new ScanCommand({ TableName: stack.names.decisionTable }))).Items ?? []).filter((item) => String(item.sk).startsWith('DECISION#'));

  it('starts one named execution per job; a duplicate delivery is ExecutionAlreadyExists, handled, and decided once', async () => {
    expect(stack.env.WORKFLOW_TYPE).toBe('STANDARD');
    expect(detectorOptions).toMatchObject({ host: '127.0.0.1', port: 0, s3: { endpoint: stack.endpoints.s3, forcePathStyle: true } });
    expect(stack.endpoints.rekognition).toBe(rekognition.endpoint);
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: 'uploads/gina/borderline.jpg', Body: await jpeg() }));
    const [decision] = await eventually(async () => {
      const items = await decisions();
      return items.length ? items : undefined;
    });
    expect(decision).toMatchObject({ status: 'REJECTED', decidedBy: 'bedrock:stub.model-v1', uploader: 'gina' });
    expect(reviewed).toEqual(['uploads/gina/borderline.jpg']);
    expect(decision!.executionId).toBe(`arn:aws:states:us-east-1:000000000000:execution:moderation:${decision!.jobId}`);
    const described = await eventually(async () => {
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn: decision!.executionId }));
      return d.status === 'RUNNING' ? undefined : d;
    });
    expect(described.status).toBe('SUCCEEDED');
    expect(JSON.parse(described.output!).applied.action).toBe('quarantined');

    // The same S3 event again: the execution name (the job id) is taken.
    const job = JSON.parse(described.input!).job;
    const event = {
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          awsRegion: 'us-east-1',
          eventTime: job.eventTime,
          eventName: 'ObjectCreated:Put',
          s3: { s3SchemaVersion: '1.0', bucket: { name: job.bucket }, object: { key: 'uploads/gina/borderline.jpg', size: job.size, eTag: job.eTag, sequencer: job.sequencer } },
        },
      ],
    };
    const batchesBefore = stack.services.poller.stats().batches;
    await sqs.send(new SendMessageCommand({ QueueUrl: stack.names.intakeQueueUrl, MessageBody: JSON.stringify(event) }));
    await eventually(async () => (stack.services.poller.stats().batches > batchesBefore ? true : undefined));
    await stack.services.poller.idle();
    expect(stack.services.poller.stats()).toMatchObject({ retried: 0, handlerErrors: 0 });
    expect(stack.services.stepFunctions.executions()).toHaveLength(1);
    expect(await decisions()).toHaveLength(1);
  });
});
