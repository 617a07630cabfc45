/**
 * ModerationPipeline: the whole moderation flow on AWS as one reusable construct.
 *
 *   S3 uploads bucket ─(ObjectCreated Put/Post/CompleteMultipartUpload, prefix; never Copy)─▶ SQS intake
 *   queue (redrive to the DLQ) ─▶ ingest Lambda (batches, partial failures, maximum concurrency) ─▶
 *   Step Functions (statemachine/moderation.asl.json: detect → review → record → apply, fail path to
 *   the same DLQ) ─▶ DynamoDB decision history; quarantine bucket; alarms and a dashboard.
 *
 * The state machine is the one ASL file the local runtime also executes, loaded with
 * DefinitionBody.fromString + definitionSubstitutions so the template holds the definition. The
 * handlers' environment variable names come from functions/lib/config.ts and the table's keys from
 * functions/lib/table-schema.ts, so the construct and the code that reads them cannot drift apart.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as bedrock from 'aws-cdk-lib/aws-bedrock';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { DEFAULTS, ENV, type WorkflowType } from '../functions/lib/config.ts';
import { PRESET_NAMES, resolvePolicy } from '../functions/lib/policy.ts';
import { DECISION_INDEXES, DEFAULT_STATUS_SHARDS, SORT_BY_TIME, TABLE_KEYS } from '../functions/lib/table-schema.ts';
import { acknowledge, acknowledgeWildcardResource } from './nag.ts';

export type { WorkflowType } from '../functions/lib/config.ts';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The only state machine definition (invariant 5). */
export const DEFINITION_FILE = path.join(PROJECT_ROOT, 'statemachine', 'moderation.asl.json');

/** The S3 events that start moderation. Never `s3:ObjectCreated:Copy`: the apply step copies (quarantine), and must not re-trigger. */
export const INTAKE_EVENTS: readonly s3.EventType[] = [
  s3.EventType.OBJECT_CREATED_PUT,
  s3.EventType.OBJECT_CREATED_POST,
  s3.EventType.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD,
];

/** Every bucket the construct creates: private, encrypted at rest, TLS only, no ACLs. */
const PRIVATE_ENCRYPTED_BUCKET = {
  blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
  encryption: s3.BucketEncryption.S3_MANAGED,
  enforceSSL: true,
  objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
} satisfies s3.BucketProps;

/** One Lambda function per step. */
export const STEPS = ['ingest', 'detect', 'review', 'record', 'apply', 'fail'] as const;
export type Step = (typeof STEPS)[number];
export type WorkflowStep = Exclude<Step, 'ingest'>;

/** The definition's `${...}` placeholder for each workflow step's function ARN. */
export const FUNCTION_PLACEHOLDERS: Readonly<Record<WorkflowStep, string>> = {
  detect: 'DetectFunctionArn',
  review: 'ReviewFunctionArn',
  record: 'RecordFunctionArn',
  apply: 'ApplyFunctionArn',
  fail: 'FailFunctionArn',
};

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

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
   * idempotent by job id). About 1/50 of Standard's cost per image for this short workflow (README:
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
   * POWERTOOLS_LOG_LEVEL of every function.
   *
   * @default 'INFO'
   */
  readonly logLevel?: LogLevel;

  /**
   * Alarm when the oldest message in the intake queue is older than this (the pipeline is stuck or
   * throttled far below the upload rate).
   *
   * @default Duration.minutes(10)
   */
  readonly maxIntakeMessageAge?: Duration;
}

type PipelineSettings = Required<Omit<ModerationPipelineProps, 'alarmTopic' | 'uploadsBucket'>>;

/** The defaults of ModerationPipelineProps (shared with the handlers' own defaults where they overlap). */
export const PIPELINE_DEFAULTS: Readonly<PipelineSettings> = {
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
  logLevel: 'INFO',
  maxIntakeMessageAge: Duration.minutes(10),
};

