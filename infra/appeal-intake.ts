/**
 * AppealIntake: the upload platform files uploaders' appeals of rejections with the pipeline
 * (docs/events.md, "Appeals from the platform"; issue 14, section 3).
 *
 *   platform ─ SendMessage ──────────────────────────────────────────┐
 *   platform ─ PutEvents (detail-type Moderation Appeal Request) ─▶ bus ─▶ rule ─(the detail)─┤
 *                                                                                            ▼
 *                    appeal queue ─▶ appeal intake Lambda (functions/appeal-intake.ts) ─▶ decision table
 *                          │ (redrive after MAX_RECEIVE_COUNT)      │ (a malformed request, at once)
 *                          └──────────────▶ appeal dead-letter queue ◀┘  ─▶ alarm
 *
 * Both ways end in one queue and one small handler, which files the appeal exactly as
 * `moderation appeal` and the console do (functions/store/appeals.ts). The rule hands the queue the
 * event's `detail`, so a message and an event carry the same JSON (schemas/moderation-appeal.v1.json).
 * `grantAppeal(principal)` lets a platform do either: sqs:SendMessage on the queue, and
 * events:PutEvents on the bus only for this detail-type and source.
 */
import { Duration, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../functions/lib/config.ts';
import { APPEAL_DEAD_LETTER_QUEUE_URL_ENV, APPEAL_REQUEST_DETAIL_TYPE, DEFAULT_APPEAL_SOURCE } from '../functions/lib/appeal-request.ts';
import { MAX_RECEIVE_COUNT } from '../functions/lib/pipeline-settings.ts';
import { ownFunction } from './function-bundling.ts';
import { acknowledge } from './nag.ts';

/** What the pipeline's `appeals` prop takes (`true`: these defaults). */
export interface AppealIntakeOptions {
  /**
   * Also accept appeals as EventBridge events (detail-type `Moderation Appeal Request`) on the bus
   * the decision events go to. Needs the decision events (`events` not false).
   *
   * @default true when the pipeline has decision events
   */
  readonly events?: boolean;

  /**
   * The `source` an appeal request event must have (the rule matches it; grantAppeal allows only it).
   * Not `aws.*` (reserved by AWS).
   *
   * @default 'upload-platform.appeals'
   */
  readonly source?: string;
}

export interface AppealIntakeProps extends AppealIntakeOptions {
  readonly decisionHistory: dynamodb.ITable;
  readonly statusShards: number;
  /** The decision events' bus (undefined: no decision events, so no appeal events either). */
  readonly bus?: events.IEventBus;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default 'INFO' */
  readonly logLevel?: string;
  /** The dead-letter alarm notifies this topic (ALARM and OK). */
  readonly alarmTopic?: sns.ITopic;
}

export class AppealIntake extends Construct {
  /** Where appeal requests go: the platform's SendMessage, and the rule's events. */
  readonly queue: sqs.Queue;
  /** Malformed requests (at once, with the reason) and those that kept failing (after MAX_RECEIVE_COUNT receives). */
  readonly deadLetterQueue: sqs.Queue;
  readonly handler: NodejsFunction;
  /** The rule that puts appeal request events on the queue (absent without events). */
  readonly rule?: events.Rule;
  readonly bus?: events.IEventBus;
  /** The `source` appeal request events must have. */
  readonly source: string;
  /** Something is in the appeal dead-letter queue: an appeal the platform filed was not filed. */
  readonly deadLetterAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: AppealIntakeProps) {
    super(scope, id);
    this.source = props.source ?? DEFAULT_APPEAL_SOURCE;
    if (!Token.isUnresolved(this.source) && (!this.source.trim() || /^aws\./i.test(this.source) || this.source.length > 256)) {
      throw new Error(`AppealIntake ${this.node.path}: appeals.source must be 1-256 characters and not start with "aws." (reserved by AWS), got "${this.source}"`);
    }
    const withEvents = props.events ?? Boolean(props.bus);
    if (withEvents && !props.bus) throw new Error(`AppealIntake ${this.node.path}: appeals.events needs the decision events' bus (the props say events: false)`);

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    acknowledge(
      this.deadLetterQueue,
      'AwsSolutions-SQS3',
      "This queue is itself the dead-letter queue of the appeal queue (its redrive target) and where the appeal intake parks malformed requests.",
    );
    const timeout = Duration.seconds(30);
    this.queue = new sqs.Queue(this, 'Queue', {
      // SSE-SQS: EventBridge can deliver to it without a key policy.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(6 * timeout.toSeconds()),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });

    // An own role: its log group, the queue (as event source), the dead-letter queue, the job's partition.
    const { fn, role } = ownFunction(this, {
      id: '',
      entry: 'appeal-intake.ts',
      description: 'Appeal intake: Moderation Appeal Requests from the appeal queue, filed as appeals (back in the review queue)',
      roleDescription: "Files the platform's appeals of rejections",
      memorySize: 256,
      timeout,
      logRetention: props.logRetention,
      logLevel: props.logLevel,
      serviceName: 'moderation-appeals',
      environment: {
        [ENV.decisionTable]: props.decisionHistory.tableName,
        [ENV.statusShards]: String(props.statusShards),
        [APPEAL_DEAD_LETTER_QUEUE_URL_ENV]: this.deadLetterQueue.queueUrl,
      },
    });
    this.handler = fn;
    // The job's partition only (Query for its history, PutItem for the appeal, conditional): no index, no delete, no update.
    iam.Grant.addToPrincipal({ grantee: role, actions: ['dynamodb:Query', 'dynamodb:PutItem'], resourceArns: [props.decisionHistory.tableArn] });
    this.deadLetterQueue.grantSendMessages(role);
    this.handler.addEventSource(new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true }));

    if (withEvents && props.bus) {
      this.bus = props.bus;
      this.rule = new events.Rule(this, 'Rule', {
        eventBus: props.bus,
        description: `${APPEAL_REQUEST_DETAIL_TYPE} events (source ${this.source}) to the appeal queue`,
        eventPattern: { source: [this.source], detailType: [APPEAL_REQUEST_DETAIL_TYPE] },
        // The detail alone: the queue gets the same JSON a platform would send it directly.
        targets: [new eventTargets.SqsQueue(this.queue, { message: events.RuleTargetInput.fromEventPath('$.detail') })],
      });
    }

    this.deadLetterAlarm = new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
      alarmDescription:
        "Appeal requests are in the appeal dead-letter queue: malformed ones (each message carries the reason) or ones that kept failing. The platform's appeal was not filed: fix the request or the cause, then send it again (docs/events.md, Appeals from the platform).",
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) {
      this.deadLetterAlarm.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic));
      this.deadLetterAlarm.addOkAction(new cloudwatchActions.SnsAction(props.alarmTopic));
    }
  }

  /**
   * Lets a platform file appeals: sqs:SendMessage (and GetQueueAttributes, GetQueueUrl) on the appeal
   * queue; with events, events:PutEvents on the bus only for detail-type `Moderation Appeal Request`
   * and this source (the events:detail-type and events:source condition keys).
   */
  grantAppeal(grantee: iam.IGrantable): iam.Grant {
    const send = this.queue.grantSendMessages(grantee);
    if (!this.bus) return send;
    const put = iam.Grant.addToPrincipal({
      grantee,
      actions: ['events:PutEvents'],
      resourceArns: [this.bus.eventBusArn],
      conditions: { StringEquals: { 'events:detail-type': APPEAL_REQUEST_DETAIL_TYPE, 'events:source': this.source } },
    });
    return send.combine(put);
  }
}
