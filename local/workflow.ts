/**
 * Runs statemachine/moderation.asl.json on this machine with aws-local-stepfunctions: the same
 * definition the CDK deploys (invariant 5), with each `lambda:invoke` Task answered by an
 * in-process function instead of a Lambda call. Used by the local Step Functions endpoint and by
 * the state-machine tests.
 */
import './polyfills.ts';
import { readFileSync } from 'node:fs';
import { StateMachine } from 'aws-local-stepfunctions';
import { DEFINITION_FILE } from '../functions/lib/pipeline-settings.ts';

/** One entry of the execution's event log (the library does not export its own type). */
export interface EventLog {
  type: string;
  timestamp: number;
  state?: { name: string; type: string; input?: unknown; output?: unknown };
  Error?: string;
  Cause?: unknown;
  retry?: { attempt: number };
  [field: string]: unknown;
}

/** The file the CDK deploys too: one path, in functions/lib/pipeline-settings.ts. */
export const DEFINITION_PATH = DEFINITION_FILE;

/** A Lambda function as the workflow sees it: JSON in, JSON out, errors by name. */
export type StepFunction = (payload: unknown) => Promise<unknown>;

export interface WorkflowOptions {
  /** `${Name}` → value, exactly as the CDK passes definitionSubstitutions. */
  substitutions: Record<string, string>;
  /** Function name (the substituted FunctionName of a Task) → the function that answers it. */
  functions: Record<string, StepFunction>;
  /** The ASL text; defaults to statemachine/moderation.asl.json. */
  definition?: string;
  /** Milliseconds to wait between retries, per state (tests set 0 to skip backoff). */
  retryIntervalOverrides?: Record<string, number | number[]>;
}

export type ExecutionStatus = 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface ExecutionResult {
  status: ExecutionStatus;
  output?: unknown;
  error?: string;
  cause?: string;
  events: EventLog[];
}

export class DefinitionSubstitutionError extends Error {
  override name = 'DefinitionSubstitutionError';
}

/** Applies definitionSubstitutions the way Step Functions does, refusing to leave a placeholder unfilled. */
export function renderDefinition(text: string, substitutions: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_match, name: string) => {
    const value = substitutions[name];
    if (value === undefined) throw new DefinitionSubstitutionError(`no substitution for \${${name}} in the state machine definition`);
    return value;
  });
}

interface TaskState {
  Type: string;
  Resource?: string;
  Parameters?: { FunctionName?: string };
}

export class LocalWorkflow {
  private readonly machine: StateMachine;
  private readonly taskHandlers: Record<string, (input: unknown) => Promise<unknown>>;

  constructor(private readonly options: WorkflowOptions) {
    const text = renderDefinition(options.definition ?? readFileSync(DEFINITION_PATH, 'utf8'), options.substitutions);
    const definition = JSON.parse(text) as { States: Record<string, TaskState> };
    this.taskHandlers = {};
    for (const [stateName, state] of Object.entries(definition.States)) {
      if (state.Type !== 'Task') continue;
      const functionName = state.Parameters?.FunctionName;
      const fn = functionName ? options.functions[functionName] : undefined;
      if (!fn) throw new DefinitionSubstitutionError(`Task ${stateName} calls "${functionName}", which has no local function`);
      // lambda:invoke returns { Payload, StatusCode, ... }; the definition's OutputPath takes $.Payload.
      this.taskHandlers[stateName] = async (input) => ({ Payload: await fn((input as { Payload: unknown }).Payload), StatusCode: 200 });
    }
    this.machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  }

  /** Runs one execution to its end; never throws for a failed execution (the status says so). */
  async execute(input: unknown, execution: { id: string; name: string; signal?: AbortSignal }): Promise<ExecutionResult> {
    const run = this.machine.run(input as never, {
      overrides: { taskResourceLocalHandlers: this.taskHandlers as never, retryIntervalOverrides: this.options.retryIntervalOverrides },
      context: { Execution: { Id: execution.id, Name: execution.name, Input: input, StartTime: new Date().toISOString() } } as never,
    });
    // StopExecution: the execution ends ABORTED at once (a Task in flight finishes unheard).
    if (execution.signal?.aborted) run.abort();
    else execution.signal?.addEventListener('abort', () => run.abort(), { once: true });
    const events: EventLog[] = [];
    const collecting = (async () => {
      for await (const event of run.eventLogs) events.push(event as unknown as EventLog);
    })();
    try {
      const output = await run.result;
      await collecting;
      return { status: 'SUCCEEDED', output, events };
    } catch (err) {
      await collecting.catch(() => undefined);
      const failed = events.find((e) => e.type === 'ExecutionFailed') as { Error?: string; Cause?: unknown } | undefined;
      const e = err as Error & { name: string };
      const timedOut = e.name === 'ExecutionTimeoutError';
      return {
        status: timedOut ? 'TIMED_OUT' : e.name === 'ExecutionAbortedError' ? 'ABORTED' : 'FAILED',
        error: failed?.Error ?? (timedOut ? 'States.Timeout' : e.name),
        cause: typeof failed?.Cause === 'string' ? failed.Cause : failed?.Cause !== undefined ? JSON.stringify(failed.Cause) : e.message,
        events,
      };
    }
  }
}
