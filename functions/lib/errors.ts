/**
 * The domain's named errors. Each has a stable `name`: Step Functions Retry/Catch and the SQS batch
 * handler match on it, and operators grep for it, so never rename one.
 */

/** A policy document that cannot be used. `issues` lists every problem, each naming the field and value. */
export class PolicyError extends Error {
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
export class MalformedMessageError extends Error {
  override name = 'MalformedMessage';
}
