/**
 * A small Step Functions-compatible endpoint (AWS JSON 1.0, X-Amz-Target AWSStepFunctions.*) in
 * front of LocalWorkflow, so the ingest handler's unchanged SFNClient starts executions locally:
 * StartExecution, StartSyncExecution, DescribeExecution, StopExecution (plus DescribeStateMachine),
 * with the real response shapes and errors ({__type, message}). Executions run in this process; a
 * bounded history is kept in memory for DescribeExecution (nothing persists across a restart).
 *
 * Like Step Functions on AWS, each status change of a STANDARD execution (RUNNING, then SUCCEEDED,
 * FAILED, TIMED_OUT or ABORTED) is told as an EventBridge "Step Functions Execution Status Change"
 * event, to `statusChanges`, delivered asynchronously and retried like an asynchronous Lambda
 * invocation; Express executions send none.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { ExecutionResult } from './workflow.ts';
import { EXECUTION_STATUS_CHANGE } from '../functions/lib/pipeline-settings.ts';
import { closeServer, endpointOf, listen, LOCAL_ACCOUNT_ID, LOCAL_REGION, LOOPBACK, parseAwsJsonBody, readRequestBody, sendAwsJson, silentLogger, type LocalLogger } from './net.ts';

export type StateMachineType = 'EXPRESS' | 'STANDARD';

/** Anything that runs an execution to its end the way LocalWorkflow does. */
export interface ExecutionRunner {
  /** `signal` aborts the execution (StopExecution): it should then end ABORTED. */
  execute(input: unknown, execution: { id: string; name: string; signal?: AbortSignal }): Promise<ExecutionResult>;
}

export interface LocalStateMachine {
  name: string;
  type: StateMachineType;
  workflow: ExecutionRunner;
  /** Shown by DescribeStateMachine. */
  definition?: string;
}

export interface StepFunctionsEndpointOptions {
  stateMachines: LocalStateMachine[];
  port?: number;
  host?: string;
  region?: string;
  accountId?: string;
  /** Executions kept for DescribeExecution; the oldest finished ones go first. Default 1,000. */
  historyLimit?: number;
  /** STANDARD execution names remembered (a name cannot be reused). Default 50,000. */
  nameLimit?: number;
  /**
   * Told every status change of a STANDARD execution, as the EventBridge event Step Functions
   * sends on AWS. Called asynchronously (the execution does not wait); a throw is retried
   * `statusChangeAttempts` times in all, like an asynchronous Lambda invocation, then logged.
   */
  statusChanges?: (event: ExecutionStatusChangeEvent) => unknown;
  /** Deliveries of one status change event (1 + retries). Default 3, as Lambda's asynchronous invocation. */
  statusChangeAttempts?: number;
  /** Wait before a status change event's retry, times the attempt number. Default 1,000 ms. */
  statusChangeRetryMs?: number;
  log?: LocalLogger;
}

/** The EventBridge event Step Functions sends for a Standard execution's status change. */
export interface ExecutionStatusChangeEvent {
  version: '0';
  id: string;
  'detail-type': typeof EXECUTION_STATUS_CHANGE.detailType;
  source: typeof EXECUTION_STATUS_CHANGE.source;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: {
    executionArn: string;
    stateMachineArn: string;
    name: string;
    status: ExecutionStatus;
    /** Epoch milliseconds. */
    startDate: number;
    stopDate: number | null;
    input: string;
    inputDetails: { included: boolean };
    output: string | null;
    outputDetails: { included: boolean } | null;
    error: string | null;
    cause: string | null;
  };
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface ExecutionRecord {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  type: StateMachineType;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
}

export interface StepFunctionsEndpoint {
  endpoint: string;
  port: number;
  stateMachineArn(name: string): string;
  /** A copy of the execution history, oldest first. */
  executions(): ExecutionRecord[];
  /** Executions still running (StartExecution runs them in the background). */
  running(): number;
  /** Status change events being delivered (or waiting for a retry). */
  statusChangesInFlight(): number;
  /** Stops accepting requests and waits for running executions to end. */
  close(): Promise<void>;
}

export class StepFunctionsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = type;
  }
}

const MAX_INPUT_BYTES = 262_144;
/** Step Functions' rule for execution names: 1-80 characters, none of these. */
const INVALID_NAME = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/u;

export function stateMachineArnFor(name: string, region = LOCAL_REGION, accountId = LOCAL_ACCOUNT_ID): string {
  return `arn:aws:states:${region}:${accountId}:stateMachine:${name}`;
}