/** Receives before a message goes to the dead-letter queue. */
export const MAX_RECEIVE_COUNT = 5;
/** Visibility timeout = this × the ingest timeout (+ the batching window), as AWS advises for SQS event sources. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/** Lambda's environment (all variables together) is limited to 4 KB; leave room for the others. */
const MAX_POLICY_ENV_CHARS = 3000;
/** Cross-Region inference profile ids carry a geography prefix. */
const INFERENCE_PROFILE_PREFIX = /^(us|us-gov|eu|apac|jp|au|ca|global)\./;
const NPM_FOR_LAMBDA_ARM64 = {
  // The bundling's `npm ci` installs sharp's linux-arm64 build (pinned and integrity-checked by
  // package-lock.json), whatever machine synthesizes; from npm's cache when it is there.
  npm_config_os: 'linux',
  npm_config_cpu: 'arm64',
  npm_config_libc: 'glibc',
  npm_config_prefer_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};

export interface PipelineFunctions {
  readonly ingest: NodejsFunction;
  readonly detect: NodejsFunction;
  readonly review: NodejsFunction;
  readonly record: NodejsFunction;
  readonly apply: NodejsFunction;
  readonly fail: NodejsFunction;
}

export interface PipelineAlarms {
  readonly deadLetterQueueNotEmpty: cloudwatch.Alarm;
  readonly intakeMessageAge: cloudwatch.Alarm;
  readonly executionsFailed: cloudwatch.Alarm;
  readonly executionsTimedOut: cloudwatch.Alarm;
  readonly throttles: cloudwatch.Alarm;
  readonly rekognitionThrottles: cloudwatch.Alarm;
}

export class ModerationPipeline extends Construct {
  readonly uploadsBucket: s3.IBucket;
  readonly quarantineBucket: s3.Bucket;
  /** Server access logs of the buckets this construct creates. */
  readonly accessLogsBucket: s3.Bucket;
  readonly intakeQueue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  /** The decision history (DynamoDB). */
  readonly decisionHistory: dynamodb.Table;
  /** The moderation state machine. */
  readonly workflow: sfn.StateMachine;
  readonly functions: PipelineFunctions;
  readonly alarms: PipelineAlarms;
  readonly dashboard: cloudwatch.Dashboard;

  readonly uploadsPrefix: string;
  readonly workflowType: WorkflowType;
  readonly statusShards: number;
  readonly contextualReview: boolean;
  readonly reviewModelId: string;
  /** What MODERATION_POLICY holds: a preset name or the policy document as compact JSON. */
  readonly policySetting: string;

  private readonly logRetention: logs.RetentionDays;
  private readonly logLevel: LogLevel;

