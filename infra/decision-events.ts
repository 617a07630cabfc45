/**
 * DecisionEvents: every record of the decision history is told once, as a `Moderation Decision`
 * event on Amazon EventBridge (docs/architecture.md, invariant 8; docs/events.md).
 *
 *   decision table ─(DynamoDB stream, NEW_IMAGE; event source filter: INSERT)─▶ publisher Lambda
 *     (functions/publish-decisions.ts: decisionEvent() + PutEvents, in order; partial batch
 *     failures, bisect, retries) ─▶ event bus (default, or the one given) ─▶ rules:
 *       onDecision(...)            — the app's own targets, by status / type
 *       flagged decisions          — REJECTED and REVIEW to an SNS topic (optional)
 *       webhook                    — an API destination: POST of the event to an HTTPS URL (optional)
 *   what cannot be published ─▶ `failedPublishes` (SQS: the stream batch's coordinates)
 *   what cannot be delivered to the webhook ─▶ `failedDeliveries` (SQS: the events themselves)
 *
 * Why a function on the stream rather than an EventBridge Pipe with an input template: the event is
 * built by the same pure function (functions/lib/decision-event.ts) that the local runtime uses, so
 * AWS and local events cannot drift; a Pipe's template cannot compute the id (a hash of the key),
 * pick the top labels or tell a human override from an automated decision without a second copy of
 * the mapping (an enrichment Lambda, which is the same function with more moving parts).
 *
 * The table is the outbox: the record is written first, and publishing runs from the stream,
 * asynchronously; nothing about an event can fail or delay a decision.
 */
