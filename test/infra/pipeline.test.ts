/**
 * The default stack (EXPRESS, contextual review off), synthesized once: each item of the
 * infrastructure issue, asserted on the CloudFormation template.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CfnElement } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { ENV } from '../../functions/lib/config.ts';
import { DECISION_INDEXES, DEFAULT_STATUS_SHARDS, INDEX_PROJECTED_ATTRIBUTES, SORT_BY_TIME, TABLE_KEYS } from '../../functions/store/table-schema.ts';
import { renderDefinition } from '../../local/workflow.ts';
import {
  DEFINITION_FILE,
  FUNCTION_PLACEHOLDERS,
  MAX_RECEIVE_COUNT,
  PIPELINE_DEFAULTS,
  PipelineMonitoring,
  STEPS,
  VISIBILITY_TIMEOUT_FACTOR,
  type WorkflowStep,
} from '../../infra/moderation-pipeline.ts';
import { STACK_OUTPUT_KEYS } from '../../infra/moderation-stack.ts';
import { actionsOfRole, asArray, iamStatements, resourcesOf, statementsOfRole, synthStack } from './helpers.ts';

const { stack, template } = synthStack();
const pipeline = stack.pipeline;
const idOf = (construct: { node: { defaultChild?: unknown } }): string => stack.getLogicalId(construct.node.defaultChild as CfnElement);
const fnId = (step: (typeof STEPS)[number]) => idOf(pipeline.functions[step]);
const roleId = (step: (typeof STEPS)[number]) => idOf(pipeline.functions[step].role as never);
const functionProps = (step: (typeof STEPS)[number]) => template.toJSON().Resources[fnId(step)].Properties;
const asl = readFileSync(DEFINITION_FILE, 'utf8');
const aslStates = JSON.parse(asl).States as Record<string, { Type: string; TimeoutSeconds?: number; Parameters?: { FunctionName?: string }; Catch?: { Next: string }[] }>;

const uploadsId = idOf(pipeline.uploadsBucket as never);
const quarantineId = idOf(pipeline.quarantineBucket);
const intakeId = idOf(pipeline.intakeQueue);
const dlqId = idOf(pipeline.deadLetterQueue);
const tableId = idOf(pipeline.decisionHistory);
const workflowId = idOf(pipeline.workflow);

describe('construct properties', () => {
  it('exposes every resource under a user-word name', () => {
    for (const name of ['uploadsBucket', 'quarantineBucket', 'intakeQueue', 'deadLetterQueue', 'decisionHistory', 'workflow', 'dashboard'] as const) {
      expect(pipeline[name], name).toBeDefined();
    }
    expect(Object.keys(pipeline.functions).sort()).toEqual([...STEPS].sort());
  });
});

describe('uploads and quarantine buckets', () => {
  const buckets = resourcesOf(template, 'AWS::S3::Bucket');

  it.each([
    ['uploads', () => uploadsId],
    ['quarantine', () => quarantineId],
  ])('%s: public access blocked, encrypted, versioned, noncurrent versions expire, retained', (_name, id) => {
    const bucket = template.toJSON().Resources[id()];
    const props = bucket.Properties;
    expect(props.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(props.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(props.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(props.LifecycleConfiguration.Rules).toContainEqual(expect.objectContaining({ Status: 'Enabled', NoncurrentVersionExpiration: { NoncurrentDays: expect.any(Number) } }));
    expect(props.LoggingConfiguration.DestinationBucketName).toEqual({ Ref: idOf(pipeline.accessLogsBucket) });
    expect(bucket.DeletionPolicy).toBe('Retain');
  });

  it('every bucket blocks public access, is encrypted and denies requests without TLS', () => {
    const policies = Object.values(resourcesOf(template, 'AWS::S3::BucketPolicy'));
    for (const [id, bucket] of Object.entries(buckets)) {
      expect(bucket.Properties!.PublicAccessBlockConfiguration, id).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
      expect(bucket.Properties!.BucketEncryption, id).toBeDefined();
      const policy = policies.find((p) => JSON.stringify(p.Properties!.Bucket) === JSON.stringify({ Ref: id }));
      expect(policy?.Properties!.PolicyDocument.Statement, id).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });
});

describe('S3 → SQS notification', () => {
  const notifications = Object.values(resourcesOf(template, 'Custom::S3BucketNotifications'));
  const configs = notifications.flatMap((n) => n.Properties!.NotificationConfiguration.QueueConfigurations as { Events: string[]; Filter?: unknown; QueueArn: unknown }[]);

  it('sends ObjectCreated Put, Post and CompleteMultipartUpload of the uploads bucket to the intake queue', () => {
    expect(notifications).toHaveLength(1);
    expect(notifications[0].Properties!.BucketName).toEqual({ Ref: uploadsId });
    expect(configs.flatMap((c) => c.Events).sort()).toEqual(['s3:ObjectCreated:CompleteMultipartUpload', 's3:ObjectCreated:Copy', 's3:ObjectCreated:Post', 's3:ObjectCreated:Put']);
    for (const config of configs) expect(config.QueueArn).toEqual({ 'Fn::GetAtt': [intakeId, 'Arn'] });
  });

  it('includes Copy (a rename by copy is new content), never ObjectCreated:*, and nothing on the quarantine bucket (no trigger loop)', () => {
    const events = configs.flatMap((c) => c.Events);
    expect(events).toContain('s3:ObjectCreated:Copy');
    expect(events).not.toContain('s3:ObjectCreated:*');
    // The apply step copies rejects into the quarantine bucket: that bucket must notify nothing.
    expect(notifications.every((n) => JSON.stringify(n.Properties!.BucketName) === JSON.stringify({ Ref: uploadsId }))).toBe(true);
  });

  it('filters on the uploads prefix', () => {
    for (const config of configs) expect(config.Filter).toEqual({ Key: { FilterRules: [{ Name: 'prefix', Value: PIPELINE_DEFAULTS.uploadsPrefix }] } });
  });

  it('lets only S3 from the uploads bucket send to the intake queue', () => {
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: intakeId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 's3.amazonaws.com' },
            Action: Match.arrayWith(['sqs:SendMessage']),
            Condition: { ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [uploadsId, 'Arn'] } } },
          }),
        ]),
      },
    });
  });
});

describe('intake queue and dead-letter queue', () => {
  const resources = template.toJSON().Resources;

  it('intake queue: encrypted, TLS only, visibility timeout at least 6 × the ingest timeout', () => {
    const intake = resources[intakeId].Properties;
    expect(intake.SqsManagedSseEnabled).toBe(true);
    const ingestTimeout = functionProps('ingest').Timeout as number;
    expect(intake.VisibilityTimeout).toBeGreaterThanOrEqual(VISIBILITY_TIMEOUT_FACTOR * ingestTimeout);
    expect(VISIBILITY_TIMEOUT_FACTOR).toBeGreaterThanOrEqual(6);
  });

  it(`redrives to the DLQ after ${MAX_RECEIVE_COUNT} receives; the DLQ keeps messages 14 days`, () => {
    expect(resources[intakeId].Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 });
    expect(resources[dlqId].Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    expect(resources[dlqId].Properties.SqsManagedSseEnabled).toBe(true);
  });

  it('both queues deny requests without TLS', () => {
    for (const id of [intakeId, dlqId]) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
    }
  });

  it("the workflow's fail path sends to the same DLQ", () => {
    // Every Catch of the definition leads to the fail path (Review's falls back to Record: fail closed)...
    const catchers = Object.entries(aslStates).filter(([, s]) => s.Catch);
    expect(catchers.length).toBeGreaterThan(0);
    for (const [name, state] of catchers) expect(state.Catch!.map((c) => c.Next), name).toEqual([name === 'Review' ? 'Record' : 'RecordFailure']);
    expect(aslStates.RecordFailure.Parameters!.FunctionName).toBe(`\${${FUNCTION_PLACEHOLDERS.fail}}`);
    // ...which is the fail function, and the fail function sends to this DLQ.
    const substitutions = resources[workflowId].Properties.DefinitionSubstitutions;
    expect(substitutions[FUNCTION_PLACEHOLDERS.fail]).toEqual({ 'Fn::GetAtt': [fnId('fail'), 'Arn'] });
    expect(functionProps('fail').Environment.Variables[ENV.deadLetterQueueUrl]).toEqual({ Ref: dlqId });
    expect(statementsOfRole(template, roleId('fail'))).toContainEqual(
      expect.objectContaining({ Action: expect.arrayContaining(['sqs:SendMessage']), Resource: { 'Fn::GetAtt': [dlqId, 'Arn'] } }),
    );
  });
});

describe('ingest function and its SQS event source', () => {
  // The ingest function's (the decision events' publisher has its own, on the table's stream: test/infra/decision-events.test.ts).
  const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping')).filter((m) => JSON.stringify(m.Properties!.FunctionName) === JSON.stringify({ Ref: fnId('ingest') }));

  it('batches, reports partial batch failures and caps concurrency toward Rekognition', () => {
    expect(mappings).toHaveLength(1);
    expect(mappings[0].Properties).toEqual(
      expect.objectContaining({
        EventSourceArn: { 'Fn::GetAtt': [intakeId, 'Arn'] },
        FunctionName: { Ref: fnId('ingest') },
        BatchSize: PIPELINE_DEFAULTS.batchSize,
        MaximumBatchingWindowInSeconds: PIPELINE_DEFAULTS.maxBatchingWindow.toSeconds(),
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: PIPELINE_DEFAULTS.maxConcurrency },
      }),
    );
  });

  it('starts Express executions synchronously, and only that', () => {
    const env = functionProps('ingest').Environment.Variables;
    expect(env).toEqual(
      expect.objectContaining({
        [ENV.stateMachineArn]: { Ref: workflowId },
        [ENV.workflowType]: 'EXPRESS',
        [ENV.uploadsBucket]: { Ref: uploadsId },
        [ENV.uploadsPrefix]: PIPELINE_DEFAULTS.uploadsPrefix,
        [ENV.uploaderPattern]: PIPELINE_DEFAULTS.uploaderPattern,
      }),
    );
    const states = statementsOfRole(template, roleId('ingest')).filter((s) => asArray(s.Action).some((a) => a.startsWith('states:')));
    expect(states).toEqual([expect.objectContaining({ Action: 'states:StartSyncExecution', Resource: { Ref: workflowId } })]);
  });

  it('outlives the longest Express execution it waits for', () => {
    expect(functionProps('ingest').Timeout).toBeGreaterThan(JSON.parse(asl).TimeoutSeconds);
  });
});

describe('state machine', () => {
  const props = template.toJSON().Resources[workflowId].Properties;

  it('is loaded from statemachine/moderation.asl.json unchanged (DefinitionBody.fromString)', () => {
    expect(props.DefinitionString).toBe(asl);
    expect(props.DefinitionS3Location).toBeUndefined();
  });

  it('the rendered DefinitionString equals the ASL file with the substitutions applied', () => {
    const placeholders = [...new Set([...asl.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]))].sort();
    expect(Object.keys(props.DefinitionSubstitutions).sort()).toEqual(placeholders);

    // What CloudFormation will substitute, with each function ARN written as the ARN of its logical id...
    const asText = (value: unknown): string => {
      if (typeof value === 'string') return value;
      const [logicalId, attribute] = (value as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'];
      expect(attribute).toBe('Arn');
      return `arn:aws:lambda:region:account:function:${logicalId}`;
    };
    const rendered = renderDefinition(props.DefinitionString, Object.fromEntries(Object.entries(props.DefinitionSubstitutions).map(([k, v]) => [k, asText(v)])));
    // ...equals the file with each step's own function and the review setting put in.
    const expected: Record<string, string> = { ContextualReview: 'disabled' };
    for (const [step, placeholder] of Object.entries(FUNCTION_PLACEHOLDERS)) expected[placeholder] = `arn:aws:lambda:region:account:function:${fnId(step as WorkflowStep)}`;
    expect(JSON.parse(rendered)).toEqual(JSON.parse(renderDefinition(asl, expected)));
    expect(rendered).not.toMatch(/\$\{/);
  });

  it('functions log JSON, warnings only, and none of Lambda\'s START/END/REPORT lines (logLevel INFO or DEBUG brings lines back)', () => {
    for (const step of STEPS) {
      expect(functionProps(step).LoggingConfig, step).toMatchObject({ LogFormat: 'JSON', ApplicationLogLevel: 'WARN', SystemLogLevel: 'WARN' });
      // Decisions are reused by default: no REUSE_DECISIONS=off.
      expect(functionProps(step).Environment.Variables[ENV.reuseDecisions], step).toBeUndefined();
    }
  });

  it('is EXPRESS by default, logs failed states (ERROR) without execution data to a log group with retention, and traces', () => {
    expect(props.StateMachineType).toBe('EXPRESS');
    // ALL with execution data was ~$31 a month per million images (docs/operating.md, "What it costs"): workflowLogLevel 'ALL'.
    expect(props.LoggingConfiguration.Level).toBe('ERROR');
    expect(props.LoggingConfiguration.IncludeExecutionData).toBe(false);
    const logGroupId = props.LoggingConfiguration.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0];
    const logGroup = template.toJSON().Resources[logGroupId];
    expect(logGroup.Type).toBe('AWS::Logs::LogGroup');
    expect(logGroup.Properties.RetentionInDays).toBe(30);
    expect(logGroup.Properties.LogGroupName).toMatch(/^\/aws\/vendedlogs\/states\//);
    expect(props.TracingConfiguration).toEqual({ Enabled: true });
  });

  it('may invoke exactly the five step functions (unqualified), nothing else', () => {
    const workflowRole = props.RoleArn['Fn::GetAtt'][0];
    const invoke = statementsOfRole(template, workflowRole).filter((s) => asArray(s.Action).includes('lambda:InvokeFunction'));
    const resources = invoke.flatMap((s) => asArray(s.Resource)).map((r) => JSON.stringify(r));
    const stepIds = Object.keys(FUNCTION_PLACEHOLDERS).map((step) => fnId(step as WorkflowStep));
    for (const r of resources) expect(stepIds.some((id) => r.includes(`"${id}"`)), r).toBe(true);
    for (const id of stepIds) expect(resources).toContain(JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }));
    expect(resources.some((r) => r.includes(':*'))).toBe(false);
  });
});

describe('functions', () => {
  it.each(STEPS)('%s: NodejsFunction on Node 22, ARM64, traced, Powertools environment', (step) => {
    const props = functionProps(step);
    expect(props.Runtime).toBe('nodejs22.x');
    expect(props.Architectures).toEqual(['arm64']);
    expect(props.Handler).toBe('index.handler');
    expect(props.TracingConfig).toEqual({ Mode: 'Active' });
    expect(props.Environment.Variables).toEqual(
      expect.objectContaining({
        POWERTOOLS_SERVICE_NAME: 'moderation',
        POWERTOOLS_METRICS_NAMESPACE: 'UploadModeration',
        // WARN by default: each decision is in the history already (docs/operating.md, "What it costs").
        POWERTOOLS_LOG_LEVEL: 'WARN',
        NODE_OPTIONS: '--enable-source-maps',
      }),
    );
    expect(props.Environment.Variables).not.toHaveProperty(ENV.s3ForcePathStyle);
    const logGroupId = props.LoggingConfig.LogGroup.Ref;
    expect(template.toJSON().Resources[logGroupId].Properties.RetentionInDays).toBe(30);
  });

  it.each([
    ['ingest', [ENV.stateMachineArn, ENV.workflowType, ENV.uploadsBucket, ENV.uploadsPrefix, ENV.uploaderPattern, ENV.deadLetterQueueUrl]],
    ['detect', [ENV.policy, ENV.decisionTable, ENV.policyParameter, ENV.analysisEnabled]],
    ['review', [ENV.reviewModelId, ENV.policy]],
    ['record', [ENV.decisionTable, ENV.statusShards, ENV.policy, ENV.qualitySampleRate]],
    ['apply', [ENV.quarantineBucket]],
    ['fail', [ENV.decisionTable, ENV.deadLetterQueueUrl, ENV.statusShards]],
  ] as const)('%s gets the settings its handler reads (functions/lib/config.ts names)', (step, names) => {
    const variables = Object.keys(functionProps(step).Environment.Variables).filter((k) => !k.startsWith('POWERTOOLS_') && k !== 'NODE_OPTIONS');
    expect(variables.sort()).toEqual([...names].sort());
  });

  it('QUALITY_SAMPLE_RATE is the pipeline default, 1% (functions/lib/quality.ts)', () => {
    expect(functionProps('record').Environment.Variables[ENV.qualitySampleRate]).toBe('0.01');
  });

  it('STATUS_SHARDS is the same number the stack outputs for readers', () => {
    expect(functionProps('record').Environment.Variables[ENV.statusShards]).toBe(String(DEFAULT_STATUS_SHARDS));
    expect(template.toJSON().Outputs.StatusShards.Value).toBe(String(DEFAULT_STATUS_SHARDS));
  });

  it.each(Object.entries(FUNCTION_PLACEHOLDERS))("%s: the Lambda timeout outlasts its Task's TimeoutSeconds (the state's timeout is the retried one)", (step, placeholder) => {
    const task = Object.values(aslStates).find((s) => s.Parameters?.FunctionName === `\${${placeholder}}`)!;
    expect(functionProps(step as WorkflowStep).Timeout).toBeGreaterThan(task.TimeoutSeconds!);
  });
});

describe('least privilege', () => {
  const xray = ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'];
  const logs = ['logs:CreateLogStream', 'logs:PutLogEvents'];

  it.each([
    ['ingest', ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage', 'sqs:SendMessage', 'states:StartSyncExecution']],
    // ssm: the live-policy parameter only (test/infra/live-policy.test.ts).
    ['detect', ['dynamodb:GetItem', 'dynamodb:Query', 'rekognition:DetectFaces', 'rekognition:DetectModerationLabels', 's3:GetObject', 's3:GetObjectVersion', 's3:ListBucket', 'ssm:DescribeParameters', 'ssm:GetParameter', 'ssm:GetParameterHistory', 'ssm:GetParameters']],
    ['review', ['s3:GetObject', 's3:GetObjectVersion']],
    ['record', ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query']],
    [
      'apply',
      [
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        's3:GetObject',
        's3:GetObjectTagging',
        's3:GetObjectVersion',
        's3:GetObjectVersionTagging',
        's3:ListBucket',
        's3:PutObject',
        's3:PutObjectTagging',
        's3:PutObjectVersionTagging',
      ],
    ],
    ['fail', ['dynamodb:PutItem', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']],
  ] as const)('%s may do exactly what its handler calls (plus its own logs and X-Ray)', (step, actions) => {
    expect(actionsOfRole(template, roleId(step))).toEqual([...actions, ...logs, ...xray].sort());
  });

  it('functions write only to their own log group (no AWSLambdaBasicExecutionRole)', () => {
    for (const step of STEPS) {
      const role = template.toJSON().Resources[roleId(step)].Properties;
      expect(role.ManagedPolicyArns, step).toBeUndefined();
      const logStatements = statementsOfRole(template, roleId(step)).filter((s) => asArray(s.Action).some((a) => a.startsWith('logs:')));
      expect(logStatements, step).toEqual([expect.objectContaining({ Resource: { 'Fn::GetAtt': [functionProps(step).LoggingConfig.LogGroup.Ref, 'Arn'] } })]);
    }
  });

  it('S3 object access is scoped to the uploads prefix, and quarantine writes to <uploads bucket>/<prefix>', () => {
    const uploadsObjects = JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [uploadsId, 'Arn'] }, `/${PIPELINE_DEFAULTS.uploadsPrefix}*`]] });
    const quarantineObjects = JSON.stringify({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [quarantineId, 'Arn'] }, '/', { Ref: uploadsId }, `/${PIPELINE_DEFAULTS.uploadsPrefix}*`]],
    });
    for (const { statement } of iamStatements(template)) {
      const objectActions = asArray(statement.Action).filter((a) => a.startsWith('s3:') && a !== 's3:ListBucket' && !a.includes('BucketNotification'));
      if (objectActions.length === 0) continue;
      for (const resource of asArray(statement.Resource)) expect([uploadsObjects, quarantineObjects]).toContain(JSON.stringify(resource));
    }
  });

  it('database access is on the base table only (no index, no Scan/Delete/Update; Query reads one job\'s partition)', () => {
    const publisherRole = idOf(pipeline.events!.publisher.role as never);
    for (const { statement, roles } of iamStatements(template)) {
      const dynamo = asArray(statement.Action).filter((a) => a.startsWith('dynamodb:'));
      if (dynamo.length === 0) continue;
      // The decision events' publisher reads the table's stream and nothing else of it (test/infra/decision-events.test.ts).
      if (JSON.stringify(roles) === JSON.stringify([{ Ref: publisherRole }])) {
        expect(dynamo.every((a) => /^dynamodb:(DescribeStream|GetRecords|GetShardIterator|ListStreams)$/.test(a)), JSON.stringify(dynamo)).toBe(true);
        continue;
      }
      expect(dynamo.every((a) => a === 'dynamodb:GetItem' || a === 'dynamodb:PutItem' || a === 'dynamodb:Query'), JSON.stringify(dynamo)).toBe(true);
      expect(asArray(statement.Resource)).toEqual([{ 'Fn::GetAtt': [tableId, 'Arn'] }]);
    }
  });

  it('no IAM statement allows Action "*" (or a whole service)', () => {
    for (const { policy, statement } of iamStatements(template)) {
      for (const action of asArray(statement.Action)) {
        expect(action, policy).not.toBe('*');
        expect(action, policy).not.toMatch(/^[a-z0-9-]+:\*$/);
      }
    }
  });

  it('Resource "*" only for Rekognition, X-Ray and CloudWatch Logs log delivery', () => {
    // dynamodb:ListStreams: the decision events' stream event source (it has no resource-level permissions).
    const allowedOnStar = /^(rekognition:(DetectModerationLabels|DetectFaces|DetectLabels|DetectText)|xray:(PutTraceSegments|PutTelemetryRecords|GetSamplingRules|GetSamplingTargets)|logs:(CreateLogDelivery|GetLogDelivery|UpdateLogDelivery|DeleteLogDelivery|ListLogDeliveries|PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups)|dynamodb:ListStreams)$/;
    const star = iamStatements(template).filter(({ statement }) => statement.Effect === 'Allow' && asArray(statement.Resource).includes('*'));
    expect(star.length).toBeGreaterThan(0);
    for (const { policy, statement } of star) {
      for (const action of asArray(statement.Action)) expect(action, policy).toMatch(allowedOnStar);
    }
    // Rekognition on "*" only for the detect function.
    const rekognition = star.filter(({ statement }) => asArray(statement.Action).some((a) => a.startsWith('rekognition:')));
    expect(rekognition.map(({ roles }) => roles)).toEqual([[{ Ref: roleId('detect') }]]);
  });

  it('no Bedrock permission while contextual review is off', () => {
    expect(JSON.stringify(iamStatements(template))).not.toMatch(/bedrock:/);
  });
});

describe('decision table', () => {
  const table = template.toJSON().Resources[tableId];

  it('on demand, point-in-time recovery, deletion protection, KMS encryption, retained', () => {
    expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(table.Properties.DeletionProtectionEnabled).toBe(true);
    expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true });
    expect(table.DeletionPolicy).toBe('Retain');
  });

  it('has the keys and the GSIs of functions/store/table-schema.ts (status write-sharded, uploader, category, image), sorted by time', () => {
    expect(table.Properties.KeySchema).toEqual([
      { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
    ]);
    const expected = Object.values(DECISION_INDEXES).map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' },
        { AttributeName: SORT_BY_TIME, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['status', 'uploader', 'category', 'policyName'] },
    }));
    expect(table.Properties.GlobalSecondaryIndexes).toEqual(expected);
    expect(expected.map((i) => i.KeySchema[0].AttributeName)).toEqual(expect.arrayContaining(['statusShard', 'uploaderKey', 'category']));
  });

  it('no index copies whole records: each projects its keys and the attributes the audit queries filter on (one write unit a copy)', () => {
    for (const gsi of table.Properties.GlobalSecondaryIndexes as Array<{ Projection: { ProjectionType: string; NonKeyAttributes?: string[] } }>) {
      expect(gsi.Projection.ProjectionType).not.toBe('ALL');
      expect(gsi.Projection.NonKeyAttributes).toEqual([...INDEX_PROJECTED_ATTRIBUTES]);
    }
    // Every attribute decision-query.ts may filter on is projected, and nothing large (labels, reason, llm).
    expect([...INDEX_PROJECTED_ATTRIBUTES].sort()).toEqual(['category', 'policyName', 'status', 'uploader']);
  });
});

describe('monitoring', () => {
  const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).map((a) => a.Properties!);
  const alarmOn = (metricName: string) => alarms.filter((a) => a.MetricName === metricName || JSON.stringify(a.Metrics ?? []).includes(`"MetricName":"${metricName}"`));

  it('alarms when the DLQ is not empty (and when decision events could not be published: test/infra/decision-events.test.ts)', () => {
    const eventsQueue = { 'Fn::GetAtt': [idOf(pipeline.events!.failedPublishes), 'QueueName'] };
    expect(alarmOn('ApproximateNumberOfMessagesVisible')).toEqual([
      expect.objectContaining({ Namespace: 'AWS/SQS', Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId, 'QueueName'] } }], Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' }),
      expect.objectContaining({ Namespace: 'AWS/SQS', Dimensions: [{ Name: 'QueueName', Value: eventsQueue }], Threshold: 1 }),
    ]);
  });

  it('alarms on the age of the oldest intake message', () => {
    expect(alarmOn('ApproximateAgeOfOldestMessage')).toEqual([
      expect.objectContaining({ Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [intakeId, 'QueueName'] } }], Threshold: PIPELINE_DEFAULTS.maxIntakeMessageAge.toSeconds() }),
    ]);
  });

  it('alarms on execution failures and timeouts of the workflow', () => {
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut']) {
      expect(alarmOn(metric), metric).toEqual([
        expect.objectContaining({ Namespace: 'AWS/States', Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: workflowId } }], Threshold: 1 }),
      ]);
    }
  });

  it('alarms on throttles: every function, the workflow, and Rekognition', () => {
    const throttles = alarmOn('Throttles');
    expect(throttles).toHaveLength(1);
    const metrics = JSON.stringify(throttles[0].Metrics);
    for (const step of STEPS) expect(metrics).toContain(JSON.stringify({ Name: 'FunctionName', Value: { Ref: fnId(step) } }));
    expect(metrics).toContain('ExecutionThrottled');
    expect(alarmOn('ThrottledCount')).toEqual([
      expect.objectContaining({ Namespace: 'AWS/Rekognition', Dimensions: [{ Name: 'Operation', Value: 'DetectModerationLabels' }] }),
    ]);
  });

  it('alarms never fire on missing data and, without a topic, notify nobody', () => {
    expect(alarms).toHaveLength(9);
    for (const alarm of alarms) {
      expect(alarm.TreatMissingData).toBe('notBreaching');
      expect(alarm.AlarmActions).toBeUndefined();
    }
  });

  it('has a dashboard', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('alarms and dashboard belong to pipeline.monitoring, and stay reachable as pipeline.alarms and pipeline.dashboard', () => {
    expect(pipeline.monitoring).toBeInstanceOf(PipelineMonitoring);
    expect(pipeline.alarms).toBe(pipeline.monitoring.alarms);
    expect(pipeline.dashboard).toBe(pipeline.monitoring.dashboard);
    // The decision events' own alarms belong to pipeline.events (its failure queues).
    const alarmIds = [...Object.values(pipeline.alarms), ...Object.values(pipeline.events!.alarms).filter(Boolean)].map((alarm) => idOf(alarm));
    expect(alarmIds.sort()).toEqual(Object.keys(resourcesOf(template, 'AWS::CloudWatch::Alarm')).sort());
    for (const alarm of Object.values(pipeline.alarms)) expect(alarm.node.scope).toBe(pipeline.monitoring);
  });
});

describe('stack outputs', () => {
  const outputs = template.toJSON().Outputs as Record<string, { Value: unknown; Export?: unknown }>;

  it('are exactly the names the CLI reads, without exports', () => {
    expect(Object.keys(outputs).sort()).toEqual([...STACK_OUTPUT_KEYS].sort());
    for (const [key, output] of Object.entries(outputs)) expect(output.Export, key).toBeUndefined();
  });

  it('point at the right resources', () => {
    expect(outputs.UploadsBucketName.Value).toEqual({ Ref: uploadsId });
    expect(outputs.UploadsPrefix.Value).toBe('uploads/');
    expect(outputs.QuarantineBucketName.Value).toEqual({ Ref: quarantineId });
    expect(outputs.IntakeQueueUrl.Value).toEqual({ Ref: intakeId });
    expect(outputs.DeadLetterQueueUrl.Value).toEqual({ Ref: dlqId });
    expect(outputs.DeadLetterQueueArn.Value).toEqual({ 'Fn::GetAtt': [dlqId, 'Arn'] });
    expect(outputs.DecisionTableName.Value).toEqual({ Ref: tableId });
    expect(outputs.StateMachineArn.Value).toEqual({ Ref: workflowId });
    expect(outputs.WorkflowType.Value).toBe('EXPRESS');
    expect(outputs.Region.Value).toEqual({ Ref: 'AWS::Region' });
  });
});
