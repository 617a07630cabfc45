/**
 * The whole pipeline in one process: a small AWS on 127.0.0.1 (S3, SQS, DynamoDB, Step Functions,
 * Rekognition) running the same ASL and the same handlers as the CDK stack (invariants 5 and 6).
 *
 *   PutObject ─▶ s3rver ─(notification, real shape)─▶ intake queue ─▶ poller (event source mapping)
 *     ─▶ ingest handler ─(SFNClient)─▶ local Step Functions endpoint ─▶ LocalWorkflow ─▶ detect/review/
 *     record/apply/fail handlers ─(SDK clients via AWS_ENDPOINT_URL_*)─▶ the same local services
 *
 * The handlers read their configuration from process.env when imported, so the stack sets the
 * environment first and imports them after. What persists under `home`: S3 objects (`s3/`), the
 * decision table (`dynamodb/`), queue messages saved at a graceful stop (`sqs/`), and notifications
 * that could not be delivered. Step Functions executions are in memory only: a marker file
 * (`stack-running.json`) exists while the stack runs, and a start that finds it (the last run was
 * killed) enqueues the objects left undecided (local/recovery.ts).
 *
 * Every endpoint binds to 127.0.0.1 through local/net.ts listen(), which refuses cross-site browser
 * requests unless their origin is in `corsOrigins`.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { S3Client } from '@aws-sdk/client-s3';
import { DEFAULTS, ENV, type WorkflowType } from '../functions/lib/config.ts';
import { formatAnalysisList, parseAnalysisList } from '../functions/lib/analysis-policy.ts';
import { DEFAULT_STATUS_SHARDS } from '../functions/store/table-schema.ts';
import { defaultPolicySetting, parsePolicySet, policySetParameterValue, resolvePolicySet } from '../functions/lib/policy-set.ts';
import { startLocalSsm, POLICY_PARAMETER_NAME, type LocalSsm } from './ssm.ts';
import { startLocalS3, type NotifiedEvent, DEFAULT_UPLOADS_PREFIX, QUARANTINE_BUCKET, UPLOADS_BUCKET, type LocalS3 } from './s3.ts';
import { startLocalSqs, DEFAULT_VISIBILITY_TIMEOUT_SECONDS, type LocalSqs } from './sqs.ts';
import { EXECUTION_STATUS_CHANGE, MAX_RECEIVE_COUNT, UNSETTLED_END_STATUSES } from '../functions/lib/pipeline-settings.ts';
import { startLocalDynamo, DECISION_TABLE_NAME, type LocalDynamo } from './dynamodb.ts';
import { localDecisionEvents, type LocalDecisionEvents } from './decision-events.ts';
import { webhookUrlProblem, type WebhookSettings } from './webhook-delivery.ts';
import { startStepFunctionsEndpoint, type ExecutionRunner, type ExecutionStatusChangeEvent, type StepFunctionsEndpoint } from './stepfunctions.ts';
import { startPoller, type Poller } from './poller.ts';
import { appealEnvironment, createAppealQueues, startLocalAppeals } from './appeals.ts';
import { FUNCTION_NAMES, lambdaContext, loadHandlers, moderationWorkflow, throughJson, type ModerationHandlers } from './functions.ts';
import { allowBrowserOrigins, consoleLogger, LOCAL_REGION, LOOPBACK, type LocalLogger } from './net.ts';
import { nextWholeSecond, readRunningMarker, recoverUndecided, removeRunningMarker, writeRunningMarker, type RecoveryReport } from './recovery.ts';
import { DUMMY_CREDENTIALS, type LocalEndpoints } from './client-config.ts';
import { UserFacingError } from '../functions/lib/errors.ts';

export { localClientConfig, type LocalEndpoints } from './client-config.ts';

export const STATE_MACHINE_NAME = 'moderation';


/** What a Rekognition-compatible detector endpoint factory gets (local/detector/server.ts's startDetectorEndpoint). */
export interface DetectorStartOptions {
  host: string;
  port: number;
  s3: {
    endpoint: string;
    region: string;
    forcePathStyle: boolean;
    credentials: { accessKeyId: string; secretAccessKey: string };
    /** Reads an object of the stack's S3 in this process, without HTTP (LocalS3.readObject). */
    read: LocalS3['readObject'];
  };
}