import { Annotations, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../functions/lib/config.ts';
import { DECISION_EVENT_DETAIL_TYPE, DEFAULT_EVENT_SOURCE, FLAGGED_STATUSES, type DecisionEventType } from '../functions/lib/decision-event.ts';
import type { DecisionStatus } from '../functions/lib/types.ts';
import { JOB_PARTITION_PREFIX, TABLE_KEYS } from '../functions/store/table-schema.ts';
import { API_KEY_HEADER, EVENT_ID_HEADER } from '../functions/lib/webhook-signature.ts';
import { ownFunction } from './function-bundling.ts';
import { acknowledge, acknowledgeWildcardResource } from './nag.ts';

/** What the pipeline's `events` prop takes. */
export interface DecisionEventsOptions {
  /**
   * The bus the events are put on.
   *
   * @default - the account's default event bus
   */
  readonly bus?: events.IEventBus;

  /**
   * The events' `source` (rules match on it). Not `aws.*` (reserved by AWS).
   *
   * @default 'upload-moderation'
   */
  readonly source?: string;

  /**
   * REJECTED and REVIEW decisions also go to an SNS topic: this one, or with `true` a new one
   * (encrypted with its own KMS key, TLS only) — `flaggedTopic` on the construct.
   *
   * @default - no topic
   */
  readonly flaggedTopic?: sns.ITopic | boolean;

  /**
   * POST every event to this HTTPS URL (an EventBridge API destination; the body is the event's
   * JSON, `X-Moderation-Event-Id` its id). The secret goes in the `X-Moderation-Api-Key` header:
   * an API destination cannot sign a body (docs/events.md, "Receiving webhooks").
   *
   * @default - no webhook
   */
  readonly webhookUrl?: string;

  /**
   * The webhook's secret (the whole SecretString is the API key).
   *
   * @default - a new secret with a generated value (`webhookSecret` on the construct)
   */
  readonly webhookSecret?: secretsmanager.ISecret;

  /**
   * At most this many webhook requests per second (EventBridge queues the rest).
   *
   * @default 50
   */
  readonly webhookRateLimitPerSecond?: number;
}

export interface DecisionEventsProps extends DecisionEventsOptions {
  /** The decision table, with a stream that carries the new image (NEW_IMAGE or NEW_AND_OLD_IMAGES). */
  readonly decisionHistory: dynamodb.ITable;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** POWERTOOLS_LOG_LEVEL of the publisher. @default 'INFO' */
  readonly logLevel?: string;
  /** The alarms on the failure queues notify this topic (ALARM and OK). @default - no alarm actions */
  readonly alarmTopic?: sns.ITopic;
}

/** An alarm per failure queue: an event that could not be published or delivered is a decision the platform was not told. */
export interface DecisionEventsAlarms {
  readonly failedPublishes: cloudwatch.Alarm;
  readonly failedDeliveries?: cloudwatch.Alarm;
}

/** A rule on the decision events: where they go, and which ones. */
export interface OnDecisionOptions {
  /** Where the matching events go (any EventBridge target: a Lambda function, a queue, a state machine, ...). */
  readonly target: events.IRuleTarget;
  /** Only these statuses. @default - every status */
  readonly statuses?: readonly DecisionStatus[];
  /** Only these kinds of record (`automated`, `human`, `failure`). @default - every kind */
  readonly types?: readonly DecisionEventType[];
  /** @default - one that names the statuses and types */
  readonly description?: string;
}

/** The webhook's parts (when `webhookUrl` is given). */
export interface DecisionWebhook {
  readonly connection: events.Connection;
  readonly destination: events.ApiDestination;
  readonly rule: events.Rule;
  /** Its value is the `X-Moderation-Api-Key` the receiver checks. */
  readonly secret: secretsmanager.ISecret;
}

export class DecisionEvents extends Construct {
  /** The bus the events are put on. */
  readonly bus: events.IEventBus;
  /** The events' `source`. */
  readonly source: string;
  /** The function on the table's stream that publishes the events. */
  readonly publisher: NodejsFunction;
  /**
   * Stream batches that could not be published after the retries (Lambda's failure records: shard
   * and sequence numbers; the records themselves stay in the stream for 24 hours, and in the table).
   */
  readonly failedPublishes: sqs.Queue;
  /** Events the webhook did not accept within 24 hours and 185 attempts (the events themselves). */
  readonly failedDeliveries?: sqs.Queue;
  /** REJECTED and REVIEW decisions (with `flaggedTopic`). */
  readonly flaggedTopic?: sns.ITopic;
  /** The webhook (with `webhookUrl`). */
  readonly webhook?: DecisionWebhook;
  /** Alarms when something lands in `failedPublishes` or `failedDeliveries`. */
  readonly alarms: DecisionEventsAlarms;

  constructor(scope: Construct, id: string, props: DecisionEventsProps) {
    super(scope, id);
    this.source = props.source ?? DEFAULT_EVENT_SOURCE;
    validate(this, props, this.source);
    const table = props.decisionHistory;
    if (!table.tableStreamArn) throw new Error(`DecisionEvents ${this.node.path}: the decision table has no stream (set stream: NEW_IMAGE on it)`);
    this.bus = props.bus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    // ---- The publisher on the table's stream ---------------------------------------------------
    this.failedPublishes = undeliveredQueue(this, 'FailedPublishes', 'stream batches the publisher could not put on the bus');
    // An own role: its own log group, PutEvents on this bus, the stream, the failure queue. Nothing else.
    const { fn: publisher, role } = ownFunction(this, {
      id: 'Publisher',
      entry: 'publish-decisions.ts',
      description: 'Decision events: the decision table stream (INSERT) to EventBridge, one Moderation Decision event per record',
      roleDescription: 'Publishes a Moderation Decision event per record of the decision table',
      memorySize: 256,
      timeout: Duration.seconds(60),
      logRetention: props.logRetention,
      logLevel: props.logLevel,
      // Its own service name: its logs and metrics are the events', not a moderation step's.
      serviceName: 'moderation-events',
      environment: { [ENV.eventBusName]: this.bus.eventBusArn, [ENV.eventSource]: this.source },
    });
    this.publisher = publisher;
    this.bus.grantPutEventsTo(this.publisher);
    this.publisher.addEventSource(
      new DynamoEventSource(table, {
        // From the oldest record the stream holds: a deploy or an outage of the function loses nothing.
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        maxBatchingWindow: Duration.seconds(1),
        // Records are appended, never modified; INSERT is the one event a record has. Only decision
        // records (pk JOB#...): the content index's items (table-schema.ts) share the table, not the events.
        filters: [
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.isEqual('INSERT'),
            dynamodb: { Keys: { [TABLE_KEYS.partitionKey]: { S: lambda.FilterRule.beginsWith(JOB_PARTITION_PREFIX) } } },
          }),
        ],
        reportBatchItemFailures: true,
        bisectBatchOnError: true,
        retryAttempts: 20,
        maxRecordAge: Duration.hours(24),
        onFailure: new SqsDlq(this.failedPublishes),
      }),
    );
    acknowledgeWildcardResource(
      role,
      '*',
      "Added by CDK's DynamoDB event source: dynamodb:ListStreams supports no resource-level permissions (AWS service authorization reference). The stream itself is read only through its own ARN (DescribeStream, GetRecords, GetShardIterator); the role reads no table.",
    );
    acknowledge(
      this.failedPublishes,
      'AwsSolutions-SQS3',
      "This queue is itself a dead-letter queue: the on-failure destination of the publisher's stream event source mapping. cdk-nag recognises a dead-letter queue only through another queue's redrive policy or a function's DeadLetterConfig.",
    );

    // ---- Flagged decisions to SNS --------------------------------------------------------------
    if (props.flaggedTopic) {
      this.flaggedTopic = props.flaggedTopic === true ? this.newFlaggedTopic() : props.flaggedTopic;
      this.onDecision('FlaggedRule', {
        target: new eventTargets.SnsTopic(this.flaggedTopic),
        statuses: FLAGGED_STATUSES,
        description: 'Moderation decisions a person should look at (REJECTED, REVIEW) to the flagged-decisions topic',
      });
    }

    // ---- The webhook: an API destination -------------------------------------------------------
    if (props.webhookUrl) {
      const secret =
        props.webhookSecret ??
        new secretsmanager.Secret(this, 'WebhookSecret', {
          description: `The webhook's API key, sent in ${API_KEY_HEADER} with each decision event: give it to the receiver`,
          generateSecretString: { passwordLength: 48, excludePunctuation: true },
        });
      if (!props.webhookSecret) {
        acknowledge(
          secret,
          'AwsSolutions-SMG4',
          "The webhook's shared secret is checked by a receiver outside AWS: rotating it means changing the receiver at the same moment, which no rotation Lambda can do. Rotate it by hand (docs/events.md, 'Rotating the webhook secret').",
        );
      }
      const connection = new events.Connection(this, 'WebhookConnection', {
        description: 'Decision events webhook: the API key header the receiver checks',
        authorization: events.Authorization.apiKey(API_KEY_HEADER, secret.secretValue),
      });
      const destination = new events.ApiDestination(this, 'WebhookDestination', {
        description: 'Decision events webhook: one POST per Moderation Decision event',
        connection,
        endpoint: props.webhookUrl,
        httpMethod: events.HttpMethod.POST,
        rateLimitPerSecond: props.webhookRateLimitPerSecond ?? 50,
      });
      this.failedDeliveries = undeliveredQueue(this, 'FailedDeliveries', 'decision events the webhook did not accept');
      acknowledge(
        this.failedDeliveries,
        'AwsSolutions-SQS3',
        "This queue is itself a dead-letter queue: the webhook rule target's. cdk-nag recognises a dead-letter queue only through another queue's redrive policy or a function's DeadLetterConfig.",
      );
      const rule = this.onDecision('WebhookRule', {
        target: new eventTargets.ApiDestination(destination, {
          // The body is the event itself (the detail), as a local webhook's is; its id in a header for deduplication.
          event: events.RuleTargetInput.fromEventPath('$.detail'),
          headerParameters: { [EVENT_ID_HEADER]: '$.detail.id' },
          // EventBridge retries timeouts, 429 and 5xx with backoff and jitter, for up to 24 hours.
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
          deadLetterQueue: this.failedDeliveries,
        }),
        description: 'Every moderation decision event to the webhook (API destination)',
      });
      this.webhook = { connection, destination, rule, secret };
    }

    // ---- Alarms: what could not be told is an operator's job -----------------------------------
    this.alarms = {
      failedPublishes: failureAlarm(
        this,
        'FailedPublishesAlarm',
        this.failedPublishes,
        'Decision events could not be put on the event bus after the retries: the platform was not told of these decisions. Each message names the stream shard and sequence numbers; the records themselves are in the decision table. Fix the cause (permissions, the bus) and re-publish from the table (docs/events.md, Failures).',
        props.alarmTopic,
      ),
      failedDeliveries: this.failedDeliveries
        ? failureAlarm(
            this,
            'FailedDeliveriesAlarm',
            this.failedDeliveries,
            'The webhook refused or did not answer decision events for 24 hours: they are in the failed-deliveries queue. Each message is the event itself: fix the receiver, then send them again from the queue (docs/events.md, Failures).',
            props.alarmTopic,
          )
        : undefined,
    };
  }

  /**
   * A rule on this bus for decision events, optionally only some statuses or kinds of record, sending
   * them to `target`. E.g. `pipeline.onDecision('Rejected', { target: new targets.SqsQueue(q), statuses: ['REJECTED'] })`.
   */
  onDecision(id: string, options: OnDecisionOptions): events.Rule {
    const what = [options.statuses?.join(', '), options.types?.map((t) => `${t} records`).join(', ')].filter(Boolean).join('; ');
    return new events.Rule(this, id, {
      eventBus: this.bus,
      description: options.description ?? `Moderation Decision events${what ? ` (${what})` : ''}`,
      eventPattern: this.eventPattern({ statuses: options.statuses, types: options.types }),
      targets: [options.target],
    });
  }

  /** The EventBridge pattern of these decision events (for rules made elsewhere, e.g. on another bus). */
  eventPattern(filter: { statuses?: readonly DecisionStatus[]; types?: readonly DecisionEventType[] } = {}): events.EventPattern {
    const detail: Record<string, string[]> = {};
    if (filter.statuses?.length) detail.status = [...filter.statuses];
    if (filter.types?.length) detail.type = [...filter.types];
    return { source: [this.source], detailType: [DECISION_EVENT_DETAIL_TYPE], ...(Object.keys(detail).length ? { detail } : {}) };
  }

  /** A topic for flagged decisions: its own KMS key, which EventBridge may use to publish to it. */
  private newFlaggedTopic(): sns.Topic {
    const key = new kms.Key(this, 'FlaggedTopicKey', {
      description: 'Encrypts the flagged moderation decisions topic',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const topic = new sns.Topic(this, 'FlaggedTopic', {
      displayName: 'Flagged moderation decisions (REJECTED, REVIEW)',
      masterKey: key,
      enforceSSL: true,
    });
    // EventBridge publishes to an encrypted topic only with the key: for rules of this account only.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    return topic;
  }
}

function failureAlarm(scope: Construct, id: string, queue: sqs.IQueue, description: string, topic: sns.ITopic | undefined): cloudwatch.Alarm {
  const alarm = new cloudwatch.Alarm(scope, id, {
    alarmDescription: description,
    metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  if (topic) {
    alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic));
    alarm.addOkAction(new cloudwatchActions.SnsAction(topic));
  }
  return alarm;
}

/** A queue for what could not be published or delivered: encrypted, TLS only, kept 14 days. */
function undeliveredQueue(scope: Construct, id: string, what: string): sqs.Queue {
  const queue = new sqs.Queue(scope, id, { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
  (queue.node.defaultChild as sqs.CfnQueue).addMetadata('Description', what);
  return queue;
}

function validate(scope: Construct, props: DecisionEventsProps, source: string): void {
  const problems: string[] = [];
  if (!Token.isUnresolved(source)) {
    if (!source.trim()) problems.push('source must not be empty');
    else if (/^aws\./i.test(source)) problems.push(`source must not start with "aws." (reserved by AWS), got "${source}"`);
    else if (source.length > 256) problems.push('source must be at most 256 characters');
  }
  const url = props.webhookUrl;
  if (url !== undefined && !Token.isUnresolved(url)) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      problems.push(`webhookUrl must be an https:// URL, got "${url}"`);
    }
    if (parsed && parsed.protocol !== 'https:') problems.push(`webhookUrl must be an https:// URL (EventBridge API destinations call HTTPS endpoints only), got "${url}"`);
    if (parsed && (parsed.username || parsed.password)) problems.push('webhookUrl must not hold credentials (the receiver checks the X-Moderation-Api-Key header)');
  }
  const rate = props.webhookRateLimitPerSecond;
  if (rate !== undefined && (!Number.isInteger(rate) || rate < 1 || rate > 300)) problems.push(`webhookRateLimitPerSecond must be an integer from 1 to 300, got ${rate}`);
  if (props.webhookSecret && !props.webhookUrl) Annotations.of(scope).addWarningV2('upload-moderation:webhookSecretUnused', 'webhookSecret is set but webhookUrl is not: no webhook is created.');
  if (problems.length) throw new Error(`DecisionEvents ${scope.node.path}: ${problems.join('; ')}`);
}
