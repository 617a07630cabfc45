/**
 * The stores' named errors. Their `name` is the contract with the state machine's Retry/Catch and
 * with operators who grep logs: never rename one.
 */
import { ModerationError, UserFacingError } from '../lib/errors.ts';
import type { DecisionRecord } from '../lib/types.ts';

/** Someone else decided this job first: the conditional write lost. The message names the winner. */
export class DecisionConflictError extends UserFacingError {
  override name = 'DecisionConflict';
  readonly winner?: DecisionRecord;

  constructor(jobId: string, winner?: DecisionRecord) {
    super(
      winner
        ? `job ${jobId} was decided ${winner.status} by ${winner.decidedBy} at ${winner.decidedAt} while you were deciding it; nothing was written`
        : `job ${jobId} was decided by someone else while you were deciding it; nothing was written`,
    );
    this.winner = winner;
  }
}

/** The job already has an appeal without an outcome: one open appeal at a time. The message names it. */
export class AppealOpenError extends UserFacingError {
  override name = 'AppealOpen';
  readonly open?: DecisionRecord;

  constructor(jobId: string, open?: DecisionRecord) {
    super(
      open
        ? `job ${jobId} already has an open appeal, filed at ${open.decidedAt} ("${open.reason ?? ''}"); it waits in the review queue, and nothing new was written`
        : `job ${jobId} already has an open appeal; nothing new was written`,
    );
    this.open = open;
  }
}

/**
 * The bucket itself is missing (NoSuchBucket) or the pipeline may not read it (AccessDenied): not the
 * object being gone, so never a silent "skipped". Retried, then the job is dead-lettered for an operator.
 */
export class ObjectUnreadableError extends ModerationError {
  override name = 'ObjectUnreadable';
}
