/**
 * PipelineMonitoring: what operators watch — the alarms (each says what happened and what to do) and
 * one dashboard of the intake, the dead-letter queue, the verdicts, the workflow, the functions,
 * Rekognition and the decision table. ModerationPipeline creates one as `pipeline.monitoring`.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { Step } from '../functions/lib/pipeline-settings.ts';
import type { WorkflowType } from '../functions/lib/config.ts';

export interface PipelineAlarms {
  readonly deadLetterQueueNotEmpty: cloudwatch.Alarm;
  readonly intakeMessageAge: cloudwatch.Alarm;
  readonly executionsFailed: cloudwatch.Alarm;
  readonly executionsTimedOut: cloudwatch.Alarm;
  readonly throttles: cloudwatch.Alarm;
  readonly rekognitionThrottles: cloudwatch.Alarm;
  /** The policy's custom moderation adapter has expired: Rekognition answers with the base model (functions/lib/adapter.ts). */
  readonly adapterExpired: cloudwatch.Alarm;
  readonly policyFallbacks: cloudwatch.Alarm;
}

export interface PipelineMonitoringProps {
  readonly intakeQueue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly workflow: sfn.IStateMachine;
  readonly workflowType: WorkflowType;
  /** Every function of the pipeline, by step. */
  readonly functions: Readonly<Record<Step, lambda.IFunction>>;
  readonly decisionHistory: dynamodb.ITable;
  /** Alarm when the oldest intake message is older than this. */
  readonly maxIntakeMessageAge: Duration;
  /**
   * Alarms notify this topic (ALARM and OK).
   *
   * @default - no alarm actions
   */
  readonly alarmTopic?: sns.ITopic;
}

