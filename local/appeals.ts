/**
 * The platform's appeal intake on this machine (docs/events.md, "Appeals from the platform"): the
 * construct's appeal queue and its dead-letter queue on the local SQS, and a poller that feeds the
 * same handler (functions/appeal-intake.ts) as Lambda's event source mapping does, so a platform can
 * test its appeals against `moderation serve` (its SQS endpoint, the queue URL it prints).
 *
 * Messages left on the two queues at a graceful stop are saved under `<home>/sqs/` and sent back at
 * the next start, as the intake queue's are (local/sqs.ts).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { MAX_RECEIVE_COUNT } from '../functions/lib/pipeline-settings.ts';
import { APPEAL_DEAD_LETTER_QUEUE_URL_ENV } from '../functions/lib/appeal-request.ts';
import { startPoller, type Poller } from './poller.ts';
import { lambdaContext, throughJson } from './functions.ts';
import type { LocalLogger } from './net.ts';
import { restoreQueueMessages, saveQueueMessages } from './sqs.ts';

export const APPEAL_QUEUE_NAME = 'moderation-appeals';
export const APPEAL_DEAD_LETTER_QUEUE_NAME = 'moderation-appeals-dlq';
const FUNCTION_NAME = 'moderation-appeal-intake';
/** The CDK function's timeout is 30 s and the queue's visibility 6 times that. */
const VISIBILITY_TIMEOUT_SECONDS = 180;

export type AppealIntakeHandler = (event: SQSEvent, context?: unknown) => Promise<SQSBatchResponse | void | undefined | null>;

export interface LocalAppeals {
  queueUrl: string;
  deadLetterQueueUrl: string;
  poller: Poller;
  /** Stops the poller and saves what is left on both queues (with `persistDirectory`). */
  stop(): Promise<void>;
}

export interface LocalAppealsOptions {
  sqs: SQSClient;
  region: string;
  /** The handler; default functions/appeal-intake.ts (imported now: the environment must be set). */
  handler?: AppealIntakeHandler;
  /** Where messages are saved at stop and restored from at start (absent: not persisted). */
  persistDirectory?: string;
  waitTimeSeconds?: number;
  log: LocalLogger;
}

/** The environment variable the handler reads for its dead-letter queue: set it before importing the handler. */
export const appealEnvironment = (deadLetterQueueUrl: string): Record<string, string> => ({ [APPEAL_DEAD_LETTER_QUEUE_URL_ENV]: deadLetterQueueUrl });

/** Creates the two queues (idempotent). */
export async function createAppealQueues(sqs: SQSClient): Promise<{ queueUrl: string; queueArn: string; deadLetterQueueUrl: string }> {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: APPEAL_DEAD_LETTER_QUEUE_NAME, Attributes: { MessageRetentionPeriod: '1209600' } }));
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: APPEAL_QUEUE_NAME,
      Attributes: {
        VisibilityTimeout: String(VISIBILITY_TIMEOUT_SECONDS),
        MessageRetentionPeriod: '345600',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: MAX_RECEIVE_COUNT }),
      },
    }),
  );
  const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  return { queueUrl: queue.QueueUrl!, queueArn, deadLetterQueueUrl: dlq.QueueUrl! };
}

/** Starts draining the appeal queue (the queues must exist: createAppealQueues). */
export async function startLocalAppeals(
  queues: { queueUrl: string; queueArn: string; deadLetterQueueUrl: string },
  options: LocalAppealsOptions,
): Promise<LocalAppeals> {
  const { sqs, region, log } = options;
  // Imported at the first request, not now: a stack started with stand-in handlers imports nothing of functions/.
  const handler: AppealIntakeHandler =
    options.handler ?? (async (event, context) => ((await import('../functions/appeal-intake.ts')).handler as AppealIntakeHandler)(event, context));
  const saved = [
    { url: queues.queueUrl, file: APPEAL_QUEUE_NAME },
    { url: queues.deadLetterQueueUrl, file: APPEAL_DEAD_LETTER_QUEUE_NAME },
  ];
  if (options.persistDirectory) {
    const directory = options.persistDirectory;
    let restored = 0;
    for (const queue of saved) restored += await restoreQueueMessages(sqs, queue.url, join(directory, `${queue.file}.jsonl`), 'appeal requests');
    if (restored) log.info('restored appeal requests from the last run', { messages: restored });
  }
  const poller = startPoller({
    sqs,
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    region,
    batchSize: 10,
    maxConcurrency: 1,
    waitTimeSeconds: options.waitTimeSeconds ?? 1,
    deadLetter: { queueUrl: queues.deadLetterQueueUrl, maxReceiveCount: MAX_RECEIVE_COUNT, visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS },
    handler: async (event) => throughJson(await handler(throughJson(event), lambdaContext(FUNCTION_NAME, 30_000, region))),
    log,
  });
  return {
    queueUrl: queues.queueUrl,
    deadLetterQueueUrl: queues.deadLetterQueueUrl,
    poller,
    async stop() {
      await poller.stop();
      if (options.persistDirectory) {
        const directory = options.persistDirectory;
        mkdirSync(directory, { recursive: true });
        let count = 0;
        for (const queue of saved) count += await saveQueueMessages(sqs, queue.url, join(directory, `${queue.file}.jsonl`), { attributes: false });
        if (count) log.info('saved appeal requests for the next run', { messages: count });
      }
    },
  };
}
