/**
 * SQS on this machine: local-aws-sqs in-process (JSON and Query protocols), bound to 127.0.0.1, with
 * the intake queue and its dead-letter queue wired like the CDK stack (RedrivePolicy with the
 * MAX_RECEIVE_COUNT of functions/lib/pipeline-settings.ts). local-aws-sqs keeps messages in memory
 * only; `saveMessages` (at a graceful stop) and `restoreMessages` (at start) carry the visible
 * messages of both queues across a restart through JSON-lines files. A process that is killed
 * loses what was on the queues.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { basename, join } from 'node:path';
import { createRequestHandler } from 'local-aws-sqs';
import {
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import { MAX_RECEIVE_COUNT } from '../functions/lib/pipeline-settings.ts';
import { closeServer, endpointOf, listen, LOCAL_ACCOUNT_ID, LOCAL_REGION, LOOPBACK } from './net.ts';

/** The CDK stack's value (one definition for both): a message that failed this many receives moves to the dead-letter queue. */
export { MAX_RECEIVE_COUNT };

/**
 * Longer than the state machine's TimeoutSeconds (270): an EXPRESS job runs inside the ingest call, so
 * a shorter timeout would hand the same message to a second poller while the first is still on it.
 */
export const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 300;

export const INTAKE_QUEUE_NAME = 'moderation-intake';
export const DEAD_LETTER_QUEUE_NAME = 'moderation-dlq';

export interface LocalSqsOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  region?: string;
  accountId?: string;
  intakeQueueName?: string;
  deadLetterQueueName?: string;
  visibilityTimeoutSeconds?: number;
  maxReceiveCount?: number;
}

export interface LocalSqs {
  endpoint: string;
  port: number;
  intakeQueueUrl: string;
  intakeQueueArn: string;
  deadLetterQueueUrl: string;
  deadLetterQueueArn: string;
  /**
   * Drains the visible messages of both queues into `<directory>/<queue>.jsonl` (body and message
   * attributes). Call when nothing consumes the queues any more, just before close.
   */
  saveMessages(directory: string): Promise<{ intake: number; deadLetter: number }>;
  /** Sends back what saveMessages wrote, and removes the files. */
  restoreMessages(directory: string): Promise<{ intake: number; deadLetter: number }>;
  close(): Promise<void>;
}

export interface SavedMessage {
  body: string;
  attributes?: Record<string, MessageAttributeValue>;
}

export function queueArn(name: string, region = LOCAL_REGION, accountId = LOCAL_ACCOUNT_ID): string {
  return `arn:aws:sqs:${region}:${accountId}:${name}`;
}

export async function startLocalSqs(options: LocalSqsOptions = {}): Promise<LocalSqs> {
  const host = options.host ?? LOOPBACK;
  const region = options.region ?? LOCAL_REGION;
  const accountId = options.accountId ?? LOCAL_ACCOUNT_ID;
  const intake = options.intakeQueueName ?? INTAKE_QUEUE_NAME;
  const dlq = options.deadLetterQueueName ?? DEAD_LETTER_QUEUE_NAME;
  const visibility = options.visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS;
  const maxReceiveCount = options.maxReceiveCount ?? MAX_RECEIVE_COUNT;
  if (!Number.isInteger(visibility) || visibility < 0 || visibility > 43_200) {
    throw new RangeError(`visibilityTimeoutSeconds must be an integer from 0 to 43200, got ${visibility}`);
  }

  // The dead-letter queue first: the intake queue's RedrivePolicy must name an existing queue.
  // createRequestHandler rather than createSqsServer: the latter cannot report a port in use.
  const { service, requestHandler } = createRequestHandler({
    port: options.port ?? 0,
    hostname: host,
    region,
    accountId,
    emulateQueueCreationLifecycle: false,
    queues: [
      { QueueName: dlq, Attributes: { MessageRetentionPeriod: 1_209_600 } },
      {
        QueueName: intake,
        Attributes: {
          VisibilityTimeout: visibility,
          MessageRetentionPeriod: 345_600,
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: queueArn(dlq, region, accountId), maxReceiveCount }),
        },
      },
    ],
  });
  const server = createServer(requestHandler);
  const port = await listen(server, options.port ?? 0, host);
  // Queue URLs are built from the service's port: the real one, now that it is bound.
  service.PORT = port;
  const endpoint = endpointOf(port, host);
  const url = (name: string) => `${endpoint}/${accountId}/${name}`;
  const client = new SQSClient({ endpoint, region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 2 });
  const queues = [
    { name: intake, url: url(intake), key: 'intake' as const },
    { name: dlq, url: url(dlq), key: 'deadLetter' as const },
  ];
  return {
    endpoint,
    port,
    intakeQueueUrl: url(intake),
    intakeQueueArn: queueArn(intake, region, accountId),
    deadLetterQueueUrl: url(dlq),
    deadLetterQueueArn: queueArn(dlq, region, accountId),
    async saveMessages(directory) {
      mkdirSync(directory, { recursive: true });
      const counts = { intake: 0, deadLetter: 0 };
      for (const queue of queues) counts[queue.key] += await saveQueueMessages(client, queue.url, join(directory, `${queue.name}.jsonl`));
      return counts;
    },
    async restoreMessages(directory) {
      const counts = { intake: 0, deadLetter: 0 };
      for (const queue of queues) counts[queue.key] += await restoreQueueMessages(client, queue.url, join(directory, `${queue.name}.jsonl`));
      return counts;
    },
    close: async () => {
      client.destroy();
      await closeServer(server);
    },
  };
}

