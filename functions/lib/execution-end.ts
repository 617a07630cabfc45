/**
 * What a Step Functions "Execution Status Change" event says about a job (docs/architecture.md,
 * invariant 1). With a STANDARD workflow the ingest handler deletes the intake message once the
 * execution has started, so an execution that ends without reaching the workflow's own fail path
 * (it timed out, was stopped, or failed inside RecordFailure) leaves its job with no terminal state
 * unless someone settles it: functions/settle.ts, fed by this module. Pure: no AWS clients.
 */
import { EXECUTION_STATUS_CHANGE, UNSETTLED_END_STATUSES, type UnsettledEndStatus } from './pipeline-settings.ts';
import { ModerationError } from './errors.ts';
import type { CaughtError, Job, ModerationState } from './types.ts';

/**
 * The error of the definition's Fail state (statemachine/moderation.asl.json, state `Failed`): the
 * workflow recorded the job FAILED and dead-lettered it before failing.
 */
export const HANDLED_FAILURE = 'ModerationFailed';

/** The `detail` of a Step Functions Execution Status Change event (the fields used here). */
export interface ExecutionStatusDetail {
  executionArn: string;
  stateMachineArn?: string;
  name?: string;
  status: string;
  startDate?: number | null;
  /** Epoch milliseconds. */
  stopDate?: number | null;
  /** The execution's input (Standard executions; absent when too large for the event). */
  input?: string | null;
  error?: string | null;
  cause?: string | null;
}

export interface ExecutionStatusEvent {
  source?: string;
  'detail-type'?: string;
  time?: string;
  detail?: ExecutionStatusDetail;
}

export type ExecutionEnd =
  | { settle: false; executionArn?: string; reason: string }
  | {
      settle: true;
      executionArn: string;
      status: UnsettledEndStatus;
      /** What the FAILED record and the dead-letter message say went wrong. */
      error: CaughtError;
      /** When the execution ended (ISO 8601): the FAILED record's time, the same on a redelivered event. */
      endedAt: string;
      /** The execution's input, when the event carries it. */
      input?: string;
    };

/** The execution's input is not a job (an execution someone started by hand, say): nothing to record. */
export class UnreadableExecutionInputError extends ModerationError {
  override name = 'UnreadableExecutionInput';
}

/** Whether an execution's end leaves its job to be settled, and with which error. */
export function executionEndOf(event: ExecutionStatusEvent): ExecutionEnd {
  const detail = event.detail;
  if (event.source !== EXECUTION_STATUS_CHANGE.source || event['detail-type'] !== EXECUTION_STATUS_CHANGE.detailType || !detail?.executionArn) {
    return { settle: false, reason: `not a Step Functions execution status change (${event.source ?? '?'} / ${event['detail-type'] ?? '?'})` };
  }
  const { executionArn, status } = detail;
  if (!(UNSETTLED_END_STATUSES as readonly string[]).includes(status)) {
    return { settle: false, executionArn, reason: `status ${status}: the workflow settled the job itself (or is still running)` };
  }
  if (status === 'FAILED' && detail.error === HANDLED_FAILURE) {
    return { settle: false, executionArn, reason: `failed with ${HANDLED_FAILURE}: the workflow's fail path already recorded the job FAILED and dead-lettered it` };
  }
  const stopped = typeof detail.stopDate === 'number' && Number.isFinite(detail.stopDate) ? new Date(detail.stopDate) : event.time ? new Date(event.time) : new Date();
  return {
    settle: true,
    executionArn,
    status: status as UnsettledEndStatus,
    error: errorOf(status as UnsettledEndStatus, detail),
    endedAt: (Number.isNaN(stopped.getTime()) ? new Date() : stopped).toISOString(),
    ...(typeof detail.input === 'string' ? { input: detail.input } : {}),
  };
}

/** The execution's input back as the state it started with; throws when it holds no job. */
export function stateFromExecutionInput(input: string, executionArn: string): ModerationState & { job: Job } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(input);
  } catch {
    throw new UnreadableExecutionInputError(`execution ${executionArn}: the input is not JSON`);
  }
  const job = (parsed as { job?: Partial<Job> } | null)?.job;
  if (!job || typeof job.jobId !== 'string' || typeof job.bucket !== 'string' || typeof job.key !== 'string') {
    throw new UnreadableExecutionInputError(`execution ${executionArn}: the input holds no job (jobId, bucket, key)`);
  }
  return parsed as ModerationState & { job: Job };
}

function errorOf(status: UnsettledEndStatus, detail: ExecutionStatusDetail): CaughtError {
  const given = (value: string | null | undefined) => (typeof value === 'string' && value.trim() ? value : undefined);
  switch (status) {
    case 'TIMED_OUT':
      return {
        Error: given(detail.error) ?? 'States.Timeout',
        Cause: given(detail.cause) ?? "the execution ran past the state machine's TimeoutSeconds and was stopped before it recorded a decision",
      };
    case 'ABORTED':
      return {
        Error: given(detail.error) ?? 'ExecutionAborted',
        Cause: given(detail.cause) ?? 'the execution was stopped (StopExecution) before it recorded a decision',
      };
    case 'FAILED':
      return {
        Error: given(detail.error) ?? 'ExecutionFailed',
        Cause: given(detail.cause) ?? 'the execution failed outside the workflow’s fail path (no FAILED record was written by it)',
      };
  }
}