export async function startStepFunctionsEndpoint(options: StepFunctionsEndpointOptions): Promise<StepFunctionsEndpoint> {
  const host = options.host ?? LOOPBACK;
  const region = options.region ?? LOCAL_REGION;
  const accountId = options.accountId ?? LOCAL_ACCOUNT_ID;
  const historyLimit = Math.max(1, options.historyLimit ?? 1_000);
  const nameLimit = Math.max(1, options.nameLimit ?? 50_000);
  const log = options.log ?? silentLogger;

  const machines = new Map<string, LocalStateMachine>();
  for (const machine of options.stateMachines) machines.set(stateMachineArnFor(machine.name, region, accountId), machine);

  const history = new Map<string, ExecutionRecord>();
  /** STANDARD names are unique per state machine: `${stateMachineArn}|${name}` → execution arn. */
  const standardNames = new Map<string, string>();
  const runningExecutions = new Set<Promise<unknown>>();
  /** Abort controllers of running STANDARD executions (StopExecution). */
  const stoppers = new Map<string, AbortController>();
  const deliveries = new Set<Promise<unknown>>();
  const attempts = Math.max(1, options.statusChangeAttempts ?? 3);
  const retryMs = Math.max(0, options.statusChangeRetryMs ?? 1_000);
  let closing = false;

  /** Tells a STANDARD execution's status change to the listener, in the background, retried. */
  const tell = (record: ExecutionRecord) => {
    const listener = options.statusChanges;
    if (!listener || record.type !== 'STANDARD') return;
    const event = statusChangeEvent(record, region, accountId);
    const delivery = (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await listener(event);
          return;
        } catch (err) {
          const context = { executionArn: record.executionArn, status: record.status, attempt, error: (err as Error).message };
          if (attempt >= attempts) {
            log.error('status change event not delivered; giving up', context);
            return;
          }
          log.warn('status change event not delivered; retrying', context);
          await new Promise((resolve) => setTimeout(resolve, retryMs * attempt));
        }
      }
    })();
    deliveries.add(delivery);
    void delivery.finally(() => deliveries.delete(delivery));
  };

  const remember = (record: ExecutionRecord) => {
    history.set(record.executionArn, record);
    if (record.type === 'STANDARD') {
      standardNames.set(`${record.stateMachineArn}|${record.name}`, record.executionArn);
      for (const key of standardNames.keys()) {
        if (standardNames.size <= nameLimit) break;
        standardNames.delete(key);
      }
    }
    if (history.size <= historyLimit) return;
    for (const [arn, old] of history) {
      if (history.size <= historyLimit) break;
      if (old.status !== 'RUNNING') history.delete(arn);
    }
  };

  const run = async (machine: LocalStateMachine, record: ExecutionRecord): Promise<void> => {
    let result: ExecutionResult;
    const stopper = new AbortController();
    if (record.type === 'STANDARD') stoppers.set(record.executionArn, stopper);
    try {
      result = await machine.workflow.execute(JSON.parse(record.input), { id: record.executionArn, name: record.name, signal: stopper.signal });
    } catch (err) {
      result = { status: 'FAILED', error: (err as Error).name || 'States.Runtime', cause: (err as Error).message, events: [] };
    } finally {
      stoppers.delete(record.executionArn);
    }
    // StopExecution ended it already (and told so).
    if (record.status !== 'RUNNING') return;
    record.status = result.status;
    record.stopDate = new Date();
    if (result.status === 'SUCCEEDED') record.output = JSON.stringify(result.output ?? null);
    else {
      record.error = result.error;
      record.cause = result.cause;
      log.warn('execution did not succeed', { executionArn: record.executionArn, status: result.status, error: result.error });
    }
    tell(record);
  };

  const start = (body: Record<string, unknown>, sync: boolean): { record: ExecutionRecord; done: Promise<void>; reused?: boolean } => {
    if (closing) throw new StepFunctionsError('ServiceUnavailable', 'the local Step Functions endpoint is shutting down', 503);
    const stateMachineArn = stringField(body, 'stateMachineArn', true)!;
    if (!/^arn:aws[a-z-]*:states:[^:]*:[^:]*:stateMachine:[^:]+$/.test(stateMachineArn)) {
      throw new StepFunctionsError('InvalidArn', `Invalid Arn: 'Resource type not valid in this context: ${stateMachineArn}'`);
    }
    const machine = machines.get(stateMachineArn);
    if (!machine) throw new StepFunctionsError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
    if (sync && machine.type !== 'EXPRESS') {
      throw new StepFunctionsError('StateMachineTypeNotSupported', 'This operation is not supported by this type of state machine');
    }
    const name = stringField(body, 'name') ?? randomUUID();
    if (name.length < 1 || name.length > 80 || INVALID_NAME.test(name)) throw new StepFunctionsError('InvalidName', `Invalid Name: '${name}'`);
    const input = stringField(body, 'input') ?? '{}';
    if (Buffer.byteLength(input) > MAX_INPUT_BYTES) {
      throw new StepFunctionsError('InvalidExecutionInput', `Invalid Execution Input: input size exceeds ${MAX_INPUT_BYTES} bytes`);
    }
    try {
      JSON.parse(input);
    } catch (err) {
      throw new StepFunctionsError('InvalidExecutionInput', `Invalid Execution Input: ${(err as Error).message}`);
    }

    const executionArn =
      machine.type === 'EXPRESS'
        ? `arn:aws:states:${region}:${accountId}:express:${machine.name}:${name}:${randomUUID()}`
        : `arn:aws:states:${region}:${accountId}:execution:${machine.name}:${name}`;
    if (machine.type === 'STANDARD') {
      const existingArn = standardNames.get(`${stateMachineArn}|${name}`);
      if (existingArn) {
        const existing = history.get(existingArn);
        // Idempotent for a running execution with the same input; otherwise the name is taken.
        if (existing?.status === 'RUNNING' && existing.input === input) return { record: existing, done: Promise.resolve(), reused: true };
        throw new StepFunctionsError('ExecutionAlreadyExists', `Execution Already Exists: '${existingArn}'`);
      }
    }
    const record: ExecutionRecord = {
      executionArn,
      stateMachineArn,
      name,
      type: machine.type,
      status: 'RUNNING',
      startDate: new Date(),
      input,
    };
    remember(record);
    tell(record);
    const done = run(machine, record);
    runningExecutions.add(done);
    void done.finally(() => runningExecutions.delete(done));
    return { record, done };
  };

  const operations: Record<string, (body: Record<string, unknown>) => Promise<unknown>> = {
    async StartExecution(body) {
      const { record } = start(body, false);
      return { executionArn: record.executionArn, startDate: epoch(record.startDate) };
    },
    async StartSyncExecution(body) {
      const { record, done } = start(body, true);
      await done;
      const response: Record<string, unknown> = {
        executionArn: record.executionArn,
        stateMachineArn: record.stateMachineArn,
        name: record.name,
        startDate: epoch(record.startDate),
        stopDate: epoch(record.stopDate ?? new Date()),
        status: record.status,
        input: record.input,
        inputDetails: { included: true },
        billingDetails: {
          billedMemoryUsedInMB: 64,
          billedDurationInMilliseconds: Math.max(100, Math.ceil(((record.stopDate ?? new Date()).getTime() - record.startDate.getTime()) / 100) * 100),
        },
      };
      if (record.output !== undefined) Object.assign(response, { output: record.output, outputDetails: { included: true } });
      if (record.error !== undefined) response.error = record.error;
      if (record.cause !== undefined) response.cause = record.cause;
      return response;
    },
    async DescribeExecution(body) {
      const executionArn = stringField(body, 'executionArn', true)!;
      if (!/^arn:aws[a-z-]*:states:[^:]*:[^:]*:(execution|express):/.test(executionArn)) {
        throw new StepFunctionsError('InvalidArn', `Invalid Arn: 'Resource type not valid in this context: ${executionArn}'`);
      }
      const record = history.get(executionArn);
      if (!record) throw new StepFunctionsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
      const response: Record<string, unknown> = {
        executionArn: record.executionArn,
        stateMachineArn: record.stateMachineArn,
        name: record.name,
        status: record.status,
        startDate: epoch(record.startDate),
        input: record.input,
        inputDetails: { included: true },
        redriveCount: 0,
        redriveStatus: 'NOT_REDRIVABLE',
      };
      if (record.stopDate) response.stopDate = epoch(record.stopDate);
      if (record.output !== undefined) Object.assign(response, { output: record.output, outputDetails: { included: true } });
      if (record.error !== undefined) response.error = record.error;
      if (record.cause !== undefined) response.cause = record.cause;
      return response;
    },
    async StopExecution(body) {
      const executionArn = stringField(body, 'executionArn', true)!;
      if (!/^arn:aws[a-z-]*:states:[^:]*:[^:]*:(execution|express):/.test(executionArn)) {
        throw new StepFunctionsError('InvalidArn', `Invalid Arn: 'Resource type not valid in this context: ${executionArn}'`);
      }
      const record = history.get(executionArn);
      if (!record) throw new StepFunctionsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
      if (record.type !== 'STANDARD') throw new StepFunctionsError('ValidationException', 'This operation is not supported by this type of state machine');
      if (record.status === 'RUNNING') {
        record.status = 'ABORTED';
        record.stopDate = new Date();
        record.error = stringField(body, 'error');
        record.cause = stringField(body, 'cause');
        stoppers.get(executionArn)?.abort();
        log.warn('execution stopped', { executionArn, error: record.error });
        tell(record);
      }
      return { stopDate: epoch(record.stopDate ?? new Date()) };
    },
    async DescribeStateMachine(body) {
      const stateMachineArn = stringField(body, 'stateMachineArn', true)!;
      const machine = machines.get(stateMachineArn);
      if (!machine) throw new StepFunctionsError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
      return {
        stateMachineArn,
        name: machine.name,
        status: 'ACTIVE',
        type: machine.type,
        definition: machine.definition ?? '{}',
        roleArn: `arn:aws:iam::${accountId}:role/${machine.name}-role`,
        creationDate: epoch(started),
      };
    },
  };
  const started = new Date();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const [prefix, operation] = target.split('.');
    try {
      const bytes = await readRequestBody(req);
      if (req.method !== 'POST') throw new StepFunctionsError('UnknownOperationException', `${req.method} is not supported`, 404);
      const fn = prefix === 'AWSStepFunctions' && operation ? operations[operation] : undefined;
      if (!fn) throw new StepFunctionsError('UnknownOperationException', `Unknown operation ${target || '(no X-Amz-Target)'}`);
      send(res, 200, await fn(parseAwsJsonBody(bytes, (reason) => new StepFunctionsError('SerializationException', reason))));
    } catch (err) {
      const e = err instanceof StepFunctionsError ? err : new StepFunctionsError('InternalFailure', (err as Error).message, 500);
      if (e.status >= 500) log.error('Step Functions endpoint error', { operation: target, error: e.message });
      const namespace = e.type === 'UnknownOperationException' ? 'com.amazon.coral.service' : 'com.amazonaws.swf.service.v2.model';
      send(res, e.status, { __type: `${namespace}#${e.type}`, message: e.message }, e.type);
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  const port = await listen(server, options.port ?? 0, host);
  return {
    endpoint: endpointOf(port, host),
    port,
    stateMachineArn: (name) => stateMachineArnFor(name, region, accountId),
    executions: () => [...history.values()].map((record) => ({ ...record })),
    running: () => runningExecutions.size,
    statusChangesInFlight: () => deliveries.size,
    close: async () => {
      closing = true;
      while (runningExecutions.size || deliveries.size) await Promise.allSettled([...runningExecutions, ...deliveries]);
      await closeServer(server);
    },
  };
}

