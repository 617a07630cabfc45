/**
 * ModerationPipeline: the whole moderation flow on AWS as one reusable construct.
 *
 *   S3 uploads bucket ─(ObjectCreated Put/Post/CompleteMultipartUpload, prefix; never Copy)─▶ SQS intake
 *   queue (redrive to the DLQ) ─▶ ingest Lambda (batches, partial failures, maximum concurrency) ─▶
 *   Step Functions (statemachine/moderation.asl.json: detect → review → record → apply, fail path to
 *   the same DLQ) ─▶ DynamoDB decision history; quarantine bucket; alarms and a dashboard.
 *
 * The state machine is the one ASL file the local runtime also executes, loaded with
 * DefinitionBody.fromString + definitionSubstitutions so the template holds the definition. What
 * the construct shares with the handlers and the local runtime comes from one place each: the
 * environment variable names from functions/lib/config.ts, the table's keys from
 * functions/store/table-schema.ts, and the redrive count, the functions' memory, the definition's
 * path and its placeholders from functions/lib/pipeline-settings.ts.
 *
 * The construct's props, defaults and validation are in pipeline-props.ts, its alarms and dashboard
 * in pipeline-monitoring.ts (`pipeline.monitoring`), the functions' bundling in function-bundling.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Annotations, ArnFormat, Duration, Lazy, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as bedrock from 'aws-cdk-lib/aws-bedrock';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ENV, type WorkflowType } from '../functions/lib/config.ts';
import { ANALYSIS_NAMES, formatAnalysisList, type AnalysisName, type AnalysisSet } from '../functions/lib/analysis-policy.ts';

/** The IAM action of each analysis (functions/analysis.ts). */
const ANALYSIS_ACTIONS: Record<AnalysisName, string> = { labels: 'rekognition:DetectLabels', faces: 'rekognition:DetectFaces', text: 'rekognition:DetectText' };
import {
  DEFINITION_FILE,
  definitionSubstitutions,
  EXECUTION_STATUS_CHANGE,
  FUNCTION_MEMORY_MB,
  FUNCTION_PLACEHOLDERS,
  MAX_RECEIVE_COUNT,
  SETTLE_FUNCTION_MEMORY_MB,
  UNSETTLED_END_STATUSES,
  type Step,
  type WorkflowStep,
} from '../functions/lib/pipeline-settings.ts';
import { PIPELINE_TAG_PREFIX, STATUS_TAG } from '../functions/lib/tags.ts';
import { DECISION_INDEXES, INDEX_PROJECTED_ATTRIBUTES, SORT_BY_TIME, TABLE_KEYS } from '../functions/store/table-schema.ts';
import { bundlingOptions, PROJECT_ROOT } from './function-bundling.ts';
import { acknowledge, acknowledgeWildcardResource } from './nag.ts';
import { PipelineMonitoring, type PipelineAlarms } from './pipeline-monitoring.ts';
import { DecisionEvents, type OnDecisionOptions } from './decision-events.ts';
import { AppealIntake } from './appeal-intake.ts';
import { enabledAnalyses, policySetting, resolvePipelineProps, type LogLevel, type ModerationPipelineProps } from './pipeline-props.ts';

// What other modules import from here (tests, the stack, the example in docs/deploying.md) stays importable from here.
export { DEFINITION_FILE, FUNCTION_PLACEHOLDERS, MAX_RECEIVE_COUNT, STEPS, type Step, type WorkflowStep } from '../functions/lib/pipeline-settings.ts';
export { PIPELINE_DEFAULTS, type AnalysisProps, type LogLevel, type ModerationPipelineProps, type WorkflowLogLevel, type WorkflowType } from './pipeline-props.ts';
export { PipelineMonitoring, type PipelineAlarms, type PipelineMonitoringProps } from './pipeline-monitoring.ts';
export { DecisionEvents, type DecisionEventsOptions, type OnDecisionOptions } from './decision-events.ts';
export { AppealIntake, type AppealIntakeOptions } from './appeal-intake.ts';

/**
 * The S3 events that start moderation, Copy included (a rename by copy is new content under the
 * prefix). No loop: the apply step copies only into the quarantine bucket, which notifies nothing.
 */
export const INTAKE_EVENTS: readonly s3.EventType[] = [
  s3.EventType.OBJECT_CREATED_PUT,
  s3.EventType.OBJECT_CREATED_POST,
  s3.EventType.OBJECT_CREATED_COPY,
  s3.EventType.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD,
];

/** Every bucket the construct creates: private, encrypted at rest, TLS only, no ACLs. */
const PRIVATE_ENCRYPTED_BUCKET = {
  blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
  encryption: s3.BucketEncryption.S3_MANAGED,
  enforceSSL: true,
  objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
} satisfies s3.BucketProps;

/** Visibility timeout = this × the ingest timeout (+ the batching window), as AWS advises for SQS event sources. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/** Cross-Region inference profile ids carry a geography prefix. */
const INFERENCE_PROFILE_PREFIX = /^(us|us-gov|eu|apac|jp|au|ca|global)\./;

