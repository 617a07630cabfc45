/**
 * The Lambda functions as the local runtime runs them: the handler modules in functions/, imported
 * (after the environment is set: they read it at import time), and invoked the way Lambda does it —
 * the payload deep-copied through JSON both ways, errors reported as {errorType, errorMessage, trace}
 * with the error's name as Step Functions' error, a context object with the function's name.
 */
import { randomUUID } from 'node:crypto';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { readFileSync } from 'node:fs';
import { DEFINITION_FILE, definitionSubstitutions, FUNCTION_MEMORY_MB, SETTLE_FUNCTION_MEMORY_MB, STEPS, type WorkflowStep } from '../functions/lib/pipeline-settings.ts';
import { LocalWorkflow, type StepFunction } from './workflow.ts';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION } from './net.ts';

/** The local function names, substituted into the ASL where the CDK substitutes function ARNs. */
export const FUNCTION_NAMES = {
  ingest: 'moderation-ingest',
  detect: 'moderation-detect',
  review: 'moderation-review',
  record: 'moderation-record',
  apply: 'moderation-apply',
  fail: 'moderation-fail',
  settle: 'moderation-settle',
} as const;

export type StepName = WorkflowStep;

/** A workflow step handler: the state document in, the state document out. */
export type StepHandler = (state: never) => Promise<unknown>;
export type IngestHandler = (event: SQSEvent, context?: unknown) => Promise<SQSBatchResponse | void | undefined | null>;

/** The settle handler (functions/settle.ts): a Step Functions execution status change event in. */
export type SettleHandler = (event: never, context?: unknown) => Promise<unknown>;

export interface ModerationHandlers {
  ingest: IngestHandler;
  detect: StepHandler;
  review: StepHandler;
  record: StepHandler;
  apply: StepHandler;
  fail: StepHandler;
  /** Settles a STANDARD execution that ended badly outside the fail path (absent: nothing does). */
  settle?: SettleHandler;
}

/** Imports functions/<name>.ts for each handler. Call only once process.env holds the configuration. */
export async function loadHandlers(): Promise<ModerationHandlers> {
  const load = async (name: keyof ModerationHandlers) => {
    const module = (await import(new URL(`../functions/${name}.ts`, import.meta.url).href)) as { handler?: unknown };
    if (typeof module.handler !== 'function') throw new TypeError(`functions/${name}.ts does not export a handler function`);
    return module.handler as never;
  };
  const [ingest, detect, review, record, apply, fail, settle] = await Promise.all(
    (['ingest', 'detect', 'review', 'record', 'apply', 'fail', 'settle'] as const).map((name) => load(name)),
  );
  return { ingest, detect, review, record, apply, fail, settle };
}

/** A Lambda context object for one invocation. */
export function lambdaContext(functionName: string, timeoutMs = 300_000, region = LOCAL_REGION): Context {
  const deadline = Date.now() + timeoutMs;
  const unsupported = () => {
    throw new Error('callback-style completion is not supported; return a promise');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${LOCAL_ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: String(memoryOf(functionName)),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${process.pid}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

/** The memory the CDK stack gives this function (functions/lib/pipeline-settings.ts); 1024 MB for a name that is not a pipeline step. */
function memoryOf(functionName: string): number {
  if (functionName === FUNCTION_NAMES.settle) return SETTLE_FUNCTION_MEMORY_MB;
  const step = STEPS.find((name) => FUNCTION_NAMES[name] === functionName);
  return step ? FUNCTION_MEMORY_MB[step] : 1024;
}

/** JSON round trip, as an invocation payload and response go over the wire (undefined becomes null). */
export function throughJson<T>(value: T): T {
  const text = JSON.stringify(value);
  return (text === undefined ? null : JSON.parse(text)) as T;
}

/**
 * The error Step Functions sees when a Lambda function throws: Error = the error's name (errorType),
 * Cause = the JSON document Lambda returns ({errorMessage, errorType, trace}).
 */
export class LambdaFunctionError extends Error {
  constructor(errorType: string, errorMessage: string, trace: string[]) {
    super(JSON.stringify({ errorType, errorMessage, trace }));
    this.name = errorType;
  }
}

export function toLambdaError(err: unknown): LambdaFunctionError {
  const e = err instanceof Error ? err : new Error(String(err));
  const errorType = e.name && e.name !== 'Error' ? e.name : 'Error';
  return new LambdaFunctionError(errorType, e.message, (e.stack ?? '').split('\n').slice(1).map((line) => line.trim()));
}

/** A handler wrapped as a Lambda invocation for the workflow's lambda:invoke Tasks. */
export function asStepFunction(functionName: string, handler: (payload: never, context: Context) => Promise<unknown>, timeoutMs?: number): StepFunction {
  return async (payload) => {
    let result: unknown;
    try {
      result = await handler(throughJson(payload) as never, lambdaContext(functionName, timeoutMs));
    } catch (err) {
      throw toLambdaError(err);
    }
    return throughJson(result);
  };
}

/**
 * The ASL's definitionSubstitutions for the local runtime: the same placeholders the CDK fills
 * (functions/lib/pipeline-settings.ts), with local function names where the CDK passes ARNs.
 */
export function moderationSubstitutions(contextualReview: boolean): Record<string, string> {
  return definitionSubstitutions(FUNCTION_NAMES, contextualReview);
}

export interface ModerationWorkflowOptions {
  handlers: Pick<ModerationHandlers, StepName>;
  contextualReview: boolean;
  retryIntervalOverrides?: Record<string, number | number[]>;
  definition?: string;
  /**
   * A local override of the definition's TimeoutSeconds (tests make an execution time out in a
   * second or two). The file, and what the CDK deploys, keep their own value.
   */
  timeoutSeconds?: number;
}

/** statemachine/moderation.asl.json with each Task answered by its handler, invoked like Lambda. */
export function moderationWorkflow(options: ModerationWorkflowOptions): LocalWorkflow {
  const steps: StepName[] = ['detect', 'review', 'record', 'apply', 'fail'];
  return new LocalWorkflow({
    substitutions: moderationSubstitutions(options.contextualReview),
    functions: Object.fromEntries(steps.map((step) => [FUNCTION_NAMES[step], asStepFunction(FUNCTION_NAMES[step], options.handlers[step] as never)])),
    retryIntervalOverrides: options.retryIntervalOverrides,
    definition: options.timeoutSeconds === undefined ? options.definition : withTimeout(options.definition ?? readFileSync(DEFINITION_FILE, 'utf8'), options.timeoutSeconds),
  });
}

/** The definition with another execution TimeoutSeconds (a local override; placeholders stay as they are). */
function withTimeout(definition: string, timeoutSeconds: number): string {
  if (!(timeoutSeconds > 0)) throw new RangeError(`timeoutSeconds must be positive, got ${timeoutSeconds}`);
  return JSON.stringify({ ...(JSON.parse(definition) as object), TimeoutSeconds: timeoutSeconds });
}
