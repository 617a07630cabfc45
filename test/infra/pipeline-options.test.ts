/**
 * Every option away from its default, in one stack synthesized once: STANDARD workflow, contextual
 * review on Bedrock, an adopted uploads bucket, an alarm topic, a custom policy, prefix, pattern,
 * concurrency and shards.
 */
import { describe, expect, it } from 'vitest';
import type { CfnElement } from 'aws-cdk-lib';
import { ENV } from '../../functions/lib/config.ts';
import { resolvePolicy } from '../../functions/lib/policy.ts';
import { FUNCTION_PLACEHOLDERS } from '../../infra/moderation-pipeline.ts';
import { actionsOfRole, asArray, iamStatements, resourcesOf, statementsOfRole, synthStack } from './helpers.ts';

const POLICY = `name: dating-app
default: allow
rules:
  Explicit: { reject: 80, review: 50 }
  Swimwear or Underwear: allow
`;
const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:moderation-alarms';
const MODEL_ID = 'amazon.nova-lite-v1:0';

const { stack, template } = synthStack({
  pipeline: {
    workflowType: 'STANDARD',
    contextualReview: true,
    reviewModelId: MODEL_ID,
    policy: POLICY,
    uploadsPrefix: 'incoming/',
    uploaderPattern: 'incoming/{uploader}/',
    maxConcurrency: 20,
    batchSize: 5,
    statusShards: 16,
    logLevel: 'DEBUG',
    workflowLogLevel: 'ALL',
    reuseDecisions: false,
    qualitySampleRate: 0.05,
  },
  alarmTopicArn: TOPIC_ARN,
  existingUploadsBucketName: 'existing-uploads',
});
const pipeline = stack.pipeline;
const resources = template.toJSON().Resources;
const idOf = (construct: { node: { defaultChild?: unknown } }): string => stack.getLogicalId(construct.node.defaultChild as CfnElement);
const fnProps = (step: keyof typeof pipeline.functions) => resources[idOf(pipeline.functions[step])].Properties;
const roleId = (step: keyof typeof pipeline.functions) => idOf(pipeline.functions[step].role as never);
const workflow = resources[idOf(pipeline.workflow)].Properties;

describe('STANDARD workflow', () => {
  it('is a Standard state machine that still logs ALL (without execution data: Standard keeps its own history)', () => {
    expect(workflow.StateMachineType).toBe('STANDARD');
    expect(workflow.LoggingConfiguration.Level).toBe('ALL');
    expect(workflow.LoggingConfiguration.IncludeExecutionData).toBe(false);
    expect(workflow.TracingConfiguration).toEqual({ Enabled: true });
  });

  it('ingest uses StartExecution (not the sync API), with a short timeout and the queue visibility following it', () => {
    expect(fnProps('ingest').Environment.Variables[ENV.workflowType]).toBe('STANDARD');
    const states = actionsOfRole(template, roleId('ingest')).filter((a) => a.startsWith('states:'));
    // DescribeExecution: is the execution of a job id that already exists running or done (functions/ingest.ts)?
    expect(states).toEqual(['states:DescribeExecution', 'states:StartExecution']);
    const timeout = fnProps('ingest').Timeout as number;
    expect(timeout).toBeLessThanOrEqual(60);
    expect(resources[idOf(pipeline.intakeQueue)].Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * timeout);
  });

  it('takes batch size, concurrency and shards from the props', () => {
    const [mapping] = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'));
    expect(mapping.Properties).toEqual(expect.objectContaining({ BatchSize: 5, ScalingConfig: { MaximumConcurrency: 20 } }));
    expect(fnProps('record').Environment.Variables[ENV.statusShards]).toBe('16');
    expect(fnProps('fail').Environment.Variables[ENV.statusShards]).toBe('16');
    expect(fnProps('record').Environment.Variables[ENV.qualitySampleRate]).toBe('0.05');
    expect(template.toJSON().Outputs.StatusShards.Value).toBe('16');
    for (const step of Object.keys(pipeline.functions) as (keyof typeof pipeline.functions)[]) {
      expect(fnProps(step).Environment.Variables.POWERTOOLS_LOG_LEVEL, step).toBe('DEBUG');
      // DEBUG keeps Lambda's START/END/REPORT lines (their Max Memory Used is what sizes a function).
      expect(fnProps(step).LoggingConfig, step).toMatchObject({ LogFormat: 'JSON', ApplicationLogLevel: 'DEBUG', SystemLogLevel: 'INFO' });
    }
  });

  it('reuseDecisions: false sends every upload to Rekognition (REUSE_DECISIONS=off)', () => {
    for (const step of Object.keys(pipeline.functions) as (keyof typeof pipeline.functions)[]) {
      expect(fnProps(step).Environment.Variables[ENV.reuseDecisions], step).toBe('off');
    }
  });
});

