/**
 * What a ModerationPipeline can be told (its props), what it does when it is not told (the
 * defaults, shared with the handlers' own where they overlap), and the checks that make a bad
 * setting fail `cdk synth` rather than the first upload.
 */
import { Duration } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { DEFAULTS, type WorkflowType } from '../functions/lib/config.ts';
import { PRESET_NAMES, resolvePolicy } from '../functions/lib/policy.ts';
import { DEFAULT_STATUS_SHARDS } from '../functions/store/table-schema.ts';
import { analysesNotEnabled, analysesUsed, ANALYSIS_NAMES, notEnabledMessage, type AnalysisSet } from '../functions/lib/analysis-policy.ts';
import type { DecisionEventsOptions } from './decision-events.ts';
import type { AppealIntakeOptions } from './appeal-intake.ts';

export type { WorkflowType } from '../functions/lib/config.ts';

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** What the state machine logs: Step Functions' log levels. */
export type WorkflowLogLevel = 'ALL' | 'ERROR' | 'FATAL' | 'OFF';

export interface ModerationPipelineProps {
  /**
   * The moderation policy: a preset name (`strict`, `standard`, `permissive`), a path to a YAML or
   * JSON policy file, or the policy document itself. Validated at synth (a bad policy fails `cdk synth`,
   * not the first upload); a document is passed to the functions as compact JSON, which must fit in
   * Lambda's 4 KB environment.
   *
   * @default 'standard'
   */
  readonly policy?: string;

  /**
   * Only objects under this key prefix are moderated (the S3 notification filter). `''` moderates the
   * whole bucket (safe: decisions are applied by tags and a separate quarantine bucket, never by writing
   * new objects into the uploads bucket).
   *
   * @default 'uploads/'
   */
  readonly uploadsPrefix?: string;

  /**
   * EXPRESS: the ingest function runs each job with StartSyncExecution and waits for it (at-least-once,
   * idempotent by job id). About 1/50 of Standard's cost per image for this short workflow (docs/deploying.md,
   * "Express or Standard"). STANDARD: StartExecution named by the job id (exactly-once start, 90-day
   * execution history in the console), at $0.025 per 1,000 state transitions.
   *
   * @default 'EXPRESS'
   */
  readonly workflowType?: WorkflowType;

  /**
   * Send borderline images to a multimodal LLM on Amazon Bedrock before they go to a human. Needs model
   * access for `reviewModelId` in the account and Region. When off, borderline images are held for
   * human review (status REVIEW) and the review function gets no Bedrock permission.
   *
   * @default false
   */
  readonly contextualReview?: boolean;

  /**
   * The Bedrock model for contextual review (Converse API with image input and tool use). A foundation
   * model id (`amazon.nova-lite-v1:0`, `anthropic.claude-3-haiku-20240307-v1:0`) or a cross-Region
   * inference profile id (`us.amazon.nova-lite-v1:0`); the review function may invoke only this model.
   *
   * @default - the handlers' default, DEFAULTS.reviewModelId in functions/lib/config.ts ('amazon.nova-lite-v1:0')
   */
  readonly reviewModelId?: string;

  /**
   * Where the uploader's id sits in the object key; recorded with each decision and indexed
   * (`byUploader`). Must contain `{uploader}`.
   *
   * @default 'uploads/{uploader}/'
   */
  readonly uploaderPattern?: string;

  /**
   * At most this many concurrent ingest invocations (the SQS event source's maximum concurrency, 2 to
   * 1,000): the throttle toward Rekognition's transactions-per-second quota. With EXPRESS, executions in
   * flight ≤ maxConcurrency × batchSize, and DetectModerationLabels calls per second ≈ that divided by
   * an execution's duration (about 1 to 3 s). Raise it with the account's Rekognition quota.
   *
   * @default 5
   */
  readonly maxConcurrency?: number;

  /**
   * Intake messages per ingest invocation.
   *
   * @default 10
   */
  readonly batchSize?: number;

  /**
   * How long the event source gathers a batch before invoking ingest (latency vs. fewer invocations).
   *
   * @default Duration.seconds(1)
   */
  readonly maxBatchingWindow?: Duration;

