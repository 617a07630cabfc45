/**
 * The whole local pipeline in this process, with the real handlers and a fake Rekognition endpoint:
 * PutObject → notification → intake queue → poller → ingest → StartSyncExecution → the ASL's steps →
 * a decision in the table, the object tagged or quarantined. Then a restart on the same data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CopyObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { localClientConfig, startLocalStack, LocalStackConfigurationError, type LocalStack, type LocalStackOptions } from '../../local/stack.ts';
import { DynamoDecisionStore } from '../../functions/store/decision-store.ts';
import { eventually, imageRecords, jpeg, RETRY_NOW, startFakeRekognition, tempHome, type FakeRekognition } from './stack-helpers.ts';

const retryIntervalOverrides = RETRY_NOW;

describe('local stack (EXPRESS) with the real handlers', () => {
  const home = tempHome();
  let rekognition: FakeRekognition;
  let stack: LocalStack;
  let s3: S3Client;
  let sqs: SQSClient;
  let table: DynamoDBDocumentClient;
  let options: LocalStackOptions;
  const savedEnv = { ...process.env };

  const connect = () => {
    const config = localClientConfig(stack);
    s3 = new S3Client(config.s3);
    sqs = new SQSClient(config.sqs);
    table = DynamoDBDocumentClient.from(new DynamoDBClient(config.dynamodb));
  };
  const disconnect = () => {
    s3.destroy();
    sqs.destroy();
    table.destroy();
  };
  const decisionFor = (key: string) =>
    eventually(async () => {
      const records = await imageRecords(stack, table, key);
      return records.length ? records : undefined;
    });

  beforeAll(async () => {
    rekognition = await startFakeRekognition();
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_PROFILE;
    options = { home: home.dir, detector: { endpoint: rekognition.endpoint }, retryIntervalOverrides, quiet: true, visibilityTimeoutSeconds: 5 };
    stack = await startLocalStack(options);
    connect();
  });

  afterAll(async () => {
    disconnect();
    await stack?.stop();
    await rekognition.close();
    home.remove();
    process.env = savedEnv;
  });

  it('sets the handlers environment (endpoints, names, dummy credentials) and binds every service to 127.0.0.1', () => {
    for (const endpoint of Object.values(stack.endpoints)) expect(new URL(endpoint).hostname).toBe('127.0.0.1');
    expect(stack.env).toMatchObject({
      AWS_ENDPOINT_URL_S3: stack.endpoints.s3,
      AWS_ENDPOINT_URL_SQS: stack.endpoints.sqs,
      AWS_ENDPOINT_URL_DYNAMODB: stack.endpoints.dynamodb,
      AWS_ENDPOINT_URL_SFN: stack.endpoints.stepfunctions,
      AWS_ENDPOINT_URL_REKOGNITION: rekognition.endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      DECISION_TABLE: 'moderation-decisions',
      UPLOADS_BUCKET: 'moderation-uploads',
      UPLOADS_PREFIX: 'uploads/',
      QUARANTINE_BUCKET: 'moderation-quarantine',
      DEAD_LETTER_QUEUE_URL: stack.names.deadLetterQueueUrl,
      STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:moderation',
      WORKFLOW_TYPE: 'EXPRESS',
      MODERATION_POLICY: 'standard',
      STATUS_SHARDS: '8',
      AWS_ACCESS_KEY_ID: 'local',
    });
    for (const [key, value] of Object.entries(stack.env)) expect(process.env[key], key).toBe(value);
    expect(stack.names).toMatchObject({ uploadsBucket: 'moderation-uploads', quarantineBucket: 'moderation-quarantine', decisionTable: 'moderation-decisions', uploadsPrefix: 'uploads/', statusShards: 8 });
  });

  it('moderates uploads end to end: APPROVED is tagged, REJECTED quarantined, BORDERLINE held for REVIEW (review off)', async () => {
    const image = await jpeg();
    const keys = { ok: 'uploads/alice/beach day.jpg', bad: 'uploads/bob/reject.jpg', maybe: 'uploads/carol/borderline.jpg' };
    for (const key of Object.values(keys)) await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: image, ContentType: 'image/jpeg' }));

    const [approved] = await decisionFor(keys.ok);
    expect(approved).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition', uploader: 'alice', key: keys.ok, sk: 'DECISION#auto' });
    expect(approved!.executionId).toMatch(/^arn:aws:states:us-east-1:000000000000:express:moderation:/);
    const [rejected] = await decisionFor(keys.bad);
    expect(rejected).toMatchObject({ status: 'REJECTED', uploader: 'bob' });
    const [review] = await decisionFor(keys.maybe);
    expect(review).toMatchObject({ status: 'REVIEW', uploader: 'carol' });

    // Applied: tags on the kept objects, the rejected one moved to quarantine (a Copy: no new job).
    const tags = await eventually(async () => {
      const { TagSet = [] } = await s3.send(new GetObjectTaggingCommand({ Bucket: stack.names.uploadsBucket, Key: keys.ok }));
      return TagSet.length ? TagSet : undefined;
    });
    expect(tags).toEqual(expect.arrayContaining([expect.objectContaining({ Value: 'APPROVED' })]));
    const quarantined = await eventually(async () => {
      const { Contents = [] } = await s3.send(new ListObjectsV2Command({ Bucket: stack.names.quarantineBucket }));
      return Contents.length ? Contents : undefined;
    });
    expect(quarantined.map((o) => o.Key)).toEqual([`${stack.names.uploadsBucket}/${keys.bad}`]);
    // The copy lands before the original is deleted: wait for the move to finish.
    const gone = await eventually(async () => {
      try {
        await s3.send(new HeadObjectCommand({ Bucket: stack.names.uploadsBucket, Key: keys.bad }));
        return undefined;
      } catch (err) {
        return err as Error;
      }
    });
    expect(gone.name).toBe('NotFound');

    // The status index answers an auditor's query.
    const store = new DynamoDecisionStore({ client: table, tableName: stack.names.decisionTable, statusShards: stack.names.statusShards });
    const { items: reviews, plan } = await store.query({ statuses: ['REVIEW'] });
    expect(plan.index).toBe('byStatus');
    expect(reviews.map((r) => r.key)).toEqual([keys.maybe]);
    expect(rekognition.calls.filter((c) => c.target === 'RekognitionService.DetectModerationLabels')).toHaveLength(3);
  });

  it('a Copy into the uploads prefix is moderated once; a key outside it starts nothing; a redelivered notification is not decided twice', async () => {
    const image = await jpeg(128, 128, 10);
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: 'elsewhere/x.jpg', Body: image }));
    await s3.send(new CopyObjectCommand({ Bucket: stack.names.uploadsBucket, Key: 'uploads/dave/copy.jpg', CopySource: `${stack.names.uploadsBucket}/elsewhere/x.jpg` }));
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: 'uploads/dave/once.jpg', Body: image }));
    const [first] = await decisionFor('uploads/dave/once.jpg');

    // SQS is at-least-once: deliver the same S3 event again, as S3 or SQS may.
    const execution = stack.services.stepFunctions.executions().find((e) => JSON.parse(e.input).job.key === 'uploads/dave/once.jpg')!;
    const job = JSON.parse(execution.input).job;
    const again = {
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          awsRegion: 'us-east-1',
          eventTime: job.eventTime,
          eventName: 'ObjectCreated:Put',
          s3: { s3SchemaVersion: '1.0', bucket: { name: job.bucket, arn: `arn:aws:s3:::${job.bucket}` }, object: { key: 'uploads/dave/once.jpg', size: job.size, eTag: job.eTag, sequencer: job.sequencer } },
        },
      ],
    };
    const before = stack.services.stepFunctions.executions().length;
    await sqs.send(new SendMessageCommand({ QueueUrl: stack.names.intakeQueueUrl, MessageBody: JSON.stringify(again) }));
    await eventually(async () => (stack.services.stepFunctions.executions().length > before && stack.services.stepFunctions.running() === 0 ? true : undefined));
    await stack.services.poller.idle();

    const decisions = await decisionFor('uploads/dave/once.jpg');
    expect(decisions).toHaveLength(1);
    expect(decisions[0]!.decidedAt).toBe(first!.decidedAt);
    // A rename by copy is new content: decided once, like an upload.
    expect(await decisionFor('uploads/dave/copy.jpg')).toHaveLength(1);
    const jobs = stack.services.stepFunctions.executions().map((e) => JSON.parse(e.input).job as { bucket: string; key: string });
    expect(jobs.filter((j) => j.key === 'uploads/dave/copy.jpg')).toHaveLength(1);
    expect(jobs.map((j) => j.key)).not.toContain('elsewhere/x.jpg');
    // No loop: the quarantine copies the apply step made (a CopyObject) started no job.
    expect(jobs.every((j) => j.bucket === stack.names.uploadsBucket)).toBe(true);
  });

  it('a job that stays broken is recorded FAILED and dead-lettered; the intake message is consumed', async () => {
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: 'uploads/erin/broken.jpg', Body: await jpeg() }));
    const [failed] = await decisionFor('uploads/erin/broken.jpg');
    expect(failed).toMatchObject({ status: 'FAILED', uploader: 'erin' });
    expect(failed!.sk).toMatch(/^FAILURE#/);
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.names.deadLetterQueueUrl, WaitTimeSeconds: 2, MessageAttributeNames: ['All'] }));
    expect(Messages).toHaveLength(1);
    const body = JSON.parse(Messages[0]!.Body!);
    expect(body.moderationJob.key).toBe('uploads/erin/broken.jpg');
    expect(body.error.Error).toBe('ServiceUnavailable');
    // Retried per the ASL (3 attempts after the first), then caught.
    expect(rekognition.calls.filter((c) => c.body.Image?.S3Object?.Name === 'uploads/erin/broken.jpg')).toHaveLength(4);
    await stack.services.poller.idle();
    expect(stack.services.poller.stats().retried).toBe(0);
    // Put it back for the restart test below.
    await sqs.send(new SendMessageCommand({ QueueUrl: stack.names.deadLetterQueueUrl, MessageBody: Messages[0]!.Body!, MessageAttributes: { errorName: { DataType: 'String', StringValue: 'ServiceUnavailable' } } }));
  });

  it('refuses a second stack in the same process while one runs', async () => {
    await expect(startLocalStack(options)).rejects.toBeInstanceOf(LocalStackConfigurationError);
  });

  it('restarts on the same data: decisions, objects and queued messages are still there', async () => {
    disconnect();
    await stack.stop();
    expect(process.env.AWS_ENDPOINT_URL_S3).toBeUndefined();
    await expect(startLocalStack({ ...options, workflowType: 'STANDARD' })).rejects.toThrow(/WORKFLOW_TYPE/);

    stack = await startLocalStack(options);
    connect();
    const [approved] = await decisionFor('uploads/alice/beach day.jpg');
    expect(approved!.status).toBe('APPROVED');
    await s3.send(new HeadObjectCommand({ Bucket: stack.names.uploadsBucket, Key: 'uploads/alice/beach day.jpg' }));
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.names.deadLetterQueueUrl, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
    expect(Messages.map((m) => JSON.parse(m.Body!).moderationJob.key)).toEqual(['uploads/erin/broken.jpg']);
    expect(Messages[0]!.MessageAttributes?.errorName?.StringValue).toBe('ServiceUnavailable');
    // And the restarted pipeline still moderates.
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: 'uploads/frank/after.jpg', Body: await jpeg() }));
    expect((await decisionFor('uploads/frank/after.jpg'))[0]!.status).toBe('APPROVED');
  });
});
