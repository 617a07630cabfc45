/**
 * The dead-letter channel: sending a job (or a body that could not be read) to the dead-letter queue,
 * and reading a received dead-letter message back as what it stands for. The format itself is
 * functions/lib/dead-letter.ts; this is the only code that puts it on, or takes it off, SQS.
 */
import { SendMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { callAws } from '../errors.ts';
import { summariseCause } from '../lib/decision.ts';
import {
  DEAD_LETTER_ATTRIBUTES,
  RECEIVE_LIMIT_ERROR,
  asDeadLetterEnvelope,
  deadLetterBody,
  failedJobAttributes,
  malformedAttributes,
} from '../lib/dead-letter.ts';
import { MalformedMessageError, parseIntakeMessage } from '../lib/s3-event.ts';
import type { CaughtError, Job } from '../lib/types.ts';

export type DlqMessageKind = 'failed-job' | 's3-notification' | 'malformed' | 'test-event';

export interface DlqJobRef {
  jobId: string;
  bucket: string;
  key: string;
  versionId?: string;
  eTag?: string;
}

export interface DlqMessage {
  messageId: string;
  kind: DlqMessageKind;
  errorName: string;
  /** One line: the error's message (Lambda's errorMessage from the Cause, or the parse error). */
  errorMessage: string;
  /** The jobs the body stands for (none for a malformed body). */
  jobs: DlqJobRef[];
  /** When the job failed (fail path), else when the message was first sent. */
  failedAt: string;
  executionId?: string;
  /** Receives so far, including earlier `dlq list` peeks. */
  receiveCount: number;
  sentAt: string;
  /** Set by SQS on messages it moved here after maxReceiveCount. */
  sourceQueueArn?: string;
  body: string;
  /** The full error as the workflow caught it (fail path only). */
  error?: CaughtError;
  attributes: Record<string, string>;
}

export interface DeadLetterChannel {
  /** A job that stayed broken after its retries: the job, the error, when, which execution. */
  sendFailedJob(job: Job, error: CaughtError, context: { failedAt: string; executionId?: string }): Promise<void>;
  /** A body the ingest handler cannot read: parked as it came, with the reason. */
  sendMalformed(body: string, error: { name: string; message: string }): Promise<void>;
}

export class SqsDeadLetterChannel implements DeadLetterChannel {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async sendFailedJob(job: Job, error: CaughtError, context: { failedAt: string; executionId?: string }): Promise<void> {
    await this.send(deadLetterBody(job, error, context), failedJobAttributes(job, error));
  }

  async sendMalformed(body: string, error: { name: string; message: string }): Promise<void> {
    await this.send(body, malformedAttributes(error));
  }

  private async send(body: string, attributes: Record<string, string>): Promise<void> {
    await callAws('SQS', () =>
      this.client.send(
        new SendMessageCommand({
          QueueUrl: this.queueUrl,
          MessageBody: body,
          MessageAttributes: Object.fromEntries(Object.entries(attributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value }])),
        }),
      ),
    );
  }
}

/** Reads one received DLQ message: which kind, which error, which jobs. Never throws. */
export function describeDlqMessage(message: Message): DlqMessage {
  const body = message.Body ?? '';
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) if (value.StringValue !== undefined) attributes[name] = value.StringValue;
  const errorNameAttribute = attributes[DEAD_LETTER_ATTRIBUTES.errorName];
  const errorMessageAttribute = attributes[DEAD_LETTER_ATTRIBUTES.errorMessage];
  const system = message.Attributes ?? {};
  const sentAt = system.SentTimestamp ? new Date(Number(system.SentTimestamp)).toISOString() : '';
  const base = {
    messageId: message.MessageId ?? '',
    receiveCount: Number(system.ApproximateReceiveCount ?? 0),
    sentAt,
    sourceQueueArn: system.DeadLetterQueueSourceArn,
    body,
    attributes,
  };
  let parsed: ReturnType<typeof parseIntakeMessage>;
  try {
    parsed = parseIntakeMessage(body);
  } catch (err) {
    const reason = err instanceof MalformedMessageError ? err.message : String(err);
    return {
      ...base,
      kind: 'malformed',
      errorName: errorNameAttribute ?? 'MalformedMessage',
      errorMessage: errorMessageAttribute ?? reason,
      jobs: [],
      failedAt: sentAt,
    };
  }
  const jobs = parsed.jobs.map((job) => ({
    jobId: job.jobId,
    bucket: job.bucket,
    key: job.key,
    ...(job.versionId ? { versionId: job.versionId } : {}),
    ...(job.eTag ? { eTag: job.eTag } : {}),
  }));
  const json = safeJson(body);
  const envelope = asDeadLetterEnvelope(json);
  if (envelope) {
    const error = envelope.error ?? { Error: errorNameAttribute ?? 'Unknown' };
    return {
      ...base,
      kind: 'failed-job',
      errorName: error.Error ?? errorNameAttribute ?? 'Unknown',
      errorMessage: summariseCause(error.Cause),
      jobs,
      failedAt: envelope.failedAt ?? sentAt,
      executionId: envelope.executionId,
      error,
    };
  }
  if ((json as { Event?: string } | undefined)?.Event === 's3:TestEvent') {
    return { ...base, kind: 'test-event', errorName: errorNameAttribute ?? 'TestEvent', errorMessage: 'S3 test event (nothing to moderate)', jobs, failedAt: sentAt };
  }
  return {
    ...base,
    kind: 's3-notification',
    errorName: errorNameAttribute ?? RECEIVE_LIMIT_ERROR,
    errorMessage:
      errorMessageAttribute ??
      `delivered ${base.sourceQueueArn ? `from ${base.sourceQueueArn.split(':').pop()} ` : ''}after the intake queue's maxReceiveCount: the ingest handler could not start the workflow (see its logs)`,
    jobs,
    failedAt: sentAt,
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