  /**
   * Alarms notify this topic (ALARM and OK). Without it the alarms still exist (console, dashboard)
   * but notify nobody.
   *
   * @default - no alarm actions
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * Moderate an existing bucket instead of creating one. The construct then only adds the event
   * notification (merged with the bucket's others) and the functions' permissions; the bucket's own
   * settings (public access block, TLS policy, encryption, versioning) stay its owner's. For an SSE-KMS
   * bucket import it with `Bucket.fromBucketAttributes({ encryptionKey })` so the functions get
   * kms:Decrypt.
   *
   * @default - a new bucket: versioned, encrypted, TLS only, no public access, access-logged
   */
  readonly uploadsBucket?: s3.IBucket;

  /**
   * Write shards of the status index (1 to 100). Readers (the CLI's audit) take the number from the
   * stack output StatusShards.
   *
   * @default 8
   */
  readonly statusShards?: number;

  /**
   * Retention of the functions' and the workflow's log groups.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * The log level of every function (POWERTOOLS_LOG_LEVEL and Lambda's application log level). `WARN`
   * logs what went wrong; each decision is in the decision history, its event and the metrics anyway.
   * `INFO` adds one line per step per image (about $0.9 per million images, docs/operating.md, "What it
   * costs"); `DEBUG` also keeps Lambda's START/END/REPORT lines (their Max Memory Used sizes a function).
   *
   * @default 'WARN'
   */
  readonly logLevel?: LogLevel;

  /**
   * What the state machine writes to its log group. `ERROR`: the failed states' events only, without
   * their input and output, which at a million images a month is a few cents instead of about $31
   * (docs/operating.md, "What it costs"); the decision record, the FAILED record and the dead-letter
   * message carry what an operator needs. `ALL`: every state's events, and for EXPRESS the execution
   * data too (Express keeps no execution history, so its log is then the only record of every state's
   * input and output). Lambda's own platform lines (START, END, REPORT) follow `logLevel`: kept for
   * `DEBUG`, left out otherwise.
   *
   * @default 'ERROR'
   */
  readonly workflowLogLevel?: WorkflowLogLevel;

  /**
   * Never pay twice for the same bytes (docs/architecture.md): an upload whose bytes were already
   * decided APPROVED, REJECTED or UNUSABLE under the same policy version repeats that decision, and a
   * near-duplicate of a REJECTED image is rejected, both without a Rekognition call. `false`: every
   * upload is sent to Rekognition.
   *
   * @default true
   */
  readonly reuseDecisions?: boolean;

  /**
   * Alarm when the oldest message in the intake queue is older than this (the pipeline is stuck or
   * throttled far below the upload rate).
   *
   * @default Duration.minutes(10)
   */
  readonly maxIntakeMessageAge?: Duration;

  /**
   * The serving gate (docs/architecture.md, invariant 7): a policy on the uploads bucket that denies
   * `s3:GetObject`/`s3:GetObjectVersion` under `uploadsPrefix` unless the object's
   * `moderation-status` tag is `APPROVED`, to every principal but the pipeline's own roles (detect,
   * review, apply), the `moderators`, and the roles given to `grantReview` and `grantOperate`; and
   * that denies writing any `moderation-*` tag anywhere in the bucket (PutObject with tags,
   * PutObjectTagging) to everyone but the apply step and the reviewers. Platforms serve approved
   * objects with presigned URLs from a reader role or through CloudFront with Origin Access Control
   * (docs/deploying.md, "Serving approved content").
   *
   * An adopted bucket (`uploadsBucket`) keeps its owner's policy: the statements are then not added
   * (a synth warning says so); add `servingGateStatements` to the bucket's own policy.
   *
   * `false`: no such statements; objects are readable by whoever the bucket's other policies and IAM allow, decided or not.
   *
   * @default true
   */
  readonly servingGate?: boolean;

  /**
   * Roles that may read objects under the prefix before they are approved (people who judge
   * content with their own tools, say). Nobody else can, whatever IAM allows them. `grantReview`
   * and `grantOperate` add their grantee by themselves. These roles may not write the pipeline's tags.
   *
   * @default - none
   */
  readonly moderators?: iam.IRole[];

  /**
   * Decision events (docs/events.md; docs/architecture.md, invariant 8): one `Moderation Decision`
   * event per record of the history on EventBridge (`bus`, `source`), optionally REJECTED and REVIEW
   * to an SNS topic (`flaggedTopic`) and every event to an HTTPS webhook (`webhookUrl`). Route them
   * with `pipeline.onDecision(...)`. `false`: no events, and no stream on the table.
   *
   * @default - events on the account's default bus, source 'upload-moderation'; no topic, no webhook
   */
  readonly events?: DecisionEventsOptions | false;

