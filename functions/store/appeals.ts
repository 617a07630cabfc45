/**
 * Filing an uploader's appeal of a rejection, over the decision store: the one code path that
 * `moderation appeal`, the review console and the platform's appeal intake (functions/appeal-intake.ts:
 * an SQS message or an EventBridge event) all use (docs/console.md, "Appeals"; docs/events.md,
 * "Appeals from the platform").
 *
 * An appeal is a record of kind `appeal` (status REVIEW) appended to the job's history, which puts the
 * image back in the review queue with the message. Only a job whose latest decision is REJECTED can be
 * appealed, one open appeal at a time (the store's conditional write); the same message again (a
 * retry, a redelivery) writes nothing. The object stays in quarantine until a reviewer decides.
 */
import { appealRecord } from '../lib/decision.ts';
import { APPEAL_REQUEST_MAX_MESSAGE_CHARS } from '../lib/appeal-request.ts';
import { UserFacingError } from '../lib/errors.ts';
import type { DecisionRecord } from '../lib/types.ts';
import { latestDecisionOf, openAppealOf, type DecisionStore } from './decision-store.ts';
import { AppealOpenError } from './errors.ts';
import { recordIdOf } from './table-schema.ts';

/** An appeal's message: at most this many characters. */
export const MAX_APPEAL_MESSAGE_CHARS = APPEAL_REQUEST_MAX_MESSAGE_CHARS;

/** The appeal's message is empty or too long. */
export class AppealMessageError extends UserFacingError {
  override name = 'AppealMessage';
}

/** The job cannot be appealed: it has no decision, or what stands is not REJECTED. */
export class AppealStateError extends UserFacingError {
  override name = 'AppealState';
}

export interface AppealInput {
  /** The uploader's message (required; at most MAX_APPEAL_MESSAGE_CHARS). */
  message: string;
  now?: Date;
}

export interface AppealResult {
  record: DecisionRecord;
  /** The rejection appealed. */
  contested: DecisionRecord;
  /** This appeal (same message) was already open: nothing new was written. */
  alreadyFiled: boolean;
}

/** The message as it is stored: line endings normalised, trimmed; empty or too long is an AppealMessageError. */
export function appealMessage(text: string): string {
  const message = text.replace(/\r\n?/g, '\n').trim();
  if (!message) throw new AppealMessageError('the appeal message must not be empty: say why the image should not be rejected');
  if (message.length > MAX_APPEAL_MESSAGE_CHARS) throw new AppealMessageError(`the appeal message is too long (${message.length} characters; at most ${MAX_APPEAL_MESSAGE_CHARS})`);
  return message;
}

/**
 * Files an appeal of job `jobId`'s rejection. Throws AppealMessageError (the message), AppealStateError
 * (no decision, or not REJECTED), AppealOpenError (another appeal is open); a retry with the same
 * message returns the open appeal with `alreadyFiled`.
 */
export async function fileAppeal(store: DecisionStore, jobId: string, input: AppealInput): Promise<AppealResult> {
  const message = appealMessage(input.message);
  const records = await store.jobHistory(jobId);
  const latest = latestDecisionOf(records);
  if (!latest) throw new AppealStateError(`no decision for job ${jobId}`);
  const open = openAppealOf(records);
  if (open) {
    if (open.reason === message) return { record: open, contested: latest, alreadyFiled: true };
    throw new AppealOpenError(jobId, open);
  }
  if (latest.status !== 'REJECTED') {
    throw new AppealStateError(`job ${jobId} (${latest.key}) is ${latest.status} (by ${latest.decidedBy} at ${latest.decidedAt}): only a rejected image can be appealed`);
  }
  const record = await store.appendAppeal(appealRecord(latest, { message, filedAt: (input.now ?? new Date()).toISOString(), contests: recordIdOf(latest) }));
  return { record, contested: latest, alreadyFiled: false };
}