export interface PipelineFunctions {
  readonly ingest: NodejsFunction;
  readonly detect: NodejsFunction;
  readonly review: NodejsFunction;
  readonly record: NodejsFunction;
  readonly apply: NodejsFunction;
  readonly fail: NodejsFunction;
}

/**
 * The upload moderation pipeline: every object uploaded under `uploadsPrefix` is judged by
 * Rekognition (and optionally an LLM on Bedrock), the decision appended to the decision history,
 * and the object tagged or moved to quarantine. The people around it get their access with
 * `grantAudit`, `grantReview` and `grantOperate`.
 *
 * @example
 * import { App, Stack } from 'aws-cdk-lib';
 * import * as iam from 'aws-cdk-lib/aws-iam';
 * import * as sns from 'aws-cdk-lib/aws-sns';
 * import { ModerationPipeline } from './infra/moderation-pipeline.ts';
 *
 * const stack = new Stack(new App(), 'Uploads');
 * const pipeline = new ModerationPipeline(stack, 'Moderation', {
 *   policy: 'strict', // a preset, a policy file, or the policy itself
 *   contextualReview: true, // borderline images go to Bedrock before a person
 *   alarmTopic: new sns.Topic(stack, 'ModerationAlarms'),
 * });
 *
 * // Trust & safety staff decide the images held for review (`moderation review approve|reject`).
 * pipeline.grantReview(new iam.Role(stack, 'Reviewers', { assumedBy: new iam.AccountRootPrincipal() }));
 * // Auditors read and export the decision history (`moderation audit`).
 * pipeline.grantAudit(new iam.Role(stack, 'Auditors', { assumedBy: new iam.AccountRootPrincipal() }));
 * // Operators inspect and replay the dead-letter queue (`moderation dlq`, `moderation reconcile`).
 * pipeline.grantOperate(new iam.Role(stack, 'Operators', { assumedBy: new iam.AccountRootPrincipal() }));
 *
 * // Uploads go to pipeline.uploadsBucket under 'uploads/<uploader>/...'; the decisions to
 * // pipeline.decisionHistory; pipeline.monitoring.alarms notify the topic.
 */
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
  /** The alarms and the dashboard. */
  readonly monitoring: PipelineMonitoring;
  /**
   * STANDARD only: records FAILED and dead-letters the job of an execution that failed, timed out or
   * was aborted outside the workflow's fail path (functions/settle.ts), fed by `settleRule`.
   */
  readonly settleFunction?: NodejsFunction;
  /** STANDARD only: the EventBridge rule on this state machine's Execution Status Change events (FAILED, TIMED_OUT, ABORTED). */
  readonly settleRule?: events.Rule;
  /**
   * The serving gate's statements (docs/architecture.md, invariant 7), in the uploads bucket's policy
   * unless the bucket is adopted: then add them to its policy yourself. Empty with `servingGate: false`.
   */
  readonly servingGateStatements: iam.PolicyStatement[] = [];
  /**
   * The decision events (invariant 8; docs/events.md): one `Moderation Decision` event per record on
   * EventBridge, published from the table's stream. Undefined with `events: false`.
   */
  readonly events?: DecisionEvents;
  /** The platform's appeal intake (docs/events.md, "Appeals from the platform"). Undefined unless `appeals` is set. */
  readonly appeals?: AppealIntake;
  /**
   * The live policy (docs/operating.md, "Live policy"): the SSM parameter the detect step reads (cached
   * at most 60 s) and `moderation policy push` writes; created with the `policy` prop. Only the detect
   * function may read it; people get `grantPolicyPush`.
   */
  readonly policyParameter: ssm.StringParameter;

  readonly uploadsPrefix: string;
  readonly workflowType: WorkflowType;
  readonly statusShards: number;
  readonly contextualReview: boolean;
  readonly reviewModelId: string;
  /** What MODERATION_POLICY holds: a preset name or the policy document as compact JSON. */
  readonly policySetting: string;
  /** The analyses the detect function may call (the `analysis` prop; ANALYSIS_ENABLED). */
  readonly analysisEnabled: AnalysisSet;

  private readonly logRetention: logs.RetentionDays;
  private readonly logLevel: LogLevel;
  /** Whether uploads repeat earlier decisions of their bytes (REUSE_DECISIONS on detect). */
  private readonly reuseDecisions: boolean;
  /** Principal ARNs the serving gate lets read objects before they are APPROVED. */
  private readonly unmoderatedReaders: string[] = [];
  /** Principal ARNs the serving gate lets write the pipeline's `moderation-*` tags. */
  private readonly pipelineTagWriters: string[] = [];

  constructor(scope: Construct, id: string, props: ModerationPipelineProps = {}) {
    super(scope, id);
    const settings = resolvePipelineProps(this, props);
    this.uploadsPrefix = settings.uploadsPrefix;
    this.workflowType = settings.workflowType;
    this.statusShards = settings.statusShards;
    this.contextualReview = settings.contextualReview;
    this.reviewModelId = settings.reviewModelId;
    this.policySetting = policySetting(settings.policy);
    this.analysisEnabled = enabledAnalyses(settings.policy, props.analysis);
    this.logRetention = settings.logRetention;
    this.logLevel = settings.logLevel;
    this.reuseDecisions = settings.reuseDecisions;
    const express = this.workflowType === 'EXPRESS';
    const uploadObjects = this.uploadObjects;

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
      // The outbox of the decision events (infra/decision-events.ts): each record's new image, once.
      ...(props.events === false ? {} : { stream: dynamodb.StreamViewType.NEW_IMAGE }),
    });
    for (const index of Object.values(DECISION_INDEXES)) {
      this.decisionHistory.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: SORT_BY_TIME, type: dynamodb.AttributeType.STRING },
        // Keys and the attributes the audit queries filter on: every copy is one write unit whatever the
        // record's size; audits read the whole records from the table (BatchGetItem) for the rows they
        // return (functions/store/decision-query.ts; docs/performance.md, "What a decision costs to write").
        projectionType: dynamodb.ProjectionType.INCLUDE,
        nonKeyAttributes: [...INDEX_PROJECTED_ATTRIBUTES],
      });
    }
    // Grants on the base table only: the functions never query an index (auditors do, with their own credentials).
    const tableGrants = this.baseTableGrants;

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

    // ---- The live policy -------------------------------------------------------------------------
    // Starts as the `policy` prop (a preset name or compact JSON: a valid policy set). A deploy that
    // leaves the prop alone leaves a pushed policy alone; one that changes it publishes it again.
    this.policyParameter = new ssm.StringParameter(this, 'PolicyParameter', {
      description: 'The moderation policy set the detect step uses (moderation policy push; docs/operating.md, "Live policy")',
      stringValue: this.policySetting,
      tier: settings.policyParameterTier === 'advanced' ? ssm.ParameterTier.ADVANCED : ssm.ParameterTier.STANDARD,
    });

    // ---- Functions -----------------------------------------------------------------------------
    const detect = this.stepFunction('detect', {
      description: 'Detect step: Rekognition DetectModerationLabels and the policy verdict',
      timeout: taskTimeouts.detect,
      nativeSharp: true,
      environment: {
        [ENV.policy]: this.policySetting,
        [ENV.decisionTable]: this.decisionHistory.tableName,
        // The live policy set, re-read at most every 60 s (functions/policy-source.ts).
        [ENV.policyParameter]: this.policyParameter.parameterName,
        // The analyses this deployment grants: a policy that needs another is refused (functions/analysis.ts).
        [ENV.analysisEnabled]: formatAnalysisList(this.analysisEnabled),
      },
    });
    const review = this.stepFunction('review', {
      description: 'Review step: contextual review of a borderline image on Amazon Bedrock',
      timeout: taskTimeouts.review,
      nativeSharp: true,
      environment: { [ENV.reviewModelId]: this.reviewModelId, [ENV.policy]: this.policySetting },
    });
    const record = this.stepFunction('record', {
      description: 'Record step: one conditional write of the decision per job',
      timeout: taskTimeouts.record,
      environment: {
        [ENV.decisionTable]: this.decisionHistory.tableName,
        [ENV.statusShards]: String(this.statusShards),
        [ENV.policy]: this.policySetting,
        [ENV.qualitySampleRate]: String(settings.qualitySampleRate),
      },
    });
    const apply = this.stepFunction('apply', {
      description: 'Apply step: tag the object or move it to the quarantine bucket',
      timeout: taskTimeouts.apply,
      environment: { [ENV.quarantineBucket]: this.quarantineBucket.bucketName },
    });
    const fail = this.stepFunction('fail', {
      description: 'Fail path: record FAILED and send the job to the dead-letter queue',
      timeout: taskTimeouts.fail,
      environment: {
        [ENV.decisionTable]: this.decisionHistory.tableName,
        [ENV.deadLetterQueueUrl]: this.deadLetterQueue.queueUrl,
        [ENV.statusShards]: String(this.statusShards),
      },
    });

    // Detect: HeadObject/GetObject of the exact version (and Rekognition reads it with these
    // credentials); ListBucket so a deleted object is a 404 (UNUSABLE), not a 403 (FAILED).
    s3.BucketGrants.fromBucket(this.uploadsBucket).actionsOnObjectKeys(detect, uploadObjects, 's3:GetObject', 's3:GetObjectVersion', 'kms:Decrypt');
    grantListBucket(detect, this.uploadsBucket);
    // DetectModerationLabels' only resource type is `projectversion`, optional (Service Authorization
    // Reference): a call without an adapter is authorized on "*", one with the policy's adapter on its
    // project version ARN, which "*" covers. The adapter can change without a deploy (a live policy), so
    // "*" it stays; the ARN is validated where the policy is (functions/lib/adapter.ts).
    iam.Grant.addToPrincipal({ grantee: detect, actions: ['rekognition:DetectModerationLabels'], resourceArns: ['*'] });
    // The analyses the deployment enables, and only those (no resource-level permissions either).
    const analysisActions = ANALYSIS_NAMES.filter((name) => this.analysisEnabled[name]).map((name) => ANALYSIS_ACTIONS[name]);
    if (analysisActions.length) iam.Grant.addToPrincipal({ grantee: detect, actions: analysisActions, resourceArns: ['*'] });
    // Query on the job's own partition: a duplicate or a replay applies the latest decision (a human's, if any).
    tableGrants.actions(detect, 'dynamodb:GetItem', 'dynamodb:Query');
    // The live policy: read (GetParameter and friends) on this one parameter; no other function reads it.
    this.policyParameter.grantRead(detect);
    acknowledgeWildcardResource(
      roleOf(detect),
      '*',
      'Two statements: rekognition:DetectModerationLabels has one optional resource type, projectversion (a custom moderation adapter), and a call without an adapter is authorized on "*" only (AWS service authorization reference); it reads no data but the image the call names. And X-Ray PutTraceSegments/PutTelemetryRecords (added by active tracing) require Resource "*". Neither grants data access.',
    );
    acknowledgeObjectKeys(detect, this.uploadsBucket, uploadObjects, 'reads the uploaded object version under review');

    s3.BucketGrants.fromBucket(this.uploadsBucket).actionsOnObjectKeys(review, uploadObjects, 's3:GetObject', 's3:GetObjectVersion', 'kms:Decrypt');
    if (this.contextualReview) this.grantReviewModel(review);
    acknowledgeXray(review);
    acknowledgeObjectKeys(review, this.uploadsBucket, uploadObjects, 'reads the borderline image to send it to the model');

    tableGrants.actions(record, 'dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:Query');
    acknowledgeXray(record);

    this.grantApplyDecision(apply);
    acknowledgeXray(apply);
    acknowledgeObjectKeys(apply, this.uploadsBucket, uploadObjects, 'tags the decided object version, or deletes it once it is copied to quarantine');
    acknowledgeObjectKeys(apply, this.quarantineBucket, this.quarantineObjects, 'writes the rejected object under <uploads bucket>/<its key>');

    tableGrants.actions(fail, 'dynamodb:PutItem');
    this.deadLetterQueue.grants.sendMessages(fail);
    acknowledgeXray(fail);

    // ---- Workflow ------------------------------------------------------------------------------
    const workflowLogs = new logs.LogGroup(this, 'WorkflowLogs', {
      // The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy from growing per state machine.
      logGroupName: `/aws/vendedlogs/states/${Names.uniqueResourceName(this, { maxLength: 200 })}-workflow`,
      retention: this.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const stepFunctions: Record<WorkflowStep, NodejsFunction> = { detect, review, record, apply, fail };
    const functionArns = Object.fromEntries(Object.entries(stepFunctions).map(([step, fn]) => [step, fn.functionArn])) as Record<WorkflowStep, string>;
    this.workflow = new sfn.StateMachine(this, 'Workflow', {
      definitionBody: sfn.DefinitionBody.fromString(definitionText),
      // The same placeholders the local runtime fills (functions/lib/pipeline-settings.ts), with function ARNs.
      definitionSubstitutions: definitionSubstitutions(functionArns, this.contextualReview),
      stateMachineType: express ? sfn.StateMachineType.EXPRESS : sfn.StateMachineType.STANDARD,
      logs: {
        destination: workflowLogs,
        // ERROR by default: failed states only, without data (docs/operating.md, "What it costs");
        // workflowLogLevel 'ALL' logs every state, and for Express (which keeps no execution history)
        // every state's input and output too.
        level: sfn.LogLevel[settings.workflowLogLevel],
        includeExecutionData: express && settings.workflowLogLevel === 'ALL',
      },
      tracingEnabled: true,
    });
    if (settings.workflowLogLevel !== 'ALL') {
      acknowledge(
        this.workflow,
        'AwsSolutions-SF1',
        `The state machine logs at ${settings.workflowLogLevel} (the construct's workflowLogLevel; ERROR by default) on purpose: logging ALL events${express ? ' with execution data' : ''} costs about $31 per million images (docs/operating.md, "What it costs"), 30 times the rest of the orchestration, while every job already leaves a decision record (or a FAILED record and a dead-letter message with the error), failed states are still logged, and X-Ray traces every execution. workflowLogLevel 'ALL' turns full logging on.`,
      );
    }
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
    else {
      this.workflow.grantStartExecution(ingest);
      // ExecutionAlreadyExists: is that execution running or done, or did it end badly (a new one then)?
      this.grantDescribeExecutions(ingest, 'asks whether the execution named by a job id is still running or done before it starts a replay-named one');
    }
    this.deadLetterQueue.grants.sendMessages(ingest);
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

    // ---- Settle (STANDARD) ---------------------------------------------------------------------
    // Ingest deletes the intake message once a Standard execution has started: an execution that then
    // times out, is stopped or fails inside RecordFailure must still end its job FAILED + dead-lettered
    // (invariant 1). Express executions send no such events, and ingest waits for their result.
    if (!express) {
      const settle = this.stepFunction('settle', {
        description: 'Settle: a Standard execution that failed, timed out or was aborted outside the fail path is recorded FAILED and dead-lettered',
        timeout: Duration.seconds(60),
        environment: {
          [ENV.decisionTable]: this.decisionHistory.tableName,
          [ENV.deadLetterQueueUrl]: this.deadLetterQueue.queueUrl,
          [ENV.statusShards]: String(this.statusShards),
        },
        // Invoked asynchronously by EventBridge: after Lambda's two retries the event itself lands in the DLQ.
        deadLetterQueue: this.deadLetterQueue,
      });
      // latestDecision is a Query of the job's partition; appendFailure a PutItem.
      tableGrants.actions(settle, 'dynamodb:PutItem', 'dynamodb:Query');
      this.deadLetterQueue.grants.sendMessages(settle);
      this.grantDescribeExecutions(settle, "reads the execution's input when the event does not carry it");
      acknowledgeXray(settle);
      this.settleFunction = settle;
      this.settleRule = new events.Rule(this, 'SettleRule', {
        description: 'Executions of the moderation workflow that ended FAILED, TIMED_OUT or ABORTED: the settle function records the job FAILED unless it is decided',
        eventPattern: {
          source: [EXECUTION_STATUS_CHANGE.source],
          detailType: [EXECUTION_STATUS_CHANGE.detailType],
          detail: { stateMachineArn: [this.workflow.stateMachineArn], status: [...UNSETTLED_END_STATUSES] },
        },
        targets: [new eventTargets.LambdaFunction(settle, { retryAttempts: 185, maxEventAge: Duration.hours(24), deadLetterQueue: this.deadLetterQueue })],
      });
    }

    // ---- Serving gate --------------------------------------------------------------------------
    if (settings.servingGate) this.addServingGate([detect, review, apply].map(roleOf), roleOf(apply), props.moderators ?? []);

    // ---- S3 → SQS ------------------------------------------------------------------------------
    const destination = new s3n.SqsDestination(this.intakeQueue);
    const filters = this.uploadsPrefix ? [{ prefix: this.uploadsPrefix }] : [];
    for (const event of INTAKE_EVENTS) this.uploadsBucket.addEventNotification(event, destination, ...filters);
    this.acknowledgeNotificationHandler();

    // ---- Monitoring ----------------------------------------------------------------------------
    this.monitoring = new PipelineMonitoring(this, 'Monitoring', {
      intakeQueue: this.intakeQueue,
      deadLetterQueue: this.deadLetterQueue,
      workflow: this.workflow,
      workflowType: this.workflowType,
      functions: this.functions,
      decisionHistory: this.decisionHistory,
      maxIntakeMessageAge: settings.maxIntakeMessageAge,
      alarmTopic: props.alarmTopic,
    });

    // ---- Decision events (invariant 8) ---------------------------------------------------------
    if (props.events !== false) {
      this.events = new DecisionEvents(this, 'Events', { ...props.events, decisionHistory: this.decisionHistory, logRetention: this.logRetention, logLevel: this.logLevel, alarmTopic: props.alarmTopic });
    }

    // ---- Appeals from the platform (infra/appeal-intake.ts) -------------------------------------
    if (props.appeals) {
      this.appeals = new AppealIntake(this, 'Appeals', {
        ...(props.appeals === true ? {} : props.appeals),
        decisionHistory: this.decisionHistory,
        statusShards: this.statusShards,
        bus: this.events?.bus,
        logRetention: this.logRetention,
        logLevel: this.logLevel,
        alarmTopic: props.alarmTopic,
      });
    }
  }

  /**
   * A rule on the decision events (`Moderation Decision`, this pipeline's source), optionally only
   * some statuses or kinds of record, to `target`; e.g.
   * `pipeline.onDecision('Rejected', { target: new targets.SqsQueue(queue), statuses: ['REJECTED'] })`.
   */
  onDecision(id: string, options: OnDecisionOptions): events.Rule {
    if (!this.events) throw new Error(`ModerationPipeline ${this.node.path}: onDecision needs the decision events (the props say events: false)`);
    return this.events.onDecision(id, options);
  }

  /** The queue a platform sends `Moderation Appeal Request` messages to (with `appeals`). */
  get appealQueue(): sqs.IQueue | undefined {
    return this.appeals?.queue;
  }

  /**
   * The upload platform files appeals: sqs:SendMessage on the appeal queue, and (with events)
   * events:PutEvents on the bus for detail-type `Moderation Appeal Request` and the appeal source only.
   */
  grantAppeal(grantee: iam.IGrantable): iam.Grant {
    if (!this.appeals) throw new Error(`ModerationPipeline ${this.node.path}: grantAppeal needs the appeal intake (set appeals: true)`);
    return this.appeals.grantAppeal(grantee);
  }

  /** The alarms (`monitoring.alarms`). */
  get alarms(): PipelineAlarms {
    return this.monitoring.alarms;
  }

  /** The CloudWatch dashboard (`monitoring.dashboard`). */
  get dashboard(): cloudwatch.Dashboard {
    return this.monitoring.dashboard;
  }

  // ---- Access for people ----------------------------------------------------------------------
  // What each CLI command calls, and nothing more. Every grant also lets the person read this stack's
  // outputs: `--stack <name>` finds the table, queues and buckets there (cli/target.ts).

  /**
   * Auditors (`moderation audit`, `moderation history`): read the decision history — GetItem, Query,
   * BatchGetItem (and Scan, ConditionCheckItem, DescribeTable) on the table and its indexes. Exporting
   * writes to the auditor's own machine, so nothing here writes.
   */
  grantAudit(grantee: iam.IGrantable): iam.Grant {
    return this.grantReadDecisions(grantee).combine(this.grantStackOutputs(grantee));
  }

  /**
   * Reviewers (`moderation review list|approve|reject`, the review console): read the decision history
   * and append a human decision (PutItem; never DeleteItem or UpdateItem: the history is append-only);
   * read the image and its tags under the uploads prefix and tag it; for a reject, copy it to the
   * quarantine bucket (PutObject, PutObjectTagging) and delete it from the uploads prefix, as the apply
   * step does (functions/apply.ts, which the CLI runs with these credentials); for a granted appeal,
   * copy it back from quarantine (PutObject under the uploads prefix; GetObjectTagging and
   * DeleteObject in the quarantine bucket). Filing appeals (`moderation appeal`) is a PutItem too.
   */
  grantReview(grantee: iam.IGrantable): iam.Grant {
    const decisions = this.grantReadDecisions(grantee).combine(this.baseTableGrants.actions(grantee, 'dynamodb:PutItem'));
    const objects = this.grantApplyDecision(grantee);
    // A granted appeal restores the object from quarantine: copy it back (PutObject on the prefix,
    // which no function role has: invariant 4), read the copy's job tag, delete the copy.
    const restore = s3.BucketGrants.fromBucket(this.uploadsBucket)
      .actionsOnObjectKeys(grantee, this.uploadObjects, 's3:PutObject')
      .combine(this.quarantineBucket.grants.actionsOnObjectKeys(grantee, this.quarantineObjects, 's3:GetObjectTagging', 's3:DeleteObject'));
    // They look at images held for review and tag them with the decision (the apply step's code).
    this.exemptFromServingGate(grantee, { writesTags: true });
    acknowledgeGranteeWildcard(
      grantee,
      this.uploadsBucket.arnForObjects(this.uploadObjects),
      'A reviewer decides any image held for review, and object keys are chosen by uploaders at run time: the grant names the moderated prefix of the uploads bucket, with only the read, tag and delete actions of applying a decision.',
    );
    acknowledgeGranteeWildcard(
      grantee,
      this.quarantineBucket.arnForObjects(this.quarantineObjects),
      'A rejected image is copied to the quarantine bucket under <uploads bucket>/<its key>, a key chosen by the uploader: the grant names that prefix, with only PutObject, PutObjectTagging and GetObject (to see that it is already there).',
    );
    return decisions.combine(objects).combine(restore).combine(this.grantStackOutputs(grantee));
  }

  /**
   * Trust & safety staff who change the live policy (`moderation policy push|show`, and `policy what-if`
   * against the history): read and overwrite (ssm:PutParameter) the live-policy parameter, read the
   * decision history. Nothing else: pushing a policy is a decision about every future upload, kept
   * apart from operating the queues.
   */
  grantPolicyPush(grantee: iam.IGrantable): iam.Grant {
    return this.policyParameter
      .grantRead(grantee)
      .combine(this.policyParameter.grantWrite(grantee))
      .combine(this.grantReadDecisions(grantee))
      .combine(this.grantStackOutputs(grantee));
  }

  /**
   * Operators (`moderation dlq list|show|replay`, `moderation reconcile`): on the dead-letter queue
   * receive, delete, change visibility, get attributes and the message move tasks (Start, List,
   * Cancel) of a full redrive; on the intake queue send (replays and re-enqueued objects) and get
   * attributes; read the decision history; list the uploads prefix and read (HeadObject/GetObject)
   * the objects under it.
   */
  grantOperate(grantee: iam.IGrantable): iam.Grant {
    const deadLetters = this.deadLetterQueue.grants
      .consumeMessages(grantee)
      .combine(this.deadLetterQueue.grants.actions(grantee, ['sqs:StartMessageMoveTask', 'sqs:ListMessageMoveTasks', 'sqs:CancelMessageMoveTask']));
    // A move task also needs SendMessage on its destination: the intake queue.
    const intake = this.intakeQueue.grants.sendMessages(grantee);
    const objects = s3.BucketGrants.fromBucket(this.uploadsBucket)
      .actionsOnObjectKeys(grantee, this.uploadObjects, 's3:GetObject', 'kms:Decrypt')
      .combine(grantListBucket(grantee, this.uploadsBucket, this.uploadsPrefix));
    // Reconcile's HeadObject of an undecided object is authorized as s3:GetObject.
    this.exemptFromServingGate(grantee, { writesTags: false });
    acknowledgeGranteeWildcard(
      grantee,
      this.uploadsBucket.arnForObjects(this.uploadObjects),
      'Reconcile reads (HeadObject) each object under the moderated prefix that has no decision; object keys are chosen by uploaders at run time, so the grant names the prefix, with s3:GetObject only.',
    );
    return deadLetters
      .combine(intake)
      .combine(this.grantReadDecisions(grantee))
      .combine(objects)
      .combine(this.grantStackOutputs(grantee));
  }

  /**
   * The serving gate (invariant 7): two Deny statements in the uploads bucket's policy.
   * - Reads: s3:GetObject/GetObjectVersion under the prefix unless the object version's
   *   moderation-status tag is APPROVED, for every principal but the unmoderated readers (a missing
   *   tag is "not APPROVED": StringNotEquals is true when the key is absent). A service reading for
   *   a caller with forward access sessions (Rekognition reading for detect) is that caller.
   * - Tags: writing any moderation-* tag (PutObject with x-amz-tagging, PutObject(Version)Tagging)
   *   anywhere in the bucket, for every principal but the apply step and reviewers. The whole bucket:
   *   a copy with its tags from elsewhere in it must not bring a forged APPROVED under the prefix.
   * The principal lists are lazy: grantReview and grantOperate called later still reach them.
   */
  private addServingGate(pipelineReaders: iam.IRole[], tagWriter: iam.IRole, moderators: iam.IRole[]): void {
    for (const role of pipelineReaders) this.unmoderatedReaders.push(role.roleArn);
    this.pipelineTagWriters.push(tagWriter.roleArn);
    const principalsIn = (arns: string[]) => Lazy.list({ produce: () => [...new Set(arns)] });
    this.servingGateStatements.push(
      new iam.PolicyStatement({
        sid: 'ServeOnlyApprovedObjects',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [this.uploadsBucket.arnForObjects(this.uploadObjects)],
        conditions: {
          StringNotEquals: { [`s3:ExistingObjectTag/${STATUS_TAG}`]: 'APPROVED' },
          ArnNotEquals: { 'aws:PrincipalArn': principalsIn(this.unmoderatedReaders) },
        },
      }),
      new iam.PolicyStatement({
        sid: 'OnlyThePipelineWritesModerationTags',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject', 's3:PutObjectTagging', 's3:PutObjectVersionTagging'],
        resources: [this.uploadsBucket.arnForObjects('*')],
        conditions: {
          'ForAnyValue:StringLike': { 's3:RequestObjectTagKeys': [`${PIPELINE_TAG_PREFIX}*`] },
          ArnNotEquals: { 'aws:PrincipalArn': principalsIn(this.pipelineTagWriters) },
        },
      }),
    );
    for (const moderator of moderators) this.exemptFromServingGate(moderator, { writesTags: false });
    const added = this.servingGateStatements.map((statement) => this.uploadsBucket.addToResourcePolicy(statement).statementAdded);
    if (!added.every(Boolean)) {
      Annotations.of(this).addWarningV2(
        'upload-moderation:servingGateNotApplied',
        `The uploads bucket ${this.uploadsBucket.node.path} is adopted, so its policy is its owner's: the serving gate (objects under "${this.uploadsPrefix}" readable only once tagged ${STATUS_TAG}=APPROVED; nobody but the pipeline writes ${PIPELINE_TAG_PREFIX}* tags) is NOT in place. Add pipeline.servingGateStatements to the bucket's policy (docs/deploying.md, "Serving approved content"), or set servingGate: false to say you do not want it.`,
      );
    }
  }

  /**
   * Lets a principal through the serving gate: read objects before they are APPROVED, and with
   * `writesTags` write the moderation-* tags. The gate names principals by aws:PrincipalArn, which is
   * a role's or a user's ARN: a group or another kind of principal cannot be named (a synth warning says so).
   */
  private exemptFromServingGate(grantee: iam.IGrantable, options: { writesTags: boolean }): void {
    if (this.servingGateStatements.length === 0) return;
    const arn = principalArnOf(grantee.grantPrincipal);
    if (!arn) {
      Annotations.of(this).addWarningV2(
        'upload-moderation:servingGatePrincipal',
        `${principalName(grantee)} is not a role or a user: the serving gate cannot name it (aws:PrincipalArn), so it cannot read objects under "${this.uploadsPrefix}" before they are APPROVED${options.writesTags ? ' nor write their moderation-* tags' : ''}. Grant a role instead.`,
      );
      return;
    }
    this.unmoderatedReaders.push(arn);
    if (options.writesTags) this.pipelineTagWriters.push(arn);
  }

  /** states:DescribeExecution on this state machine's executions (their names are job ids, known at run time). */
  private grantDescribeExecutions(fn: NodejsFunction, why: string): void {
    const executions = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${this.workflow.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    iam.Grant.addToPrincipal({ grantee: fn, actions: ['states:DescribeExecution'], resourceArns: [executions] });
    acknowledgeWildcardResource(
      roleOf(fn),
      executions,
      `The function ${why}: execution names are job ids, known only at run time, so the grant names this state machine's executions (execution:<state machine>:*) with states:DescribeExecution only.`,
    );
  }

  /** The object keys the pipeline moderates, as a key pattern. */
  private get uploadObjects(): string {
    return `${this.uploadsPrefix}*`;
  }

  /** Where rejected objects go in the quarantine bucket: `<uploads bucket>/<key>` (functions/lib/quarantine.ts). */
  private get quarantineObjects(): string {
    return `${this.uploadsBucket.bucketName}/${this.uploadObjects}`;
  }

  /** Grants on the decision table itself, without its indexes (writers and the functions never query an index). */
  private get baseTableGrants(): dynamodb.TableGrants {
    return dynamodb.TableGrants.fromTable(this.decisionHistory, [], false);
  }

  /** Read the decision history: the table and its indexes (audits, review lists and reconcile query the indexes). */
  private grantReadDecisions(grantee: iam.IGrantable): iam.Grant {
    const grant = this.decisionHistory.grants.readData(grantee);
    acknowledgeGranteeWildcard(
      grantee,
      `${this.decisionHistory.tableArn}/index/*`,
      "CDK's readData grant names the table's indexes as <table>/index/*. The indexes are exactly the access patterns of the decision history (by status, uploader, category, image) that audits, review lists and reconcile query; the wildcard reaches no other table.",
    );
    return grant;
  }

  /** The stack outputs the CLI reads with `--stack` (cloudformation:DescribeStacks on this stack only). */
  private grantStackOutputs(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['cloudformation:DescribeStacks'], resourceArns: [Stack.of(this).stackId] });
  }

  /** What applying a decision to an object takes: the apply step, and a reviewer's approve/reject (the same code). */
  private grantApplyDecision(grantee: iam.IGrantable): iam.Grant {
    const uploads = s3.BucketGrants.fromBucket(this.uploadsBucket).actionsOnObjectKeys(
      grantee,
      this.uploadObjects,
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
    const listUploads = grantListBucket(grantee, this.uploadsBucket);
    // Quarantine keys are `<uploads bucket>/<key>`; HeadObject there needs GetObject (+ ListBucket for a 404).
    const quarantine = this.quarantineBucket.grants.actionsOnObjectKeys(grantee, this.quarantineObjects, 's3:PutObject', 's3:PutObjectTagging', 's3:GetObject');
    const listQuarantine = grantListBucket(grantee, this.quarantineBucket);
    return uploads.combine(listUploads).combine(quarantine).combine(listQuarantine);
  }

  private stepFunction(
    step: Step | 'settle',
    options: { description: string; timeout: Duration; environment: Record<string, string>; nativeSharp?: boolean; deadLetterQueue?: sqs.IQueue },
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
      // The same number the cost model prices (functions/lib/pipeline-settings.ts).
      memorySize: step === 'settle' ? SETTLE_FUNCTION_MEMORY_MB : FUNCTION_MEMORY_MB[step],
      timeout: options.timeout,
      role,
      logGroup,
      // JSON logs with Lambda's own START/END/REPORT lines only for DEBUG: at a million images a month
      // they are about 0.5 GB of the log bill (docs/operating.md, "What it costs").
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel[this.logLevel],
      systemLogLevelV2: this.logLevel === 'DEBUG' ? lambda.SystemLogLevel.INFO : lambda.SystemLogLevel.WARN,
      tracing: lambda.Tracing.ACTIVE,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'moderation',
        POWERTOOLS_METRICS_NAMESPACE: 'UploadModeration',
        POWERTOOLS_LOG_LEVEL: this.logLevel,
        // Decisions are reused unless the deployer said otherwise (functions/content-reuse.ts).
        ...(this.reuseDecisions ? {} : { [ENV.reuseDecisions]: 'off' }),
        NODE_OPTIONS: '--enable-source-maps',
        ...options.environment,
      },
      bundling: bundlingOptions(options.nativeSharp ?? false),
      ...(options.deadLetterQueue ? { deadLetterQueue: options.deadLetterQueue } : {}),
    });
    acknowledge(
      fn,
      'AwsSolutions-L1',
      'Node.js 22 is an LTS runtime that AWS supports; it is pinned on purpose (the esbuild target node22 and the shipped sharp build follow it), and this rule flags anything but the newest runtime CDK knows. Moving to Node.js 24 is a deliberate, tested upgrade, not a side effect of a CDK release.',
    );
    return fn;
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
}

