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
 * Memory of each function in MB, sized on measurements (docs/performance.md, "What the functions
 * need"): every function mostly waits on AWS APIs, and Lambda bills memory × time, so each gets the
 * least that holds its peak with room to spare.
 * - detect and review decode images with sharp (detect: the header, the perceptual hash, conversions
 *   within DECODE_MEMORY_SHARE of this; review: the downscale for the model). `npm run
 *   bench:detect-memory`: ~145 MB after loading, 455 MB for the largest interlaced PNG the decode
 *   budget admits at 512 MB; at 256 MB a 40-frame GIF already needs 320 MB.
 * - the others only call AWS APIs: `npm run bench:function-memory` measures 66-73 MB peak for each
 *   bundled handler in a bare node (41 MB), so ~100 MB with Lambda's runtime: 128 MB.
 */
export const FUNCTION_MEMORY_MB: Readonly<Record<Step, number>> = {
  ingest: 128,
  detect: 512,
  review: 512,
  record: 128,
  apply: 128,
  fail: 128,
};

/**
 * The settle function (functions/settle.ts, STANDARD workflows only): not a step of the workflow,
 * it runs when an execution ended FAILED, TIMED_OUT or ABORTED, which is rare. 66 MB peak measured.
 */
export const SETTLE_FUNCTION_MEMORY_MB = 128;

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
