/**
 * Settings that the deployed stack (infra/), the local runtime (local/) and the cost model
 * (cost-model.ts) must agree on, in one place: a second copy of any of these is how the local
 * runtime, the estimate and AWS come to behave differently without a test noticing.
 * test/infra/settings-agree.test.ts checks the synthesized template, the local services and the
 * cost model against this module.
 *
 * Pure data: no AWS SDK, no CDK, no I/O (the definition's path is computed, not read).
 */
import { fileURLToPath } from 'node:url';

/** Receives of an intake message before SQS moves it to the dead-letter queue (the RedrivePolicy). */
export const MAX_RECEIVE_COUNT = 5;

/** One Lambda function per step. */
export const STEPS = ['ingest', 'detect', 'review', 'record', 'apply', 'fail'] as const;
export type Step = (typeof STEPS)[number];
/** The steps the state machine invokes (ingest starts it). */
export type WorkflowStep = Exclude<Step, 'ingest'>;
export const WORKFLOW_STEPS: readonly WorkflowStep[] = ['detect', 'review', 'record', 'apply', 'fail'];

/**
 * Memory of each function in MB. Detect and review decode images with sharp (review also downscales
 * to the model's limit), and Lambda's CPU share grows with memory; the others only call AWS APIs.
 */
export const FUNCTION_MEMORY_MB: Readonly<Record<Step, number>> = {
  ingest: 256,
  detect: 1024,
  review: 1024,
  record: 256,
  apply: 256,
  fail: 256,
};

/**
 * The settle function (functions/settle.ts, STANDARD workflows only): not a step of the workflow,
 * it runs when an execution ended FAILED, TIMED_OUT or ABORTED, which is rare.
 */
export const SETTLE_FUNCTION_MEMORY_MB = 256;

/**
 * The Step Functions event that tells an execution's end (EventBridge on AWS; the local Step
 * Functions endpoint sends the same shape), and the ends that the settle function handles: the
 * ones after which the workflow itself may not have recorded anything (a timeout, StopExecution,
 * or a failure inside RecordFailure). Express state machines send no such events.
 */
export const EXECUTION_STATUS_CHANGE = { source: 'aws.states', detailType: 'Step Functions Execution Status Change' } as const;
export const UNSETTLED_END_STATUSES = ['FAILED', 'TIMED_OUT', 'ABORTED'] as const;
export type UnsettledEndStatus = (typeof UNSETTLED_END_STATUSES)[number];

/** The definition's `${...}` placeholder for each workflow step's function (an ARN on AWS, a local function name locally). */
export const FUNCTION_PLACEHOLDERS: Readonly<Record<WorkflowStep, string>> = {
  detect: 'DetectFunctionArn',
  review: 'ReviewFunctionArn',
  record: 'RecordFunctionArn',
  apply: 'ApplyFunctionArn',
  fail: 'FailFunctionArn',
};

/** The definition's placeholder that switches contextual review (Bedrock) on or off, and its two values. */
export const CONTEXTUAL_REVIEW_PLACEHOLDER = 'ContextualReview';
export const CONTEXTUAL_REVIEW_VALUES = { on: 'enabled', off: 'disabled' } as const;

/** Every placeholder the definition may hold: exactly what both the CDK and the local runtime substitute. */
export const DEFINITION_PLACEHOLDERS: readonly string[] = [...Object.values(FUNCTION_PLACEHOLDERS), CONTEXTUAL_REVIEW_PLACEHOLDER];

/**
 * The definitionSubstitutions for the ASL: each workflow step's function reference (the CDK passes
 * function ARN tokens, the local runtime its function names) and the contextual review switch.
 * Both sides build them here, so neither can miss or misspell a placeholder.
 */
export function definitionSubstitutions(functions: Readonly<Record<WorkflowStep, string>>, contextualReview: boolean): Record<string, string> {
  const substitutions: Record<string, string> = {
    [CONTEXTUAL_REVIEW_PLACEHOLDER]: contextualReview ? CONTEXTUAL_REVIEW_VALUES.on : CONTEXTUAL_REVIEW_VALUES.off,
  };
  for (const step of WORKFLOW_STEPS) substitutions[FUNCTION_PLACEHOLDERS[step]] = functions[step];
  return substitutions;
}

/** The only state machine definition (invariant 5), relative to the project root. */
export const DEFINITION_PATH_IN_PROJECT = 'statemachine/moderation.asl.json';

/** The only state machine definition (invariant 5), as an absolute path: what the CDK and the local runtime read. */
export const DEFINITION_FILE = fileURLToPath(new URL(`../../${DEFINITION_PATH_IN_PROJECT}`, import.meta.url));