export interface RunningDetector {
  endpoint: string;
  close(): Promise<void>;
}

export type DetectorFactory = (options: DetectorStartOptions) => Promise<RunningDetector>;

export interface LocalPorts {
  s3?: number;
  sqs?: number;
  dynamodb?: number;
  stepfunctions?: number;
  rekognition?: number;
  ssm?: number;
}

export interface LocalStackOptions {
  /** Data directory. Default: $MODERATION_HOME, else `<cwd>/.moderation`. */
  home?: string;
  /**
   * Preset name, policy (or policy set) file path, or the text (YAML/JSON): written to the live-policy
   * parameter (local/ssm.ts) at start; its default policy becomes MODERATION_POLICY. Default:
   * $MODERATION_POLICY; neither: the parameter keeps what was last pushed in this data directory,
   * else 'standard'.
   */
  policy?: string;
  /**
   * How long the detect step trusts its copy of the live policy (POLICY_CACHE_SECONDS). Default 1 s
   * here, so a `moderation policy push` reaches the next upload at once; 60 s on AWS.
   */
  policyCacheSeconds?: number;
  /** Bedrock contextual review of BORDERLINE images; absent: off, BORDERLINE is recorded as REVIEW. */
  contextualReview?: { modelId: string };
  /**
   * The Rekognition endpoint: an already running one, or a factory to start one. Default: the local
   * nsfwjs detector (local/detector/server.ts).
   */
  detector?: { endpoint: string } | { start: DetectorFactory };
  uploadsPrefix?: string;
  /** Default `<uploadsPrefix>{uploader}/`. */
  uploaderPattern?: string;
  workflowType?: WorkflowType;
  /**
   * Batches the poller keeps in flight (the mapping's maximumConcurrency). Default 4: with Express
   * each batch waits for its slowest execution, so two batches left the detector idle half the time
   * (`npm run bench`: pipeline/detector throughput 0.5 with 2, 0.99 with 4).
   */
  pollerConcurrency?: number;
  /** Messages per batch, 1-10. Default 10. */
  batchSize?: number;
  /** Intake queue visibility timeout. Default 300 s (longer than the state machine's 270 s timeout). */
  visibilityTimeoutSeconds?: number;
  /** Poller long-poll wait, 0-20 s. Default 1 (it bounds how long stop() takes). */
  waitTimeSeconds?: number;
  /** Fixed ports (for `serve`); 0 or absent: a free port. */
  ports?: LocalPorts;
  statusShards?: number;
  /** Only errors are logged (the stack's own logs, and the handlers' log level becomes ERROR). */
  quiet?: boolean;
  /** Where the stack's own logs go (default stderr). */
  logger?: LocalLogger;
  /**
   * Replace handlers (tests). A handler not given is imported from functions/. When all six are given,
   * functions/ is not imported at all.
   */
  functions?: Partial<ModerationHandlers>;
  /** Per-state retry waits in ms (tests set 0 to skip the ASL's backoff). */
  retryIntervalOverrides?: Record<string, number | number[]>;
  /**
   * The executions' TimeoutSeconds, overriding the definition's (270) locally only: tests make a
   * STANDARD execution time out to see it settled (functions/settle.ts).
   */
  executionTimeoutSeconds?: number;
  /**
   * The uploads bucket's serving gate (default on, as the construct's bucket policy): requests not
   * signed with the stack's own access key may read a moderated object only once it is APPROVED, and
   * may not write moderation-* tags.
   */
  servingGate?: boolean;
  /**
   * The ObjectCreated events the uploads bucket notifies (default: all that add content, as the
   * construct configures). The reliability harness leaves out Copy to stage objects silently and
   * then play S3's part itself.
   */
  notifiedEvents?: readonly NotifiedEvent[];
  /** Save queue messages at stop and restore them at start (default true). */
  persistQueues?: boolean;
  /**
   * Browser origins allowed to call the local endpoints (CORS), e.g. 'http://localhost:3000'. Any
   * other cross-site browser request is refused with 403 (see guardBrowserRequests in local/net.ts).
   */
  corsOrigins?: string[];
  /**
   * After an unclean stop (the last run left its marker), enqueue the objects left without a
   * decision (local/recovery.ts). Default true.
   */
  recoverAfterUncleanStop?: boolean;
  /**
   * Decision events (invariant 8, docs/events.md) go to this webhook, signed; without it they are kept
   * in `<home>/events/` only. `drainOnStopMs`: how long stop() waits for outstanding deliveries
   * (default 5,000 ms); what is still pending then is sent at the next start.
   */
  webhook?: WebhookSettings & { drainOnStopMs?: number };
  /**
   * The share (0 to 1) of automated APPROVED/REJECTED decisions that also go to the review queue for a
   * blind quality check (functions/lib/quality.ts). Default 0 here, so a stack started from code (the
   * tests) keeps exact histories; `moderation run|serve` pass `--quality-sample`, default
   * DEFAULTS.qualitySampleRate (0.01), as the construct does.
   */
  qualitySampleRate?: number;
  /**
   * Never pay twice for the same bytes (functions/content-reuse.ts): identical bytes repeat their
   * decision and near-duplicates of rejected images are rejected, without Rekognition. Default: on,
   * as the construct does, unless $REUSE_DECISIONS is `off`.
   */
  reuseDecisions?: boolean;
  /**
   * Analyses run on every image whatever the policy says (`moderation run|serve --analyze`): a
   * comma-separated list of labels, faces, text (functions/analysis.ts). Locally every analysis is
   * enabled (the local endpoint answers them all; there is no IAM), so ANALYSIS_ENABLED is not set.
   */
  analyze?: string;
}


