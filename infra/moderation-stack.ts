/**
 * The deployable stack: one ModerationPipeline and the outputs the `moderation` CLI reads
 * (`--stack <name>` → DescribeStacks → these output keys; see cli/target.ts). Keep the keys stable.
 */
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { ModerationPipeline, type ModerationPipelineProps } from './moderation-pipeline.ts';
import { formatAnalysisList } from '../functions/lib/analysis-policy.ts';

/** The output keys, exactly as the CLI reads them. */
export const STACK_OUTPUT_KEYS = [
  'UploadsBucketName',
  'UploadsPrefix',
  'QuarantineBucketName',
  'IntakeQueueUrl',
  'DeadLetterQueueUrl',
  'DeadLetterQueueArn',
  'DecisionTableName',
  'StateMachineArn',
  'WorkflowType',
  'StatusShards',
  'Region',
  'AnalysisEnabled',
  'PolicyParameterName',
  'PolicyParameterTier',
] as const;

export interface ModerationStackProps extends StackProps {
  /** Settings of the pipeline (everything but the constructs below, which the stack imports by name). */
  readonly pipeline?: Omit<ModerationPipelineProps, 'alarmTopic' | 'uploadsBucket'>;
  /** Send alarms to this existing SNS topic. */
  readonly alarmTopicArn?: string;
  /** Moderate this existing bucket instead of creating one. */
  readonly existingUploadsBucketName?: string;
  /** Put the decision events on this existing bus (name or ARN) instead of the default bus. */
  readonly eventBusName?: string;
}

export class ModerationStack extends Stack {
  readonly pipeline: ModerationPipeline;

  constructor(scope: Construct, id: string, props: ModerationStackProps = {}) {
    super(scope, id, {
      description: 'Upload moderation pipeline: S3 -> SQS -> Step Functions (Rekognition, Bedrock) -> DynamoDB decision history',
      ...props,
    });
    const decisionEvents = props.pipeline?.events;
    this.pipeline = new ModerationPipeline(this, 'Pipeline', {
      ...props.pipeline,
      events:
        decisionEvents !== false && props.eventBusName
          ? { ...decisionEvents, bus: eventBusOf(this, props.eventBusName) }
          : decisionEvents,
      alarmTopic: props.alarmTopicArn ? sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn) : undefined,
      uploadsBucket: props.existingUploadsBucketName ? s3.Bucket.fromBucketName(this, 'ExistingUploadsBucket', props.existingUploadsBucketName) : undefined,
    });

    const p = this.pipeline;
    const outputs: Record<(typeof STACK_OUTPUT_KEYS)[number], { value: string; description: string }> = {
      UploadsBucketName: { value: p.uploadsBucket.bucketName, description: 'Bucket whose uploads are moderated' },
      UploadsPrefix: { value: p.uploadsPrefix, description: 'Only keys under this prefix are moderated' },
      QuarantineBucketName: { value: p.quarantineBucket.bucketName, description: 'Rejected objects are moved here' },
      IntakeQueueUrl: { value: p.intakeQueue.queueUrl, description: 'S3 notifications (and replays) enter here' },
      DeadLetterQueueUrl: { value: p.deadLetterQueue.queueUrl, description: 'Failed jobs and unprocessable messages' },
      DeadLetterQueueArn: { value: p.deadLetterQueue.queueArn, description: 'ARN of the dead-letter queue' },
      DecisionTableName: { value: p.decisionHistory.tableName, description: 'The decision history (DynamoDB)' },
      StateMachineArn: { value: p.workflow.stateMachineArn, description: 'The moderation workflow' },
      WorkflowType: { value: p.workflowType, description: 'EXPRESS or STANDARD' },
      StatusShards: { value: String(p.statusShards), description: 'Write shards of the byStatus index (audit readers fan out over them)' },
      Region: { value: this.region, description: 'Region of the stack' },
      PolicyParameterName: { value: p.policyParameter.parameterName, description: 'The live policy: SSM parameter read by the detect step (moderation policy push|show)' },
      PolicyParameterTier: { value: props.pipeline?.policyParameterTier === 'advanced' ? 'Advanced' : 'Standard', description: 'SSM tier of the live-policy parameter: Standard (4 KB) or Advanced (8 KB)' },
      AnalysisEnabled: { value: formatAnalysisList(p.analysisEnabled), description: 'Analyses the detect function may call (labels, faces, text, or none): moderation policy validate --stack checks a policy against it' },
    };
    for (const key of STACK_OUTPUT_KEYS) new CfnOutput(this, key, outputs[key]);
    // Only with appeals from the platform: where the platform sends them (docs/events.md).
    if (p.appeals) {
      new CfnOutput(this, 'AppealQueueUrl', { value: p.appeals.queue.queueUrl, description: 'The platform sends Moderation Appeal Request messages here' });
    }
    // Only with a webhook (the CLI reads none of these): where the receiver's API key is.
    if (p.events?.webhook) {
      new CfnOutput(this, 'WebhookSecretArn', { value: p.events.webhook.secret.secretArn, description: 'The webhook API key (X-Moderation-Api-Key) the receiver checks' });
    }
  }
}

function eventBusOf(scope: Construct, nameOrArn: string): events.IEventBus {
  return nameOrArn.startsWith('arn:') ? events.EventBus.fromEventBusArn(scope, 'EventBus', nameOrArn) : events.EventBus.fromEventBusName(scope, 'EventBus', nameOrArn);
}
