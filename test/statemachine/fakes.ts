/**
 * In-memory stand-ins for S3 and SQS behind aws-sdk-client-mock, and the in-memory decision store, so the state-machine
 * tests run the real handlers and observe what they did (objects moved, items written, messages
 * sent) rather than which calls were made.
 */
import { InMemoryDecisionStore } from '../../functions/store/memory.ts';
import { useStores } from '../../functions/stores.ts';
import { mockClient } from 'aws-sdk-client-mock';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createHash } from 'node:crypto';
import { LocalWorkflow, type StepFunction } from '../../local/workflow.ts';

export const UPLOADS = 'uploads-bucket';
export const QUARANTINE = 'quarantine-bucket';
export const DLQ_URL = 'http://sqs.local/000000000000/moderation-dlq';

/**
 * The environment the handlers read, set before they are imported (loadHandlers): fake credentials,
 * the table, the buckets, the dead-letter queue, quiet logs and metrics; `settings` adds the policy and the rest.
 */
export function useWorkflowEnv(settings: Record<string, string>): void {
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    DECISION_TABLE: 'decisions',
    UPLOADS_BUCKET: UPLOADS,
    QUARANTINE_BUCKET: QUARANTINE,
    DEAD_LETTER_QUEUE_URL: DLQ_URL,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    ...settings,
  });
}

const STEPS = ['detect', 'review', 'record', 'apply', 'fail'] as const;
export type Handlers = Record<(typeof STEPS)[number], StepFunction>;

/** The real handlers, imported now (so after vi.resetModules, new module instances). */
export async function loadHandlers(): Promise<Handlers> {
  const entries = await Promise.all(STEPS.map(async (step) => [step, ((await import(`../../functions/${step}.ts`)) as { handler: StepFunction }).handler] as const));
  return Object.fromEntries(entries) as Handlers;
}

/** The state machine over `functions`, with retries immediate. Building one validates the definition (about half a second). */
export function workflowOf(functions: Handlers, contextualReview: 'enabled' | 'disabled' = 'disabled'): LocalWorkflow {
  return new LocalWorkflow({
    substitutions: { DetectFunctionArn: 'detect', ReviewFunctionArn: 'review', RecordFunctionArn: 'record', ApplyFunctionArn: 'apply', FailFunctionArn: 'fail', ContextualReview: contextualReview },
    functions,
    retryIntervalOverrides: { Detect: 0, Review: 0, Record: 0, Apply: 0, RecordFailure: 0 },
  });
}

export interface StoredObject {
  body: Buffer;
  eTag: string;
  tags: { Key: string; Value: string }[];
}

function awsError(name: string, status: number, message = name): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

export function fakeS3() {
  const objects = new Map<string, StoredObject>();
  const id = (bucket: string, key: string) => `${bucket}/${key}`;
  const mock = mockClient(S3Client);
  const find = (bucket?: string, key?: string, notFound = 'NoSuchKey') => {
    const found = objects.get(id(bucket!, key!));
    if (!found) throw awsError(notFound, 404);
    return found;
  };
  mock.on(HeadObjectCommand).callsFake((input) => {
    const o = find(input.Bucket, input.Key, 'NotFound');
    return { ContentLength: o.body.length, ETag: o.eTag };
  });
  mock.on(GetObjectCommand).callsFake((input) => {
    const o = find(input.Bucket, input.Key);
    let body = o.body;
    const range = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? '');
    if (range) body = body.subarray(Number(range[1]), Number(range[2]) + 1);
    return { ContentLength: body.length, ETag: o.eTag, Body: { transformToByteArray: async () => new Uint8Array(body) } };
  });
  mock.on(GetObjectTaggingCommand).callsFake((input) => ({ TagSet: find(input.Bucket, input.Key).tags }));
  mock.on(PutObjectTaggingCommand).callsFake((input) => {
    find(input.Bucket, input.Key).tags = input.Tagging.TagSet;
    return {};
  });
  mock.on(CopyObjectCommand).callsFake((input) => {
    const [bucket, ...rest] = decodeURIComponent(String(input.CopySource).split('?')[0]!).split('/');
    const source = find(bucket, rest.join('/'));
    if (input.CopySourceIfMatch && input.CopySourceIfMatch !== source.eTag) throw awsError('PreconditionFailed', 412);
    const tags = String(input.Tagging ?? '')
      .split('&')
      .filter(Boolean)
      .map((pair) => {
        const [k, v] = pair.split('=');
        return { Key: decodeURIComponent(k!), Value: decodeURIComponent(v ?? '') };
      });
    objects.set(id(input.Bucket!, input.Key!), { body: source.body, eTag: source.eTag, tags });
    return {};
  });
  mock.on(DeleteObjectCommand).callsFake((input) => {
    objects.delete(id(input.Bucket!, input.Key!));
    return {};
  });
  return {
    mock,
    objects,
    put(bucket: string, key: string, body: Buffer): StoredObject {
      const stored = { body, eTag: `"${createHash('md5').update(body).digest('hex')}"`, tags: [] };
      objects.set(id(bucket, key), stored);
      return stored;
    },
    get(bucket: string, key: string): StoredObject | undefined {
      return objects.get(id(bucket, key));
    },
  };
}

/**
 * The decision history in memory: the handlers get it as their decision store (functions/stores.ts),
 * with the table's keys and conditional writes (functions/store/memory.ts).
 */
export function fakeDecisionTable() {
  const store = new InMemoryDecisionStore();
  useStores({ decisions: store });
  return {
    store,
    items: store.items,
    forJob(jobId: string) {
      return [...store.items.values()].filter((item) => item.jobId === jobId);
    },
  };
}

export function fakeQueue() {
  const sent: { QueueUrl?: string; MessageBody?: string; MessageAttributes?: unknown }[] = [];
  const mock = mockClient(SQSClient);
  mock.on(SendMessageCommand).callsFake((input) => {
    sent.push(input);
    return { MessageId: String(sent.length) };
  });
  return { mock, sent };
}