export interface LocalNames {
  uploadsBucket: string;
  quarantineBucket: string;
  intakeQueueUrl: string;
  deadLetterQueueUrl: string;
  decisionTable: string;
  stateMachineArn: string;
  uploadsPrefix: string;
  statusShards: number;
  /** The live policy's SSM parameter (local/ssm.ts). */
  policyParameter: string;
  /** The analyses this stack enables (all of them locally), as `moderation policy validate` checks a policy against them. */
  analysisEnabled: string;
  /** The platform's appeal requests (local/appeals.ts; docs/events.md, "Appeals from the platform"). */
  appealQueueUrl: string;
  appealDeadLetterQueueUrl: string;
}

export interface LocalStack {
  region: string;
  home: string;
  endpoints: Required<LocalEndpoints>;
  names: LocalNames;
  /** The environment the handlers got (set in process.env while the stack runs). */
  env: Record<string, string>;
  /** The parts, for tools and tests that need more than the endpoints. */
  services: {
    s3: LocalS3;
    sqs: LocalSqs;
    dynamodb: LocalDynamo;
    stepFunctions: StepFunctionsEndpoint;
    poller: Poller;
    ssm: LocalSsm;
  };
  /**
   * Resolves when the recovery after an unclean stop is done (undefined: there was none, or it
   * failed and was logged). Never rejects.
   */
  recovery: Promise<RecoveryReport | undefined>;
  /** The decision events: the outbox under `<home>/events/` and the webhook worker (local/decision-events.ts). */
  events: LocalDecisionEvents;
  /** Graceful: finishes in-flight batches and executions, saves queued messages, closes every server. */
  stop(): Promise<void>;
}

/** Whatever the handler modules were imported with in this process: SDK clients and config are fixed at import. */
let imported: { env: Record<string, string>; ports: Required<LocalPorts>; handlers: ModerationHandlers } | undefined;
let active = false;

export class LocalStackConfigurationError extends UserFacingError {
  override name = 'LocalStackConfigurationError';
}

/** The data directory: the option, else $MODERATION_HOME, else `<cwd>/.moderation`. */
export function defaultHome(home?: string): string {
  return resolve(home ?? process.env.MODERATION_HOME ?? join(process.cwd(), '.moderation'));
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  if (active) throw new LocalStackConfigurationError('a local stack is already running in this process (the handlers share process.env): stop it first');
  active = true;
  const cleanup: Array<() => Promise<void>> = [];
  const restoreEnv = new Map<string, string | undefined>();
  try {
    return await start(options, cleanup, restoreEnv);
  } catch (err) {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    restoreEnvironment(restoreEnv);
    active = false;
    throw err;
  }
}