export class PipelineMonitoring extends Construct {
  readonly alarms: PipelineAlarms;
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: PipelineMonitoringProps) {
    super(scope, id);
    this.alarms = this.createAlarms(props);
    this.dashboard = this.createDashboard(props);
  }

  private createAlarms(props: PipelineMonitoringProps): PipelineAlarms {
    const { intakeQueue, deadLetterQueue, workflow, functions, maxIntakeMessageAge: maxAge, alarmTopic: topic } = props;
    const fiveMinutes = Duration.minutes(5);
    const alarm = (id: string, alarmProps: cloudwatch.AlarmProps): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, id, { treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING, ...alarmProps });
      if (topic) {
        created.addAlarmAction(new cloudwatchActions.SnsAction(topic));
        created.addOkAction(new cloudwatchActions.SnsAction(topic));
      }
      return created;
    };
    const throttleMetrics: Record<string, cloudwatch.IMetric> = { workflow: workflow.metricThrottled({ period: fiveMinutes, statistic: 'Sum' }) };
    for (const [step, fn] of Object.entries(functions)) throttleMetrics[step] = fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum' });

    return {
      deadLetterQueueNotEmpty: alarm('DeadLetterQueueNotEmptyAlarm', {
        alarmDescription:
          'Jobs are in the dead-letter queue: FAILED decisions or messages that could not be ingested. Inspect with `moderation dlq list`, fix the cause, then `moderation dlq replay`.',
        metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      intakeMessageAge: alarm('IntakeMessageAgeAlarm', {
        alarmDescription: `The oldest upload waiting in the intake queue is older than ${maxAge.toHumanString()}: ingest is failing, throttled, or too slow for the upload rate.`,
        metric: intakeQueue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
        threshold: maxAge.toSeconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
      }),
      executionsFailed: alarm('ExecutionsFailedAlarm', {
        alarmDescription: 'Moderation executions failed: each one recorded FAILED and sent its job to the dead-letter queue.',
        metric: workflow.metricFailed({ period: fiveMinutes, statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      executionsTimedOut: alarm('ExecutionsTimedOutAlarm', {
        alarmDescription: 'Moderation executions timed out (the definition TimeoutSeconds): the jobs return to the intake queue and are retried.',
        metric: workflow.metricTimedOut({ period: fiveMinutes, statistic: 'Sum' }),
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
      adapterExpired: alarm('AdapterExpiredAlarm', {
        alarmDescription:
          "The policy names a Rekognition custom moderation adapter that has expired: DetectModerationLabels answers with the base model (no ProjectVersion in the response), so decisions no longer use the adapter's training. Each such decision says adapter.expired in its record. Train a new adapter version and put its ARN in the policy's projectVersion (docs/deploying.md, Custom moderation adapters).",
        metric: new cloudwatch.Metric({ namespace: 'UploadModeration', metricName: 'AdapterExpired', dimensionsMap: { service: 'moderation' }, statistic: 'Sum', period: fiveMinutes }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      policyFallbacks: alarm('PolicyFallbacksAlarm', {
        alarmDescription:
          'The detect step could not read or parse the live policy parameter and judges with the last good copy it has: a policy pushed since may not be in force. Check the parameter (`moderation policy show --stack <name>`), its permissions and the warnings of the detect function (docs/operating.md, Live policy).',
        metric: new cloudwatch.Metric({ namespace: 'UploadModeration', metricName: 'PolicyFallbacks', dimensionsMap: { service: 'moderation' }, statistic: 'Sum', period: fiveMinutes }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
    };
  }

  private createDashboard(props: PipelineMonitoringProps): cloudwatch.Dashboard {
    const { intakeQueue, deadLetterQueue, workflow, functions, decisionHistory } = props;
    const period = Duration.minutes(1);
    const sum = { period, statistic: 'Sum' };
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    const fns = Object.entries(functions);
    const perFunction = (metric: (fn: lambda.IFunction) => cloudwatch.Metric) => fns.map(([step, fn]) => metric(fn).with({ label: step }));
    const verdict = (name: string) =>
      new cloudwatch.Metric({ namespace: 'UploadModeration', metricName: `Verdict${name}`, dimensionsMap: { service: 'moderation' }, label: name, ...sum });

    dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(this.alarms), width: 24, height: 3 }));
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Intake queue',
        left: [
          intakeQueue.metricApproximateNumberOfMessagesVisible({ period, label: 'waiting' }),
          intakeQueue.metricApproximateNumberOfMessagesNotVisible({ period, label: 'in flight' }),
        ],
        right: [intakeQueue.metricApproximateAgeOfOldestMessage({ period, label: 'oldest (s)' })],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queue',
        left: [deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, label: 'messages' })],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Verdicts (detect step)',
        left: ['APPROVE', 'REJECT', 'BORDERLINE', 'UNUSABLE'].map(verdict),
        stacked: true,
        // Decisions repeated without Rekognition (identical bytes, near-duplicates of rejected images).
        right: [new cloudwatch.Metric({ namespace: 'UploadModeration', metricName: 'ReusedDecisions', dimensionsMap: { service: 'moderation' }, label: 'reused (no Rekognition)', ...sum })],
        width: 8,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: `Executions (${props.workflowType})`,
        left: [
          workflow.metricStarted({ ...sum, label: 'started' }),
          workflow.metricSucceeded({ ...sum, label: 'succeeded' }),
          workflow.metricFailed({ ...sum, label: 'failed' }),
          workflow.metricTimedOut({ ...sum, label: 'timed out' }),
          workflow.metricThrottled({ ...sum, label: 'throttled' }),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Execution time',
        left: [workflow.metricTime({ period, statistic: 'p50', label: 'p50' }), workflow.metricTime({ period, statistic: 'p99', label: 'p99' })],
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
          decisionHistory.metricConsumedWriteCapacityUnits({ ...sum, label: 'write units' }),
          decisionHistory.metricConsumedReadCapacityUnits({ ...sum, label: 'read units' }),
        ],
        right: [decisionHistory.metricThrottledRequestsForOperations({ operations: [dynamodb.Operation.PUT_ITEM, dynamodb.Operation.GET_ITEM], ...sum, label: 'throttled' })],
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