  /**
   * Accept the platform's appeals of rejections (docs/events.md, "Appeals from the platform"): an
   * SQS queue (`pipeline.appealQueue`) a platform sends `Moderation Appeal Request` messages to and,
   * with the decision events, the same requests as EventBridge events on their bus; one function
   * files each like `moderation appeal` does. `pipeline.grantAppeal(principal)` lets a platform send.
   *
   * @default - off: appeals are filed with `moderation appeal` and the console only
   */
  readonly appeals?: AppealIntakeOptions | boolean;

  /**
   * The share (0 to 1) of automated APPROVED and REJECTED decisions that also go to the review queue
   * for a blind quality check (the reviewer does not see the verdict; `moderation quality` reports
   * the agreement). Chosen by a hash of the job id, so a redelivery makes the same choice. 0: none.
   *
   * @default 0.01
   */
  readonly qualitySampleRate?: number;

  /**
   * The SSM tier of the live-policy parameter (docs/operating.md, "Live policy"): `standard` holds
   * 4 KB of policy set as compact JSON and is free; `advanced` holds 8 KB and is billed per parameter
   * and month. A push that does not fit is refused before anything is published. An advanced
   * parameter cannot go back to standard.
   *
   * @default 'standard'
   */
  readonly policyParameterTier?: 'standard' | 'advanced';

  /**
   * The analyses beside moderation the deployment enables (docs/architecture.md, "Labels, text and
   * faces"): DetectLabels (`labels`), DetectFaces (`faces`), DetectText (`text`). Each enabled API is
   * granted to the detect function only; nothing is granted for a disabled one, and the detect step
   * refuses (AnalysisNotEnabled: the job fails and is dead-lettered) a policy that needs one this
   * deployment does not enable, as do `moderation policy validate --stack` and a policy push.
   * Enabling one runs nothing by itself: the policy in force decides what runs (its rules, or its
   * `analysis` section).
   *
   * Each one unset: enabled when the `policy` prop needs it. Faces are therefore off unless the policy
   * needs them; the presets' child-safety rule does, for images with nudity or swimwear only.
   * Set one to `false` to refuse it (then `policy` must not need it: synth fails otherwise).
   *
   * @default - what the `policy` prop needs
   */
  readonly analysis?: AnalysisProps;
}

/** Which analyses a deployment enables (ModerationPipelineProps.analysis). */
export interface AnalysisProps {
  readonly labels?: boolean;
  readonly faces?: boolean;
  readonly text?: boolean;
}

/**
 * The analyses a deployment enables: the prop where set, else what the policy needs. Throws when the
 * policy needs one the prop turns off.
 */
export function enabledAnalyses(policySpec: string, props: AnalysisProps | undefined): AnalysisSet {
  const policy = resolvePolicy(policySpec);
  const used = analysesUsed(policy.analysis.needs);
  const enabled = Object.fromEntries(ANALYSIS_NAMES.map((name) => [name, props?.[name] ?? used[name]])) as Record<keyof AnalysisSet, boolean>;
  const missing = analysesNotEnabled(policy, enabled);
  if (missing.length) throw new Error(`analysis: ${notEnabledMessage(policy.name, missing, 'the analysis prop')}`);
  return enabled;
}

/** The props with every default filled in (the constructs to adopt stay optional: they have no default). */
export type ResolvedPipelineProps = Required<Omit<ModerationPipelineProps, ConstructProps>> & Pick<ModerationPipelineProps, ConstructProps>;

/** Props that hold constructs of the user's app: no default. */
type ConstructProps = 'alarmTopic' | 'uploadsBucket' | 'moderators' | 'events' | 'analysis' | 'appeals';