async function start(options: LocalStackOptions, cleanup: Array<() => Promise<void>>, restoreEnv: Map<string, string | undefined>): Promise<LocalStack> {
  const home = defaultHome(options.home);
  const log = options.logger ?? consoleLogger('moderation-local', options.quiet);
  // Before anything listens: an origin that is not one throws here.
  const revokeOrigins = allowBrowserOrigins(options.corsOrigins ?? []);
  cleanup.push(async () => revokeOrigins());
  const region = LOCAL_REGION;
  const uploadsPrefix = options.uploadsPrefix ?? DEFAULT_UPLOADS_PREFIX;
  const workflowType = options.workflowType ?? 'EXPRESS';
  const statusShards = options.statusShards ?? DEFAULT_STATUS_SHARDS;
  const persistQueues = options.persistQueues ?? true;
  const requestedPolicy = options.policy ?? process.env[ENV.policy];
  const needsImport = (['ingest', 'detect', 'review', 'record', 'apply', 'fail'] as const).some((name) => !options.functions?.[name]);
  // Handlers already imported in this process keep the endpoints they first resolved: reuse those ports.
  const ports: LocalPorts = { ...(needsImport && imported ? imported.ports : {}), ...definedPorts(options.ports) };
  mkdirSync(home, { recursive: true });

  // 1. The services.
  const visibilityTimeout = options.visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS;
  // The queue's RedrivePolicy and the poller's last-receive check below use the same count as the CDK stack.
  const sqs = await startLocalSqs({ port: ports.sqs, visibilityTimeoutSeconds: visibilityTimeout, maxReceiveCount: MAX_RECEIVE_COUNT });
  cleanup.push(() => sqs.close());
  const rate = options.qualitySampleRate;
  if (rate !== undefined && !(Number.isFinite(rate) && rate >= 0 && rate <= 1)) throw new LocalStackConfigurationError(`qualitySampleRate must be from 0 to 1, got ${rate}`);
  // The table's stream feeds the decision events: every record written gets one (invariant 8).
  const webhookProblem = options.webhook && webhookUrlProblem(options.webhook.url);
  if (webhookProblem) throw new LocalStackConfigurationError(`webhook: ${webhookProblem}`);
  const events = localDecisionEvents({ home, webhook: options.webhook, log });
  const dynamodb = await startLocalDynamo({ path: join(home, 'dynamodb'), port: ports.dynamodb, tableName: DECISION_TABLE_NAME, stream: events.stream });
  cleanup.push(() => dynamodb.close());
  if (dynamodb.upgraded) {
    // Said even when quiet: the data directory changed on disk, once.
    const { items, previous, changes } = dynamodb.upgraded;
    const message = `upgraded the decision table to this version's indexes (${changes.join('; ')}): ${items} items copied; the table as it was is kept in ${previous}`;
    if (log.notice) log.notice(message);
    else log.info(message);
  }
  await events.start({ endpoint: dynamodb.endpoint, region, tableName: dynamodb.tableName, statusShards });
  cleanup.push(() => events.stop());
  // The live policy (docs/operating.md, "Live policy"): a policy asked for is published; else what was pushed stays.
  const ssm = await startLocalSsm({ directory: join(home, 'ssm'), port: ports.ssm, region, log });
  cleanup.push(() => ssm.close());
  const policy = seedPolicyParameter(ssm, requestedPolicy);
  // The data directory is this process's now (dynamodb's lock): a marker left by the last run means it
  // did not stop gracefully. S3 then opens at a whole second, which tells its uploads from ours.
  const uncleanStop = readRunningMarker(home);
  writeRunningMarker(home);
  if (!uncleanStop) cleanup.push(async () => removeRunningMarker(home));
  const recovering = Boolean(uncleanStop) && options.recoverAfterUncleanStop !== false;
  const boundary = recovering ? await nextWholeSecond() : new Date();
  const notifier = new SQSClient({ endpoint: sqs.endpoint, region, credentials: DUMMY_CREDENTIALS });
  cleanup.push(async () => notifier.destroy());
  // The keys the pipeline's own requests are signed with (the gate exempts them): the stack's dummy
  // key, and the user's own when the handlers keep real credentials for Bedrock (added below).
  const pipelineAccessKeys: string[] = [DUMMY_CREDENTIALS.accessKeyId];
  const s3 = await startLocalS3({
    directory: join(home, 's3'),
    port: ports.s3,
    region,
    buckets: [UPLOADS_BUCKET, QUARANTINE_BUCKET],
    notifications: [{ bucket: UPLOADS_BUCKET, prefix: uploadsPrefix, events: options.notifiedEvents, configurationId: 'moderation-intake', queueUrl: sqs.intakeQueueUrl, sqs: notifier }],
    spoolFile: join(home, 'undelivered-notifications.jsonl'),
    spooledAtStart: recovering ? 'hold' : 'resend',
    // Invariant 7 locally: only the pipeline (this stack's own key) reads unapproved uploads.
    servingGate: options.servingGate === false ? undefined : { bucket: UPLOADS_BUCKET, prefix: uploadsPrefix, pipelineAccessKeys },
    log,
  });
  cleanup.push(() => s3.close());

  let detector: RunningDetector;
  if (options.detector && 'endpoint' in options.detector) {
    detector = { endpoint: options.detector.endpoint.replace(/\/+$/, ''), close: async () => {} };
  } else {
    const factory = options.detector?.start ?? (await defaultDetectorFactory());
    detector = await factory({
      host: LOOPBACK,
      port: ports.rekognition ?? 0,
      s3: { endpoint: s3.endpoint, region, forcePathStyle: true, credentials: DUMMY_CREDENTIALS, read: s3.readObject },
    });
  }
  cleanup.push(() => detector.close());

  // The workflow is attached once the handlers are loaded (they need the endpoint's URL in their env).
  let workflow: ExecutionRunner | undefined;
  // So is the settle handler, which the endpoint's status change events reach (EventBridge's rule on AWS).
  let settleEnded: ((event: ExecutionStatusChangeEvent) => Promise<unknown>) | undefined;
  const stepFunctions = await startStepFunctionsEndpoint({
    port: ports.stepfunctions,
    region,
    stateMachines: [
      {
        name: STATE_MACHINE_NAME,
        type: workflowType,
        workflow: { execute: (input, execution) => workflow!.execute(input, execution) },
      },
    ],
    statusChanges: (event) => settleEnded?.(event),
    log,
  });
  cleanup.push(() => stepFunctions.close());

  const endpoints: Required<LocalEndpoints> = {
    s3: s3.endpoint,
    sqs: sqs.endpoint,
    dynamodb: dynamodb.endpoint,
    stepfunctions: stepFunctions.endpoint,
    rekognition: detector.endpoint,
    ssm: ssm.endpoint,
  };
  const appealQueues = await createAppealQueues(notifier);
  const names: LocalNames = {
    uploadsBucket: UPLOADS_BUCKET,
    quarantineBucket: QUARANTINE_BUCKET,
    intakeQueueUrl: sqs.intakeQueueUrl,
    deadLetterQueueUrl: sqs.deadLetterQueueUrl,
    decisionTable: dynamodb.tableName,
    stateMachineArn: stepFunctions.stateMachineArn(STATE_MACHINE_NAME),
    uploadsPrefix,
    statusShards,
    policyParameter: POLICY_PARAMETER_NAME,
    analysisEnabled: LOCAL_ANALYSES,
    appealQueueUrl: appealQueues.queueUrl,
    appealDeadLetterQueueUrl: appealQueues.deadLetterQueueUrl,
  };

  // 2. The handlers' environment, then the handlers.
  const env = handlerEnvironment({ endpoints, names, policy, workflowType, options, uploadsPrefix, log });
  Object.assign(env, appealEnvironment(names.appealDeadLetterQueueUrl));
  if (env.AWS_ACCESS_KEY_ID !== DUMMY_CREDENTIALS.accessKeyId) {
    // Real credentials kept for Bedrock sign the handlers' S3 requests too: the gate must know them.
    const probe = new S3Client({ region });
    const real = await probe.config.credentials().catch(() => undefined);
    probe.destroy();
    if (real?.accessKeyId) pipelineAccessKeys.push(real.accessKeyId);
  }
  for (const [key, value] of Object.entries(env)) {
    if (!restoreEnv.has(key)) restoreEnv.set(key, process.env[key]);
    process.env[key] = value;
  }
  let loaded: ModerationHandlers | undefined;
  if (needsImport) {
    if (imported) {
      assertSameEnvironment(imported.env, env);
      loaded = imported.handlers;
    } else {
      loaded = await loadHandlers();
      imported = {
        env,
        handlers: loaded,
        ports: { s3: s3.port, sqs: sqs.port, dynamodb: dynamodb.port, stepfunctions: stepFunctions.port, rekognition: portOf(detector.endpoint), ssm: ssm.port },
      };
    }
  }
  const handlers = { ...loaded, ...options.functions } as ModerationHandlers;
  workflow = moderationWorkflow({
    handlers,
    contextualReview: Boolean(options.contextualReview),
    retryIntervalOverrides: options.retryIntervalOverrides,
    timeoutSeconds: options.executionTimeoutSeconds,
  });
  // The CDK stack's EventBridge rule: this state machine's executions that ended FAILED, TIMED_OUT or ABORTED.
  const settle = handlers.settle;
  settleEnded = settle
    ? async (event) => {
        const { source, detail } = event;
        if (source !== EXECUTION_STATUS_CHANGE.source || event['detail-type'] !== EXECUTION_STATUS_CHANGE.detailType) return;
        if (detail.stateMachineArn !== names.stateMachineArn || !(UNSETTLED_END_STATUSES as readonly string[]).includes(detail.status)) return;
        await settle(throughJson(event) as never, lambdaContext(FUNCTION_NAMES.settle, 60_000, region));
      }
    : undefined;

  // 3. Messages saved by the last graceful stop, then the event source mapping.
  const sqsDir = join(home, 'sqs');
  if (persistQueues) {
    const restored = await sqs.restoreMessages(sqsDir);
    if (restored.intake || restored.deadLetter) log.info('restored queued messages from the last run', restored);
  }
  const pollerClient = new SQSClient({ endpoint: sqs.endpoint, region, credentials: DUMMY_CREDENTIALS });
  cleanup.push(async () => pollerClient.destroy());
  const ingestTimeoutMs = 300_000;
  const poller = startPoller({
    sqs: pollerClient,
    queueUrl: sqs.intakeQueueUrl,
    queueArn: sqs.intakeQueueArn,
    region,
    batchSize: options.batchSize ?? 10,
    maxConcurrency: options.pollerConcurrency ?? 4,
    waitTimeSeconds: options.waitTimeSeconds ?? 1,
    deadLetter: { queueUrl: sqs.deadLetterQueueUrl, maxReceiveCount: MAX_RECEIVE_COUNT, visibilityTimeoutSeconds: visibilityTimeout },
    handler: async (event) => throughJson(await handlers.ingest(throughJson(event), lambdaContext(FUNCTION_NAMES.ingest, ingestTimeoutMs, region))),
    log,
  });
  cleanup.push(() => poller.stop());
  // The platform's appeals: the same handler as the construct's appeal intake, on the local appeal queue.
  const appeals = await startLocalAppeals(
    appealQueues,
    { sqs: pollerClient, region, persistDirectory: persistQueues ? sqsDir : undefined, waitTimeSeconds: options.waitTimeSeconds ?? 1, log },
  );
  cleanup.push(() => appeals.stop());

  // 4. After an unclean stop, what the lost queues held goes back on the intake queue (in the background).
  let recovered = !recovering;
  const recovery: Promise<RecoveryReport | undefined> = recovering
    ? recoverUndecided({ home, previous: uncleanStop!, region, endpoints, names, boundary, heldNotifications: s3.heldNotifications(), log }).then(
        (report) => {
          s3.discardHeldNotifications();
          recovered = true;
          return report;
        },
        (err: Error) => {
          log.error('recovery after the unclean stop failed: it runs again at the next start (or run `moderation reconcile --enqueue`)', { error: err.message });
          return undefined;
        },
      )
    : Promise.resolve(undefined);

  log.info('local stack running', { home, ...endpoints });

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const errors: unknown[] = [];
      const step = async (what: string, fn: () => Promise<unknown>) => {
        try {
          await fn();
        } catch (err) {
          errors.push(err);
          log.error(`stopping ${what} failed`, { error: (err as Error).message });
        }
      };
      // The recovery first (it enqueues: its messages are saved below), then consumers, while
      // everything they call is still up; then producers; then storage.
      await recovery;
      await step('poller', () => poller.stop());
      await step('appeal intake', () => appeals.stop());
      await step('step functions', () => stepFunctions.close());
      await step('s3', () => s3.close());
      if (persistQueues) {
        await step('saving queued messages', async () => {
          const saved = await sqs.saveMessages(sqsDir);
          if (saved.intake || saved.deadLetter) log.info('saved queued messages for the next run', saved);
        });
      }
      notifier.destroy();
      pollerClient.destroy();
      await step('detector', () => detector.close());
      await step('sqs', () => sqs.close());
      await step('ssm', () => ssm.close());
      await step('decision events', async () => {
        const drainMs = options.webhook?.drainOnStopMs ?? 5_000;
        if (!(await events.drain(drainMs))) {
          const pending = events.delivery?.outstanding ?? 0;
          const message = `${pending} webhook ${pending === 1 ? 'delivery' : 'deliveries'} still pending after ${drainMs} ms: they resume at the next start with a webhook, or send them with \`moderation events redeliver\``;
          if (log.notice) log.notice(message);
          else log.warn(message);
        }
        await events.stop();
      });
      await step('dynamodb', () => dynamodb.close());
      restoreEnvironment(restoreEnv);
      revokeOrigins();
      // A graceful stop: the next start has nothing to recover (unless this one could not finish).
      if (!errors.length && recovered) removeRunningMarker(home);
      active = false;
      if (errors.length) throw new AggregateError(errors, 'the local stack did not stop cleanly');
    })());

  return { region, home, endpoints, names, env, services: { s3, sqs, dynamodb, stepFunctions, poller, ssm }, recovery, events, stop };
}


