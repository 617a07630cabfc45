/**
 * The base of the project's own errors. `userFacing` errors are the user's to fix (a bad flag, a
 * policy that does not validate, a directory in use): the CLI prints their message on one line and
 * exits with `exitCode`. Anything else is a bug or an outage and is printed with its stack trace.
 */
export class ModerationError extends Error {
  /** True when the message alone tells the user what to do (no stack trace needed). */
  readonly userFacing: boolean = false;
  /** The process exit code the CLI uses for this error. */
  readonly exitCode: number = 1;
}

/** An error the user can fix from its message alone: printed on one line, no stack trace. */
export class UserFacingError extends ModerationError {
  override readonly userFacing: boolean = true;
}

/**
 * The domain's named errors. Each has a stable `name`: Step Functions Retry/Catch and the SQS batch
 * handler match on it, and operators grep for it, so never rename one.
 */

/** A policy document that cannot be used. `issues` lists every problem, each naming the field and value. */
export class PolicyError extends UserFacingError {
  override name = 'PolicyError';
  readonly issues: string[];

  constructor(message: string, issues: string[] = [message]) {
    super(message);
    this.issues = issues;
  }
}

/**
 * An intake message that is not JSON or not a shape the pipeline knows. Retrying cannot fix it, so the
 * ingest handler lets it go to the dead-letter queue; the message says what was wrong with it.
 */
export class MalformedMessageError extends ModerationError {
  override name = 'MalformedMessage';
}
