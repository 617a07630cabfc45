/**
 * Appeal intake: the upload platform's appeals of rejections (docs/events.md, "Appeals from the
 * platform"). An SQS batch from the appeal queue, each message a `Moderation Appeal Request`
 * (functions/lib/appeal-request.ts) that the platform sent to the queue or that an EventBridge rule
 * put there; each is filed like `moderation appeal` files one (functions/store/appeals.ts), which puts
 * the REJECTED image back in the review queue as an appeal with the message.
 *
 * Every message ends in one of these outcomes, logged with the job and the platform's requestId:
 * - filed (or already filed with the same message: a redelivery writes nothing);
 * - refused: the job has no decision, is not REJECTED, or has another appeal open. Nothing a retry
 *   could change: logged (warn) and counted (`AppealsRefused`), the message deleted;
 * - malformed: not JSON, or not the schema. Sent at once to the appeal dead-letter queue with the
 *   reason (never lost, no retries wasted), logged (error) and counted (`MalformedAppeals`);
 * - anything else (DynamoDB throttling, an outage): a batch item failure, retried by SQS, and after
 *   maxReceiveCount moved to the same dead-letter queue by the queue's redrive policy.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { sqs } from './clients.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { APPEAL_DEAD_LETTER_QUEUE_URL_ENV, parseAppealRequest } from './lib/appeal-request.ts';
import { ConfigurationError } from './lib/config.ts';
import { MalformedMessageError } from './lib/errors.ts';
import { AppealMessageError, AppealStateError, fileAppeal } from './store/appeals.ts';
import { SqsDeadLetterChannel, type DeadLetterChannel } from './store/dead-letter-channel.ts';
import { AppealOpenError } from './store/errors.ts';
import { decisionHistory } from './stores.ts';

/** What became of one appeal request. */
export type AppealIntakeOutcome = 'filed' | 'already-filed' | 'refused' | 'malformed';

export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const failures: SQSBatchResponse['batchItemFailures'] = [];
  try {
    await Promise.all(
      event.Records.map(async (message) => {
        try {
          const outcome = await intake(message);
          metrics.addMetric(outcome === 'filed' ? 'AppealsFiled' : outcome === 'refused' ? 'AppealsRefused' : outcome === 'malformed' ? 'MalformedAppeals' : 'AppealsAlreadyFiled', MetricUnit.Count, 1);
        } catch (err) {
          logger.warn('appeal request will be retried', { messageId: message.messageId, error: (err as Error).name, message: (err as Error).message });
          failures.push({ itemIdentifier: message.messageId });
        }
      }),
    );
    return { batchItemFailures: failures };
  } finally {
    flushMetrics();
  }
};

/** Files one request; what cannot be filed is refused or dead-lettered here, what may pass is thrown. */
export async function intake(message: SQSRecord): Promise<AppealIntakeOutcome> {
  let request;
  try {
    request = parseAppealRequest(message.body);
  } catch (err) {
    if (!(err instanceof MalformedMessageError)) throw err;
    logger.error('malformed appeal request sent to the appeal dead-letter queue', { messageId: message.messageId, reason: err.message });
    await appealDeadLetters().sendMalformed(message.body, err);
    return 'malformed';
  }
  const context = { messageId: message.messageId, jobId: request.jobId, ...(request.requestId ? { requestId: request.requestId } : {}) };
  try {
    const result = await fileAppeal(decisionHistory(), request.jobId, { message: request.message });
    logger.info(result.alreadyFiled ? 'appeal already filed with this message; nothing written' : 'appeal filed: the image is back in the review queue', {
      ...context,
      key: result.record.key,
      record: `${result.record.pk}|${result.record.sk}`,
    });
    return result.alreadyFiled ? 'already-filed' : 'filed';
  } catch (err) {
    if (err instanceof AppealStateError || err instanceof AppealOpenError || err instanceof AppealMessageError) {
      logger.warn('appeal refused', { ...context, reason: err.name, message: err.message });
      return 'refused';
    }
    throw err;
  }
}

let channel: DeadLetterChannel | undefined;

/** The appeal queue's own dead-letter queue (from the environment), made on first use. */
function appealDeadLetters(): DeadLetterChannel {
  if (!channel) {
    const url = process.env[APPEAL_DEAD_LETTER_QUEUE_URL_ENV];
    if (!url) throw new ConfigurationError(`${APPEAL_DEAD_LETTER_QUEUE_URL_ENV} is not set: the appeal intake cannot park a malformed request`);
    channel = new SqsDeadLetterChannel(sqs(), url);
  }
  return channel;
}

/** Tests: a dead-letter channel of their own (undefined: back to the environment's). */
export function useAppealDeadLetters(replacement: DeadLetterChannel | undefined): void {
  channel = replacement;
}