interface EnvironmentInput {
  endpoints: Required<LocalEndpoints>;
  names: LocalNames;
  policy: string;
  workflowType: WorkflowType;
  uploadsPrefix: string;
  options: LocalStackOptions;
  log: LocalLogger;
}

function handlerEnvironment({ endpoints, names, policy, workflowType, uploadsPrefix, options, log }: EnvironmentInput): Record<string, string> {
  const env: Record<string, string> = {
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_SFN: endpoints.stepfunctions,
    AWS_ENDPOINT_URL_REKOGNITION: endpoints.rekognition,
    AWS_ENDPOINT_URL_SSM: endpoints.ssm,
    [ENV.policyParameter]: names.policyParameter,
    [ENV.policyCacheSeconds]: String(options.policyCacheSeconds ?? 1),
    [ENV.s3ForcePathStyle]: 'true',
    AWS_REGION: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? LOCAL_REGION,
    [ENV.decisionTable]: names.decisionTable,
    [ENV.uploadsBucket]: names.uploadsBucket,
    [ENV.uploadsPrefix]: uploadsPrefix,
    [ENV.uploaderPattern]: options.uploaderPattern ?? `${uploadsPrefix}{uploader}/`,
    [ENV.quarantineBucket]: names.quarantineBucket,
    [ENV.deadLetterQueueUrl]: names.deadLetterQueueUrl,
    [ENV.stateMachineArn]: names.stateMachineArn,
    [ENV.workflowType]: workflowType,
    [ENV.policy]: policy,
    [ENV.reviewModelId]: options.contextualReview?.modelId ?? process.env[ENV.reviewModelId] ?? DEFAULTS.reviewModelId,
    [ENV.statusShards]: String(names.statusShards),
    [ENV.qualitySampleRate]: String(options.qualitySampleRate ?? 0),
    [ENV.reuseDecisions]: (options.reuseDecisions ?? process.env[ENV.reuseDecisions]?.trim().toLowerCase() !== 'off') ? 'on' : 'off',
    // --analyze: run these on every image (validated: a bad list fails here, before anything runs).
    [ENV.analyze]: options.analyze ? formatAnalysisList(parseAnalysisList(options.analyze, 'analyze')) : '',
  };
  // Real credentials are kept for Bedrock when review is on; otherwise nothing here needs AWS, and
  // dummy credentials spare the SDK a credential lookup (an expired SSO session would break it).
  if (!hasConfiguredCredentials() || !options.contextualReview) {
    env.AWS_ACCESS_KEY_ID = DUMMY_CREDENTIALS.accessKeyId;
    env.AWS_SECRET_ACCESS_KEY = DUMMY_CREDENTIALS.secretAccessKey;
    if (process.env.AWS_SESSION_TOKEN !== undefined) env.AWS_SESSION_TOKEN = '';
    if (options.contextualReview) log.warn('contextual review is on but no AWS credentials are configured: Bedrock calls will fail and borderline images go to REVIEW');
  }
  // EMF metrics are CloudWatch's; locally they would only flood stdout.
  if (process.env.POWERTOOLS_METRICS_DISABLED === undefined) env.POWERTOOLS_METRICS_DISABLED = 'true';
  if (options.quiet && process.env.POWERTOOLS_LOG_LEVEL === undefined) env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  return env;
}