  constructor(scope: Construct, id: string, props: ModerationPipelineProps = {}) {
    super(scope, id);
    const settings: PipelineSettings = { ...PIPELINE_DEFAULTS, ...definedOnly(props) };
    validate(this, settings);
    this.uploadsPrefix = settings.uploadsPrefix;
    this.workflowType = settings.workflowType;
    this.statusShards = settings.statusShards;
    this.contextualReview = settings.contextualReview;
    this.reviewModelId = settings.reviewModelId;
    this.policySetting = policySetting(settings.policy);
    this.logRetention = settings.logRetention;
    this.logLevel = settings.logLevel;
    const express = this.workflowType === 'EXPRESS';
    const uploadObjects = `${this.uploadsPrefix}*`;

    const definitionText = readFileSync(DEFINITION_FILE, 'utf8');
    const taskTimeouts = taskTimeoutsByPlaceholder(definitionText);
    const executionTimeout = Number(JSON.parse(definitionText).TimeoutSeconds);
    if (!Number.isInteger(executionTimeout) || executionTimeout > 300) {
      throw new Error(`${DEFINITION_FILE}: TimeoutSeconds must be set and at most 300 (an Express execution's limit), got ${executionTimeout}`);
    }

    // ---- Storage -------------------------------------------------------------------------------
    // Server access log delivery supports SSE-S3 only (which all three buckets use).
    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogsBucket', {
      ...PRIVATE_ENCRYPTED_BUCKET,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.uploadsBucket =
      props.uploadsBucket ??
      new s3.Bucket(this, 'UploadsBucket', {
        ...PRIVATE_ENCRYPTED_BUCKET,
        // Versioned: the job id is the exact version judged, and an overwrite is a new version with its own job.
        versioned: true,
        serverAccessLogsBucket: this.accessLogsBucket,
        serverAccessLogsPrefix: 'uploads-bucket/',
        lifecycleRules: [
          { id: 'noncurrent-versions', noncurrentVersionExpiration: Duration.days(30), abortIncompleteMultipartUploadAfter: Duration.days(7) },
        ],
        removalPolicy: RemovalPolicy.RETAIN,
      });

    this.quarantineBucket = new s3.Bucket(this, 'QuarantineBucket', {
      ...PRIVATE_ENCRYPTED_BUCKET,
      versioned: true,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'quarantine-bucket/',
      lifecycleRules: [
        { id: 'noncurrent-versions', noncurrentVersionExpiration: Duration.days(90), abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
      // Rejected content is evidence: it outlives the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.decisionHistory = new dynamodb.Table(this, 'DecisionTable', {
      partitionKey: { name: TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of Object.values(DECISION_INDEXES)) {
      this.decisionHistory.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: SORT_BY_TIME, type: dynamodb.AttributeType.STRING },
        // Audits read whole records (labels, rule, reason) and export them.
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    // Grants on the base table only: the functions never query an index (auditors do, with their own credentials).
    const tableGrants = dynamodb.TableGrants.fromTable(this.decisionHistory, [], false);

    // ---- Queues --------------------------------------------------------------------------------
    // With EXPRESS, ingest waits for each execution (at most the definition's TimeoutSeconds).
    const ingestTimeout = express ? Duration.seconds(executionTimeout + 30) : Duration.seconds(60);
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.intakeQueue = new sqs.Queue(this, 'IntakeQueue', {
      // SSE-SQS: S3 event notifications cannot publish to a queue encrypted with the AWS managed KMS key.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * ingestTimeout.toSeconds() + settings.maxBatchingWindow.toSeconds()),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });

    // ---- Functions -----------------------------------------------------------------------------
    const detect = this.stepFunction('detect', {
      description: 'Detect step: Rekognition DetectModerationLabels and the policy verdict',
      timeout: taskTimeouts.detect,
      memorySize: 1024,
      nativeSharp: true,
      environment: { [ENV.policy]: this.policySetting, [ENV.decisionTable]: this.decisionHistory.tableName },
    });
    const review = this.stepFunction('review', {
      description: 'Review step: contextual review of a borderline image on Amazon Bedrock',
      timeout: taskTimeouts.review,
      memorySize: 1024,
      nativeSharp: true,
      environment: { [ENV.reviewModelId]: this.reviewModelId, [ENV.policy]: this.policySetting },
    });
    const record = this.stepFunction('record', {
      description: 'Record step: one conditional write of the decision per job',
      timeout: taskTimeouts.record,
      memorySize: 256,
      environment: {
        [ENV.decisionTable]: this.decisionHistory.tableName,
        [ENV.statusShards]: String(this.statusShards),
        [ENV.policy]: this.policySetting,
      },
    });
    const apply = this.stepFunction('apply', {
      description: 'Apply step: tag the object or move it to the quarantine bucket',
      timeout: taskTimeouts.apply,
      memorySize: 256,
      environment: { [ENV.quarantineBucket]: this.quarantineBucket.bucketName },
    });
    const fail = this.stepFunction('fail', {
      description: 'Fail path: record FAILED and send the job to the dead-letter queue',
      timeout: taskTimeouts.fail,
      memorySize: 256,
      environment: {
        [ENV.decisionTable]: this.decisionHistory.tableName,
        [ENV.deadLetterQueueUrl]: this.deadLetterQueue.queueUrl,
        [ENV.statusShards]: String(this.statusShards),
      },
    });

    // Detect: HeadObject/GetObject of the exact version (and Rekognition reads it with these
    // credentials); ListBucket so a deleted object is a 404 (UNUSABLE), not a 403 (FAILED).
    s3.BucketGrants.fromBucket(this.uploadsBucket).actionsOnObjectKeys(detect, uploadObjects, 's3:GetObject', 's3:GetObjectVersion', 'kms:Decrypt');
    this.grantListBucket(detect, this.uploadsBucket);
    iam.Grant.addToPrincipal({ grantee: detect, actions: ['rekognition:DetectModerationLabels'], resourceArns: ['*'] });
    tableGrants.actions(detect, 'dynamodb:GetItem');
    acknowledgeWildcardResource(
      roleOf(detect),
      '*',
      'Two statements: rekognition:DetectModerationLabels supports no resource-level permissions (AWS service authorization reference), and X-Ray PutTraceSegments/PutTelemetryRecords (added by active tracing) require Resource "*". Neither grants data access.',
    );
    acknowledgeObjectKeys(detect, this.uploadsBucket, uploadObjects, 'reads the uploaded object version under review');

    s3.BucketGrants.fromBucket(this.uploadsBucket).actionsOnObjectKeys(review, uploadObjects, 's3:GetObject', 's3:GetObjectVersion', 'kms:Decrypt');
    if (this.contextualReview) this.grantReviewModel(review);
    acknowledgeXray(review);
    acknowledgeObjectKeys(review, this.uploadsBucket, uploadObjects, 'reads the borderline image to send it to the model');

    tableGrants.actions(record, 'dynamodb:PutItem', 'dynamodb:GetItem');
    acknowledgeXray(record);

    s3.BucketGrants.fromBucket(this.uploadsBucket).actionsOnObjectKeys(
      apply,
      uploadObjects,
      's3:GetObject',
      's3:GetObjectVersion',
      's3:GetObjectTagging',
      's3:GetObjectVersionTagging',
      's3:PutObjectTagging',
      's3:PutObjectVersionTagging',
      's3:DeleteObject',
      's3:DeleteObjectVersion',
      'kms:Decrypt',
    );
    this.grantListBucket(apply, this.uploadsBucket);
    // Quarantine keys are `<uploads bucket>/<key>`; HeadObject there needs GetObject (+ ListBucket for a 404).
    const quarantineObjects = `${this.uploadsBucket.bucketName}/${uploadObjects}`;
    this.quarantineBucket.grants.actionsOnObjectKeys(apply, quarantineObjects, 's3:PutObject', 's3:PutObjectTagging', 's3:GetObject');
    this.grantListBucket(apply, this.quarantineBucket);
    acknowledgeXray(apply);
    acknowledgeObjectKeys(apply, this.uploadsBucket, uploadObjects, 'tags the decided object version, or deletes it once it is copied to quarantine');
    acknowledgeObjectKeys(apply, this.quarantineBucket, quarantineObjects, 'writes the rejected object under <uploads bucket>/<its key>');

    tableGrants.actions(fail, 'dynamodb:PutItem');
    this.deadLetterQueue.grantSendMessages(fail);
    acknowledgeXray(fail);

    // ---- Workflow ------------------------------------------------------------------------------
    const workflowLogs = new logs.LogGroup(this, 'WorkflowLogs', {
      // The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy from growing per state machine.
      logGroupName: `/aws/vendedlogs/states/${Names.uniqueResourceName(this, { maxLength: 200 })}-workflow`,
      retention: this.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const stepFunctions: Record<WorkflowStep, NodejsFunction> = { detect, review, record, apply, fail };
    const substitutions: Record<string, string> = { ContextualReview: this.contextualReview ? 'enabled' : 'disabled' };
    for (const [step, placeholder] of Object.entries(FUNCTION_PLACEHOLDERS) as [WorkflowStep, string][]) {
      substitutions[placeholder] = stepFunctions[step].functionArn;
    }
    this.workflow = new sfn.StateMachine(this, 'Workflow', {
      definitionBody: sfn.DefinitionBody.fromString(definitionText),
      definitionSubstitutions: substitutions,
      stateMachineType: express ? sfn.StateMachineType.EXPRESS : sfn.StateMachineType.STANDARD,
      logs: {
        destination: workflowLogs,
        level: sfn.LogLevel.ALL,
        // Express keeps no execution history: its log is the only record of inputs and outputs.
        includeExecutionData: express,
      },
      tracingEnabled: true,
    });
    // The definition invokes the unqualified function ARNs only.
    for (const fn of Object.values(stepFunctions)) fn.grantInvokeLatestVersion(this.workflow);
    acknowledgeWildcardResource(
      this.workflow,
      '*',
      'Added by CDK for the logging and tracing configuration: CloudWatch Logs log delivery (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) and X-Ray (PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) support no resource-level permissions; AWS documents Resource "*" for both.',
    );

    // ---- Ingest --------------------------------------------------------------------------------
    const ingest = this.stepFunction('ingest', {
      description: 'Ingest: S3 notifications from the intake queue to one workflow execution per job',
      timeout: ingestTimeout,
      memorySize: 256,
      environment: {
        [ENV.stateMachineArn]: this.workflow.stateMachineArn,
        [ENV.workflowType]: this.workflowType,
        [ENV.uploadsBucket]: this.uploadsBucket.bucketName,
        [ENV.uploadsPrefix]: this.uploadsPrefix,
        [ENV.uploaderPattern]: settings.uploaderPattern,
        // A malformed message cannot succeed on retry: ingest parks it in the DLQ with the reason at once.
        [ENV.deadLetterQueueUrl]: this.deadLetterQueue.queueUrl,
      },
    });
    if (express) this.workflow.grantStartSyncExecution(ingest);
    else this.workflow.grantStartExecution(ingest);
    this.deadLetterQueue.grantSendMessages(ingest);
    ingest.addEventSource(
      new SqsEventSource(this.intakeQueue, {
        batchSize: settings.batchSize,
        maxBatchingWindow: settings.maxBatchingWindow,
        reportBatchItemFailures: true,
        maxConcurrency: settings.maxConcurrency,
      }),
    );
    acknowledgeXray(ingest);
    this.functions = { ingest, detect, review, record, apply, fail };

    // ---- S3 → SQS ------------------------------------------------------------------------------
    const destination = new s3n.SqsDestination(this.intakeQueue);
    const filters = this.uploadsPrefix ? [{ prefix: this.uploadsPrefix }] : [];
    for (const event of INTAKE_EVENTS) this.uploadsBucket.addEventNotification(event, destination, ...filters);
    this.acknowledgeNotificationHandler();

    // ---- Monitoring ----------------------------------------------------------------------------
    this.alarms = this.createAlarms(settings.maxIntakeMessageAge, props.alarmTopic);
    this.dashboard = this.createDashboard();
  }

  private stepFunction(
    step: Step,
    options: { description: string; timeout: Duration; memorySize: number; environment: Record<string, string>; nativeSharp?: boolean },
  ): NodejsFunction {
    const id = step.charAt(0).toUpperCase() + step.slice(1);
    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention: this.logRetention, removalPolicy: RemovalPolicy.RETAIN });
    // An own role instead of AWSLambdaBasicExecutionRole: it may write to its own log group only.
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: options.description,
    });
    logGroup.grantWrite(role);
    const fn = new NodejsFunction(this, `${id}Function`, {
      description: options.description,
      entry: path.join(PROJECT_ROOT, 'functions', `${step}.ts`),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: options.memorySize,
      timeout: options.timeout,
      role,
      logGroup,
      tracing: lambda.Tracing.ACTIVE,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'moderation',
        POWERTOOLS_METRICS_NAMESPACE: 'UploadModeration',
        POWERTOOLS_LOG_LEVEL: this.logLevel,
        NODE_OPTIONS: '--enable-source-maps',
        ...options.environment,
      },
      bundling: bundlingOptions(options.nativeSharp ?? false),
    });
    acknowledge(
      fn,
      'AwsSolutions-L1',
      'Node.js 22 is an LTS runtime that AWS supports; it is pinned on purpose (the esbuild target node22 and the shipped sharp build follow it), and this rule flags anything but the newest runtime CDK knows. Moving to Node.js 24 is a deliberate, tested upgrade, not a side effect of a CDK release.',
    );
    return fn;
  }

  /** s3:ListBucket on the bucket itself: HeadObject on a missing key then answers 404 instead of 403. */
  private grantListBucket(grantee: iam.IGrantable, bucket: s3.IBucket): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket'], resourceArns: [bucket.bucketArn] });
  }

  private grantReviewModel(review: NodejsFunction): void {
    const modelId = this.reviewModelId;
    const profile = INFERENCE_PROFILE_PREFIX.exec(modelId);
    if (!profile) {
      // Converse needs bedrock:InvokeModel, on this foundation model only.
      const model = bedrock.FoundationModel.fromFoundationModelId(this, 'ReviewModel', new bedrock.FoundationModelIdentifier(modelId));
      iam.Grant.addToPrincipal({ grantee: review, actions: ['bedrock:InvokeModel'], resourceArns: [model.modelArn] });
      return;
    }
    // A cross-Region inference profile: the profile here, and the model in whichever Region it routes to,
    // only when reached through this profile.
    const stack = Stack.of(this);
    const profileArn = stack.formatArn({ service: 'bedrock', resource: 'inference-profile', resourceName: modelId });
    const routedModelArn = stack.formatArn({
      service: 'bedrock',
      region: '*',
      account: '',
      resource: 'foundation-model',
      resourceName: modelId.slice(profile[0].length),
    });
    iam.Grant.addToPrincipal({ grantee: review, actions: ['bedrock:InvokeModel'], resourceArns: [profileArn] });
    iam.Grant.addToPrincipal({
      grantee: review,
      actions: ['bedrock:InvokeModel'],
      resourceArns: [routedModelArn],
      conditions: { StringEquals: { 'bedrock:InferenceProfileArn': profileArn } },
    });
    acknowledgeWildcardResource(
      roleOf(review),
      routedModelArn,
      'A cross-Region inference profile routes each request to the model in one of its Regions, chosen by Bedrock; AWS requires bedrock:InvokeModel on the foundation model in every such Region. The statement names one model and only applies through this inference profile (bedrock:InferenceProfileArn condition).',
    );
  }

  /** CDK's singleton handler behind S3 bucket notifications (it also adopts existing buckets). */
  private acknowledgeNotificationHandler(): void {
    const stack = Stack.of(this);
    const handler = stack.node.tryFindChild('BucketNotificationsHandler050a0587b7544547bf325f094a3db834');
    if (!handler) return;
    acknowledge(
      handler,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      "CDK's own custom resource that writes the bucket's notification configuration (CloudFormation cannot add one to an adopted bucket, nor to an owned one without a circular dependency on the queue policy). The managed policy only allows writing its own CloudWatch logs; its s3:PutBucketNotification is scoped to the uploads bucket.",
    );
  }

  private createAlarms(maxAge: Duration, topic?: sns.ITopic): PipelineAlarms {
    const fiveMinutes = Duration.minutes(5);
    const alarm = (id: string, props: cloudwatch.AlarmProps): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, id, { treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING, ...props });
      if (topic) {
        created.addAlarmAction(new cloudwatchActions.SnsAction(topic));
        created.addOkAction(new cloudwatchActions.SnsAction(topic));
      }
      return created;
    };
    const throttleMetrics: Record<string, cloudwatch.IMetric> = { workflow: this.workflow.metricThrottled({ period: fiveMinutes, statistic: 'Sum' }) };
    for (const [step, fn] of Object.entries(this.functions)) throttleMetrics[step] = fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum' });

    return {
      deadLetterQueueNotEmpty: alarm('DeadLetterQueueNotEmptyAlarm', {
        alarmDescription:
          'Jobs are in the dead-letter queue: FAILED decisions or messages that could not be ingested. Inspect with `moderation dlq list`, fix the cause, then `moderation dlq replay`.',
        metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      intakeMessageAge: alarm('IntakeMessageAgeAlarm', {
        alarmDescription: `The oldest upload waiting in the intake queue is older than ${maxAge.toHumanString()}: ingest is failing, throttled, or too slow for the upload rate.`,
        metric: this.intakeQueue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
        threshold: maxAge.toSeconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
      }),
      executionsFailed: alarm('ExecutionsFailedAlarm', {
        alarmDescription: 'Moderation executions failed: each one recorded FAILED and sent its job to the dead-letter queue.',
        metric: this.workflow.metricFailed({ period: fiveMinutes, statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      executionsTimedOut: alarm('ExecutionsTimedOutAlarm', {
        alarmDescription: 'Moderation executions timed out (the definition TimeoutSeconds): the jobs return to the intake queue and are retried.',
        metric: this.workflow.metricTimedOut({ period: fiveMinutes, statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      throttles: alarm('ThrottlesAlarm', {
        alarmDescription: 'Lambda invocations or workflow executions of the pipeline were throttled (account concurrency or Step Functions quotas).',
        metric: new cloudwatch.MathExpression({
          expression: `${Object.keys(throttleMetrics).map((id) => `FILL(${id}, 0)`).join(' + ')}`,
          usingMetrics: throttleMetrics,
          label: 'Throttles',
          period: fiveMinutes,
        }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      rekognitionThrottles: alarm('RekognitionThrottlesAlarm', {
        alarmDescription:
          'DetectModerationLabels has been throttled for 15 minutes (account-wide metric). Retries absorb bursts; sustained throttling means maxConcurrency is above the Rekognition TPS quota: lower it or request a quota increase.',
        metric: rekognitionMetric('ThrottledCount', fiveMinutes),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
      }),
    };
  }

  private createDashboard(): cloudwatch.Dashboard {
    const period = Duration.minutes(1);
    const sum = { period, statistic: 'Sum' };
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    const fns = Object.entries(this.functions);
    const perFunction = (metric: (fn: lambda.IFunction) => cloudwatch.Metric) => fns.map(([step, fn]) => metric(fn).with({ label: step }));
    const verdict = (name: string) =>
      new cloudwatch.Metric({ namespace: 'UploadModeration', metricName: `Verdict${name}`, dimensionsMap: { service: 'moderation' }, label: name, ...sum });

    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(this.alarms), width: 24, height: 3 }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Intake queue',
        left: [
          this.intakeQueue.metricApproximateNumberOfMessagesVisible({ period, label: 'waiting' }),
          this.intakeQueue.metricApproximateNumberOfMessagesNotVisible({ period, label: 'in flight' }),
        ],
        right: [this.intakeQueue.metricApproximateAgeOfOldestMessage({ period, label: 'oldest (s)' })],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queue',
        left: [this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, label: 'messages' })],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Verdicts (detect step)',
        left: ['APPROVE', 'REJECT', 'BORDERLINE', 'UNUSABLE'].map(verdict),
        stacked: true,
        width: 8,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: `Executions (${this.workflowType})`,
        left: [
          this.workflow.metricStarted({ ...sum, label: 'started' }),
          this.workflow.metricSucceeded({ ...sum, label: 'succeeded' }),
          this.workflow.metricFailed({ ...sum, label: 'failed' }),
          this.workflow.metricTimedOut({ ...sum, label: 'timed out' }),
          this.workflow.metricThrottled({ ...sum, label: 'throttled' }),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Execution time',
        left: [
          this.workflow.metricTime({ period, statistic: 'p50', label: 'p50' }),
          this.workflow.metricTime({ period, statistic: 'p99', label: 'p99' }),
        ],
        width: 12,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Lambda errors', left: perFunction((fn) => fn.metricErrors(sum)), width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Lambda throttles', left: perFunction((fn) => fn.metricThrottles(sum)), width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Lambda duration p99', left: perFunction((fn) => fn.metricDuration({ period, statistic: 'p99' })), width: 8 }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Rekognition DetectModerationLabels (account)',
        left: [rekognitionMetric('SuccessfulRequestCount', period).with({ label: 'successful' }), rekognitionMetric('ThrottledCount', period).with({ label: 'throttled' })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Decision table',
        left: [
          this.decisionHistory.metricConsumedWriteCapacityUnits({ ...sum, label: 'write units' }),
          this.decisionHistory.metricConsumedReadCapacityUnits({ ...sum, label: 'read units' }),
        ],
        right: [this.decisionHistory.metricThrottledRequestsForOperations({ operations: [dynamodb.Operation.PUT_ITEM, dynamodb.Operation.GET_ITEM], ...sum, label: 'throttled' })],
        width: 12,
      }),
    );
    return dashboard;
  }
}

function rekognitionMetric(metricName: string, period: Duration): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: 'AWS/Rekognition',
    metricName,
    dimensionsMap: { Operation: 'DetectModerationLabels' },
    statistic: 'Sum',
    period,
  });
}

function bundlingOptions(nativeSharp: boolean): BundlingOptions {
  return {
    format: OutputFormat.ESM,
    target: 'node22',
    mainFields: ['module', 'main'],
    // Some CommonJS dependencies call require(); ESM output has none unless we make one.
    banner: "import { createRequire as __moderationCreateRequire } from 'node:module'; const require = __moderationCreateRequire(import.meta.url);",
    minify: true,
    keepNames: true,
    sourceMap: true,
    sourcesContent: false,
    // The SDK is bundled at the version the tests ran, not whatever the runtime image carries.
    bundleAwsSDK: true,
    // sharp is native: never bundled. Functions that use it get it installed beside the bundle with its
    // linux-arm64 binaries; the others do not import it.
    externalModules: ['sharp'],
    forceDockerBundling: false,
    ...(nativeSharp
      ? {
          nodeModules: ['sharp'],
          environment: NPM_FOR_LAMBDA_ARM64,
          commandHooks: {
            beforeBundling: () => [],
            beforeInstall: () => [],
            afterBundling: (_inputDir: string, outputDir: string) => [
              `node "${path.join(PROJECT_ROOT, 'infra', 'scripts', 'check-arm64-sharp.mjs')}" "${outputDir}"`,
            ],
          },
        }
      : {}),
  };
}

/** The Lambda timeout of each workflow step, from the definition: a little longer than the Task's TimeoutSeconds, so the state's timeout (retried) fires first. */
function taskTimeoutsByPlaceholder(definitionText: string): Record<WorkflowStep, Duration> {
  const states = (JSON.parse(definitionText) as { States: Record<string, { Type: string; Parameters?: { FunctionName?: string }; TimeoutSeconds?: number }> })
    .States;
  const result = {} as Record<WorkflowStep, Duration>;
  for (const [step, placeholder] of Object.entries(FUNCTION_PLACEHOLDERS) as [WorkflowStep, string][]) {
    const task = Object.values(states).find((state) => state.Type === 'Task' && state.Parameters?.FunctionName === `\${${placeholder}}`);
    if (!task?.TimeoutSeconds) throw new Error(`${DEFINITION_FILE}: no Task with FunctionName \${${placeholder}} and TimeoutSeconds`);
    result[step] = Duration.seconds(task.TimeoutSeconds + 5);
  }
  return result;
}

/** What MODERATION_POLICY gets: a preset by name, anything else validated and passed as compact JSON. */
function policySetting(spec: string): string {
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

function validate(scope: Construct, settings: PipelineSettings): void {
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
  if (problems.length) throw new Error(`ModerationPipeline ${scope.node.path}: ${problems.join('; ')}`);
}

/** The function's role: its policies are siblings of the function, so acknowledgements go on the role. */
function roleOf(fn: NodejsFunction): iam.IRole {
  if (!fn.role) throw new Error(`${fn.node.path} has no role`);
  return fn.role;
}

function acknowledgeXray(fn: NodejsFunction): void {
  acknowledgeWildcardResource(
    roleOf(fn),
    '*',
    'Added by CDK for active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so AWS requires Resource "*". No other statement of this role uses "*".',
  );
}

function acknowledgeObjectKeys(fn: NodejsFunction, bucket: s3.IBucket, keyPattern: string, what: string): void {
  acknowledgeWildcardResource(
    roleOf(fn),
    bucket.arnForObjects(keyPattern),
    `The function ${what}; object keys are chosen by uploaders at run time, so the grant names the bucket and the key prefix, with only the object actions this step calls.`,
  );
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