/**
 * Drains a queue into `file` (one SavedMessage a line, appended), at a graceful stop; returns how many.
 * `attributes: false` keeps the bodies only.
 */
export async function saveQueueMessages(client: SQSClient, queueUrl: string, file: string, options: { attributes?: boolean } = {}): Promise<number> {
  let count = 0;
  for (;;) {
    // A long visibility timeout: a drained message must not come back while the drain goes on.
    const { Messages = [] } = await client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 43_200, ...(options.attributes === false ? {} : { MessageAttributeNames: ['All'] }) }),
    );
    if (!Messages.length) return count;
    const lines = Messages.map((m) => JSON.stringify({ body: m.Body ?? '', ...(m.MessageAttributes ? { attributes: m.MessageAttributes } : {}) } satisfies SavedMessage));
    appendFileSync(file, `${lines.join('\n')}\n`);
    count += Messages.length;
  }
}

/**
 * Sends the messages saved in `file` (saveQueueMessages) back to a queue, at start: at least once
 * (takeSavedMessages), the file removed once all are sent. Returns how many; `what` names them in an error.
 */
export async function restoreQueueMessages(client: SQSClient, queueUrl: string, file: string, what = 'messages'): Promise<number> {
  const taken = takeSavedMessages(file);
  if (!taken) return 0;
  const saved = readSavedMessages(taken);
  for (let i = 0; i < saved.length; i += 10) {
    const chunk = saved.slice(i, i + 10);
    const out = await client.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((m, j) => ({ Id: String(j), MessageBody: m.body, ...(m.attributes ? { MessageAttributes: binaryFromJson(m.attributes) } : {}) })),
      }),
    );
    if (out.Failed?.length) throw new Error(`could not restore ${out.Failed.length} ${what} to ${basename(file, '.jsonl')}: ${out.Failed[0]!.Message}`);
  }
  rmSync(taken);
  return saved.length;
}

/** Binary attribute values went through JSON as {"0":..} objects; make them bytes again. */
function binaryFromJson(attributes: Record<string, MessageAttributeValue>): Record<string, MessageAttributeValue> {
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(attributes)) {
    const copy: MessageAttributeValue = { ...value };
    if (value.BinaryValue && !(value.BinaryValue instanceof Uint8Array)) copy.BinaryValue = Uint8Array.from(Object.values(value.BinaryValue as object) as number[]);
    delete copy.BinaryListValues;
    delete copy.StringListValues;
    out[name] = copy;
  }
  return out;
}

/**
 * Takes a file of saved messages for restoring: renamed to `<file>.restoring` (appended to one a
 * previous start did not finish sending, so those are sent again: at least once). Returns its path,
 * or undefined when there is nothing to restore. Remove it once every message is sent.
 */
function takeSavedMessages(file: string): string | undefined {
  const taken = `${file}.restoring`;
  if (existsSync(file)) {
    if (existsSync(taken)) {
      appendFileSync(taken, readFileSync(file));
      rmSync(file);
    } else renameSync(file, taken);
  }
  return existsSync(taken) ? taken : undefined;
}

/** The messages of a saved-messages file (one JSON object per line). */
function readSavedMessages(file: string): SavedMessage[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as SavedMessage);
}