/** The EventBridge event of an execution's current status, as Step Functions sends it. */
function statusChangeEvent(record: ExecutionRecord, region: string, accountId: string): ExecutionStatusChangeEvent {
  const ended = record.status !== 'RUNNING';
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': EXECUTION_STATUS_CHANGE.detailType,
    source: EXECUTION_STATUS_CHANGE.source,
    account: accountId,
    time: (record.stopDate ?? record.startDate).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [record.executionArn],
    detail: {
      executionArn: record.executionArn,
      stateMachineArn: record.stateMachineArn,
      name: record.name,
      status: record.status,
      startDate: record.startDate.getTime(),
      stopDate: ended ? (record.stopDate ?? new Date()).getTime() : null,
      input: record.input,
      inputDetails: { included: true },
      output: record.output ?? null,
      outputDetails: record.output === undefined ? null : { included: true },
      error: record.error ?? null,
      cause: record.cause ?? null,
    },
  };
}

function stringField(body: Record<string, unknown>, field: string, required = false): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) {
    if (required) throw new StepFunctionsError('ValidationException', `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`);
    return undefined;
  }
  if (typeof value !== 'string') throw new StepFunctionsError('SerializationException', `${field} must be a string`);
  return value;
}

/** JSON 1.0 timestamps: epoch seconds. */
function epoch(date: Date): number {
  return date.getTime() / 1000;
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  sendAwsJson(res, status, body, '1.0', errorType);
}