/**
 * s3:ListBucket on the bucket itself: HeadObject on a missing key then answers 404 instead of 403.
 * With a prefix, only listings under it (what reconcile lists); such a grant does not turn a HEAD's
 * 403 into a 404, so the functions and reviewers get it without one.
 */
function grantListBucket(grantee: iam.IGrantable, bucket: s3.IBucket, prefix?: string): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['s3:ListBucket'],
    resourceArns: [bucket.bucketArn],
    ...(prefix ? { conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } } } : {}),
  });
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

/** What aws:PrincipalArn says for requests made with this principal's credentials: a role's or a user's ARN. */
function principalArnOf(principal: iam.IPrincipal): string | undefined {
  const candidate = principal as Partial<iam.IRole & iam.IUser>;
  if (typeof candidate.roleArn === 'string') return candidate.roleArn;
  if (typeof candidate.userArn === 'string') return candidate.userArn;
  if (principal instanceof iam.ArnPrincipal && !(principal instanceof iam.AccountRootPrincipal)) return principal.arn;
  return undefined;
}

function principalName(grantee: iam.IGrantable): string {
  const principal = grantee.grantPrincipal;
  return Construct.isConstruct(principal) ? principal.node.path : String(principal);
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

/**
 * A person's grant lands in the policy of the grantee's principal (a role, user or group: the policy
 * is its child), so that is where its one unavoidable wildcard is acknowledged. A principal that is
 * not a construct of this app holds no policy here, and there is nothing to acknowledge.
 */
function acknowledgeGranteeWildcard(grantee: iam.IGrantable, resource: string, reason: string): void {
  const principal = grantee.grantPrincipal;
  if (Construct.isConstruct(principal)) acknowledgeWildcardResource(principal, resource, reason);
}