function hasConfiguredCredentials(): boolean {
  const e = process.env;
  if (e.AWS_ACCESS_KEY_ID || e.AWS_PROFILE || e.AWS_WEB_IDENTITY_TOKEN_FILE || e.AWS_CONTAINER_CREDENTIALS_FULL_URI || e.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) return true;
  const awsDir = join(process.env.HOME ?? '', '.aws');
  return existsSync(e.AWS_SHARED_CREDENTIALS_FILE ?? join(awsDir, 'credentials')) || existsSync(e.AWS_CONFIG_FILE ?? join(awsDir, 'config'));
}

/** Every analysis: the local Rekognition endpoint serves them all and nothing is granted locally. */
const LOCAL_ANALYSES = formatAnalysisList({ labels: true, faces: true, text: true });

/**
 * Publishes the policy asked for (a preset, a policy or policy set file, or the text) to the live-policy
 * parameter, unless it is already there; with none asked for, keeps what was pushed before (else
 * publishes the default preset). Validated now: a bad policy fails the start, not every job. Returns
 * MODERATION_POLICY for the handlers (only a fallback with the parameter): the default policy of what
 * was asked for, so the handlers' environment does not depend on what was pushed.
 */
function seedPolicyParameter(ssm: LocalSsm, requested: string | undefined): string {
  const set = resolvePolicySet(requested ?? DEFAULTS.policy); // throws PolicyError naming the field and value
  const stored = ssm.get(POLICY_PARAMETER_NAME)?.value;
  if (requested === undefined && stored !== undefined && isValidPolicySet(stored)) return defaultPolicySetting(set);
  const value = policySetParameterValue(set, 'standard');
  if (value !== stored) ssm.put(POLICY_PARAMETER_NAME, value, { description: 'The moderation policy set (moderation policy push)' });
  return defaultPolicySetting(set);
}