/** The defaults of ModerationPipelineProps (shared with the handlers' own defaults where they overlap). */
export const PIPELINE_DEFAULTS: Readonly<Required<Omit<ModerationPipelineProps, ConstructProps>>> = {
  policy: DEFAULTS.policy,
  uploadsPrefix: DEFAULTS.uploadsPrefix,
  workflowType: DEFAULTS.workflowType,
  contextualReview: false,
  reviewModelId: DEFAULTS.reviewModelId,
  uploaderPattern: DEFAULTS.uploaderPattern,
  maxConcurrency: 5,
  batchSize: 10,
  maxBatchingWindow: Duration.seconds(1),
  statusShards: DEFAULT_STATUS_SHARDS,
  logRetention: logs.RetentionDays.ONE_MONTH,
  logLevel: 'WARN',
  workflowLogLevel: 'ERROR',
  reuseDecisions: true,
  maxIntakeMessageAge: Duration.minutes(10),
  servingGate: true,
  qualitySampleRate: DEFAULTS.qualitySampleRate,
  policyParameterTier: 'standard',
};

/** Lambda's environment (all variables together) is limited to 4 KB; leave room for the others. */
export const MAX_POLICY_ENV_CHARS = 3000;

/** The props with the defaults filled in, checked; throws one error naming every bad setting. */
export function resolvePipelineProps(scope: Construct, props: ModerationPipelineProps): ResolvedPipelineProps {
  const resolved: ResolvedPipelineProps = { ...PIPELINE_DEFAULTS, ...definedOnly(props) };
  validate(scope, resolved);
  return resolved;
}

/** What MODERATION_POLICY gets: a preset by name, anything else validated and passed as compact JSON. */
export function policySetting(spec: string): string {
  const trimmed = spec.trim();
  if ((PRESET_NAMES as readonly string[]).includes(trimmed.toLowerCase())) return trimmed.toLowerCase();
  const policy = resolvePolicy(trimmed); // throws PolicyError listing every problem
  const json = JSON.stringify(policy.document);
  if (json.length > MAX_POLICY_ENV_CHARS) {
    throw new Error(
      `the moderation policy is ${json.length} characters as JSON; at most ${MAX_POLICY_ENV_CHARS} fit in the functions' environment (Lambda allows 4 KB in all). Merge rules (a parent category covers its children) or use a preset.`,
    );
  }
  return json;
}

function validate(scope: Construct, settings: ResolvedPipelineProps): void {
  const problems: string[] = [];
  if (settings.workflowType !== 'EXPRESS' && settings.workflowType !== 'STANDARD') {
    problems.push(`workflowType must be EXPRESS or STANDARD, got "${settings.workflowType}"`);
  }
  if (settings.uploadsPrefix.startsWith('/')) problems.push(`uploadsPrefix must not start with "/" (S3 keys do not), got "${settings.uploadsPrefix}"`);
  if (!settings.uploaderPattern.includes('{uploader}')) problems.push(`uploaderPattern must contain {uploader}, got "${settings.uploaderPattern}"`);
  if (!Number.isInteger(settings.maxConcurrency) || settings.maxConcurrency < 2 || settings.maxConcurrency > 1000) {
    problems.push(`maxConcurrency must be an integer from 2 to 1000 (SQS event source limits), got ${settings.maxConcurrency}`);
  }
  if (!Number.isInteger(settings.batchSize) || settings.batchSize < 1 || settings.batchSize > 100) {
    problems.push(`batchSize must be an integer from 1 to 100, got ${settings.batchSize}`);
  }
  if (!Number.isInteger(settings.statusShards) || settings.statusShards < 1 || settings.statusShards > 100) {
    problems.push(`statusShards must be an integer from 1 to 100, got ${settings.statusShards}`);
  }
  if (!settings.reviewModelId.trim()) problems.push('reviewModelId must not be empty');
  if (!['ALL', 'ERROR', 'FATAL', 'OFF'].includes(settings.workflowLogLevel)) problems.push(`workflowLogLevel must be ALL, ERROR, FATAL or OFF, got "${settings.workflowLogLevel}"`);
  if (!(Number.isFinite(settings.qualitySampleRate) && settings.qualitySampleRate >= 0 && settings.qualitySampleRate <= 1)) {
    problems.push(`qualitySampleRate must be a number from 0 to 1, got ${settings.qualitySampleRate}`);
  }
  if (settings.policyParameterTier !== 'standard' && settings.policyParameterTier !== 'advanced') {
    problems.push(`policyParameterTier must be standard or advanced, got "${settings.policyParameterTier}"`);
  }
  if (problems.length) throw new Error(`ModerationPipeline ${scope.node.path}: ${problems.join('; ')}`);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