describe('contextual review', () => {
  it('is enabled in the definition substitutions', () => {
    expect(workflow.DefinitionSubstitutions.ContextualReview).toBe('enabled');
    expect(workflow.DefinitionSubstitutions[FUNCTION_PLACEHOLDERS.review]).toEqual({ 'Fn::GetAtt': [idOf(pipeline.functions.review), 'Arn'] });
  });

  it("the review function may invoke the configured model's foundation-model ARN, and nothing else on Bedrock", () => {
    expect(fnProps('review').Environment.Variables[ENV.reviewModelId]).toBe(MODEL_ID);
    const bedrock = iamStatements(template).filter(({ statement }) => asArray(statement.Action).some((a) => a.startsWith('bedrock:')));
    expect(bedrock).toHaveLength(1);
    expect(bedrock[0].roles).toEqual([{ Ref: roleId('review') }]);
    expect(bedrock[0].statement).toEqual({
      Effect: 'Allow',
      Action: 'bedrock:InvokeModel',
      Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':bedrock:', { Ref: 'AWS::Region' }, `::foundation-model/${MODEL_ID}`]] },
    });
  });
});

describe('adopted uploads bucket', () => {
  it('creates no uploads bucket, only quarantine and access logs', () => {
    expect(Object.keys(resourcesOf(template, 'AWS::S3::Bucket')).sort()).toEqual([idOf(pipeline.accessLogsBucket), idOf(pipeline.quarantineBucket)].sort());
    expect(template.toJSON().Outputs.UploadsBucketName.Value).toBe('existing-uploads');
  });

  it('adds the notification (Put, Post, Copy, CompleteMultipartUpload under the prefix) to the existing bucket, keeping its others', () => {
    const [notification] = Object.values(resourcesOf(template, 'Custom::S3BucketNotifications'));
    expect(notification.Properties!.BucketName).toBe('existing-uploads');
    expect(notification.Properties!.Managed).toBe(false);
    const configs = notification.Properties!.NotificationConfiguration.QueueConfigurations as { Events: string[]; Filter: unknown }[];
    expect(configs.flatMap((c) => c.Events).sort()).toEqual(['s3:ObjectCreated:CompleteMultipartUpload', 's3:ObjectCreated:Copy', 's3:ObjectCreated:Post', 's3:ObjectCreated:Put']);
    for (const c of configs) expect(c.Filter).toEqual({ Key: { FilterRules: [{ Name: 'prefix', Value: 'incoming/' }] } });
  });

  it('grants on the existing bucket under the configured prefix', () => {
    const detect = statementsOfRole(template, roleId('detect')).find((s) => asArray(s.Action).includes('s3:GetObject'))!;
    expect(JSON.stringify(detect.Resource)).toContain(':s3:::existing-uploads/incoming/*');
    expect(fnProps('ingest').Environment.Variables[ENV.uploadsBucket]).toBe('existing-uploads');
    expect(fnProps('ingest').Environment.Variables[ENV.uploaderPattern]).toBe('incoming/{uploader}/');
  });
});

describe('alarm topic', () => {
  it('every alarm notifies the topic on ALARM and on OK', () => {
    const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm'));
    expect(alarms).toHaveLength(9);
    for (const alarm of alarms) {
      expect(alarm.Properties!.AlarmActions).toEqual([TOPIC_ARN]);
      expect(alarm.Properties!.OKActions).toEqual([TOPIC_ARN]);
    }
  });
});

describe('policy', () => {
  it('is validated at synth and reaches the functions as compact JSON with the same version', () => {
    const setting = fnProps('detect').Environment.Variables[ENV.policy] as string;
    expect(setting.startsWith('{')).toBe(true);
    expect(resolvePolicy(setting).version).toBe(resolvePolicy(POLICY).version);
    expect(resolvePolicy(setting).name).toBe('dating-app');
    expect(fnProps('record').Environment.Variables[ENV.policy]).toBe(setting);
    expect(fnProps('review').Environment.Variables[ENV.policy]).toBe(setting);
  });
});

describe('least privilege with every option on', () => {
  it('still no action wildcard, and Resource "*" only for Rekognition, X-Ray and log delivery', () => {
    const allowedOnStar = /^(rekognition:(DetectModerationLabels|DetectFaces|DetectLabels|DetectText)|xray:[A-Za-z]+|logs:[A-Za-z]*LogDeliver(y|ies)|logs:(PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups)|dynamodb:ListStreams)$/;
    for (const { policy, statement } of iamStatements(template)) {
      for (const action of asArray(statement.Action)) expect(action, policy).not.toMatch(/(^\*$|:\*$)/);
      if (asArray(statement.Resource).includes('*')) for (const action of asArray(statement.Action)) expect(action, policy).toMatch(allowedOnStar);
    }
  });
});