function isValidPolicySet(value: string): boolean {
  try {
    parsePolicySet(value);
    return true;
  } catch {
    return false;
  }
}

function assertSameEnvironment(previous: Record<string, string>, next: Record<string, string>): void {
  const keys = new Set([...Object.keys(previous), ...Object.keys(next)].filter((k) => !k.startsWith('POWERTOOLS_')));
  const differing = [...keys].filter((k) => previous[k] !== next[k]);
  if (differing.length) {
    throw new LocalStackConfigurationError(
      `the handlers were imported in this process with another configuration (${differing.join(', ')}); ` +
        'they read it once at import, like a Lambda container: start this stack in a new process',
    );
  }
}

function restoreEnvironment(saved: Map<string, string | undefined>): void {
  for (const [key, value] of saved) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  saved.clear();
}

function definedPorts(ports?: LocalPorts): LocalPorts {
  return Object.fromEntries(Object.entries(ports ?? {}).filter(([, v]) => v !== undefined && v !== 0)) as LocalPorts;
}

function portOf(endpoint: string): number {
  return Number(new URL(endpoint).port) || 0;
}

/** The nsfwjs detector, imported only when it is used (it loads TensorFlow). */
async function defaultDetectorFactory(): Promise<DetectorFactory> {
  const { startDetectorEndpoint } = await import('./detector/server.ts');
  return (options) => startDetectorEndpoint(options);
}

