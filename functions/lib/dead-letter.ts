/**
 * The dead-letter message format, written and parsed here only: the body the fail path sends (the
 * job, the error, when, which execution), the attributes on every dead-lettered message, and what a
 * replayed body tells the ingest handler. Pure; the dead-letter channel (functions/store/) sends it.
 *
 * The DLQ holds three kinds of bodies:
 * - `{"moderationJob", "error", "failedAt", "executionId"}` from the workflow's fail path;
 * - raw S3 notifications that SQS moved after maxReceiveCount failed receives;
 * - bodies the ingest handler could not read, parked with errorName=MalformedMessage.
 */
import type { CaughtError, Job } from './types.ts';

/** Message attributes on dead-lettered messages (SQS MessageAttributes, String). */
export const DEAD_LETTER_ATTRIBUTES = {
  errorName: 'errorName',
  errorMessage: 'errorMessage',
  objectKey: 'objectKey',
  /** On a message an operator replayed into the intake queue: the DLQ message id it came from. */
  replayOf: 'replayOf',
} as const;

/** The error name given to raw notifications that SQS redrove after maxReceiveCount. */
export const RECEIVE_LIMIT_ERROR = 'MaxReceiveCountExceeded';

/** How much of an error's Cause the dead-letter body keeps: a stack trace, not a whole payload. */
const MAX_CAUSE_CHARS = 8_000;
/** SQS attribute values are capped by the message size; these are for people, so keep them short. */
const MAX_ATTRIBUTE_CHARS = { errorMessage: 1000, objectKey: 256 };

export interface DeadLetterEnvelope {
  moderationJob: unknown;
  error?: CaughtError;
  failedAt?: string;
  executionId?: string;
}

/**
 * What the fail path puts on the dead-letter queue: the job as it was, the error, when, and which
 * execution failed. Sent back to the intake queue, parseIntakeMessage accepts it as a replay.
 */
export function deadLetterBody(job: Job, error: CaughtError, extra?: { executionId?: string; failedAt: string }): string {
  const caught: CaughtError = { Error: error.Error };
  if (error.Cause !== undefined) {
    caught.Cause = error.Cause.length > MAX_CAUSE_CHARS ? `${error.Cause.slice(0, MAX_CAUSE_CHARS)}... [truncated]` : error.Cause;
  }
  return JSON.stringify({
    moderationJob: job,
    error: caught,
    failedAt: extra?.failedAt ?? new Date().toISOString(),
    ...(extra?.executionId ? { executionId: extra.executionId } : {}),
  });
}

/** The attributes of a failed job's dead-letter message. */
export function failedJobAttributes(job: Job, error: CaughtError): Record<string, string> {
  return { [DEAD_LETTER_ATTRIBUTES.errorName]: error.Error, [DEAD_LETTER_ATTRIBUTES.objectKey]: job.key.slice(0, MAX_ATTRIBUTE_CHARS.objectKey) };
}

/** The attributes of a body parked because it could not be read. */
export function malformedAttributes(error: { name: string; message: string }): Record<string, string> {
  return { [DEAD_LETTER_ATTRIBUTES.errorName]: error.name, [DEAD_LETTER_ATTRIBUTES.errorMessage]: error.message.slice(0, MAX_ATTRIBUTE_CHARS.errorMessage) };
}

/** A parsed JSON object that is the fail path's envelope, or undefined. */
export function asDeadLetterEnvelope(parsed: unknown): DeadLetterEnvelope | undefined {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  return 'moderationJob' in parsed ? (parsed as DeadLetterEnvelope) : undefined;
}

/**
 * A replayed dead-letter body carries the time it failed: the suffix that gives a Standard
 * execution its own name (a name cannot be reused for 90 days). Duplicates of the same replay still
 * collide, and the detect step stops any job that already has a decision.
 */
export function replayMarker(body: string): string | undefined {
  let envelope: DeadLetterEnvelope | undefined;
  try {
    envelope = asDeadLetterEnvelope(JSON.parse(body));
  } catch {
    return undefined;
  }
  if (envelope?.moderationJob && typeof envelope.failedAt === 'string') return envelope.failedAt.replace(/[^0-9]/g, '').slice(0, 17);
  return undefined;
}
