/**
 * Decision events on AWS (infra/decision-events.ts; docs/events.md): the decision table's stream,
 * the publisher on it and its least privilege (PutEvents on that bus only), the rules of
 * onDecision and the flagged-decisions topic, the webhook's API destination, the CDK context that
 * sets them, and cdk-nag on a stack with all of it.
 */
import { describe, expect, it } from 'vitest';
import type { CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ModerationStack, type ModerationStackProps } from '../../infra/moderation-stack.ts';
import { ModerationPipeline, type DecisionEventsOptions } from '../../infra/moderation-pipeline.ts';
import { settingsFromContext } from '../../infra/context.ts';
import { ENV } from '../../functions/lib/config.ts';
import { actionsOfRole, asArray, iamStatements, resourcesOf, statementsOfRole, testApp } from './helpers.ts';
import { Stack, Validations } from 'aws-cdk-lib';

const WEBHOOK = 'https://hooks.example.com/moderation';

function build(props: ModerationStackProps = {}, id = 'Events', more?: (stack: ModerationStack) => void) {
  const app = testApp();
  const stack = new ModerationStack(app, id, props);
  more?.(stack);
  const template = Template.fromStack(stack);
  const idOf = (construct: unknown): string => stack.getLogicalId(((construct as { node: { defaultChild?: unknown } }).node.defaultChild ?? construct) as CfnElement);
  return { app, stack, template, idOf, resources: template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, any> }> };
}

const defaultBusArn = {
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default']],
};

describe('default: events on the default bus', () => {
  const { stack, template, idOf, resources } = build();
  const events = stack.pipeline.events!;
  const publisher = resources[idOf(events.publisher)]!;
  const roleId = idOf(events.publisher.role);
  const tableId = idOf(stack.pipeline.decisionHistory);
  const mapping = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping')).find((m) => JSON.stringify(m.Properties!.FunctionName) === JSON.stringify({ Ref: idOf(events.publisher) }))!;

  it('the decision table streams each new image', () => {
    expect(resources[tableId]!.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_IMAGE' });
  });

  it('the publisher reads the stream from its oldest record, INSERTs only, with partial failures, bisect, retries and a failure queue', () => {
    expect(mapping.Properties).toEqual(
      expect.objectContaining({
        EventSourceArn: { 'Fn::GetAtt': [tableId, 'StreamArn'] },
        StartingPosition: 'TRIM_HORIZON',
        // INSERTs of decision records only: the content index's items (pk CONTENT#, NEAR#) share the table, not the events.
        FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ eventName: ['INSERT'], dynamodb: { Keys: { pk: { S: [{ prefix: 'JOB#' }] } } } }) }] },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 20,
        MaximumRecordAgeInSeconds: 86_400,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [idOf(events.failedPublishes), 'Arn'] } } },
      }),
    );
  });

  it('publishes to the default bus with the default source, from its own code (functions/publish-decisions.ts)', () => {
    expect(publisher.Properties.Environment.Variables).toEqual(
      expect.objectContaining({ [ENV.eventBusName]: defaultBusArn, [ENV.eventSource]: 'upload-moderation', POWERTOOLS_SERVICE_NAME: 'moderation-events' }),
    );
    expect(publisher.Properties.Handler).toBe('index.handler');
    expect(events.publisher.node.path).toContain('Pipeline/Events');
  });

  it('least privilege: PutEvents on that bus only; the stream; the failure queue; its own logs. No table, no other bus', () => {
    expect(actionsOfRole(template, roleId)).toEqual([
      'dynamodb:DescribeStream',
      'dynamodb:GetRecords',
      'dynamodb:GetShardIterator',
      'dynamodb:ListStreams',
      'events:PutEvents',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
    ]);
    const statements = statementsOfRole(template, roleId);
    const on = (action: string) => statements.filter((s) => asArray(s.Action).includes(action)).flatMap((s) => asArray(s.Resource));
    expect(on('events:PutEvents')).toEqual([defaultBusArn]);
    expect(on('dynamodb:GetRecords')).toEqual([{ 'Fn::GetAtt': [tableId, 'StreamArn'] }]);
    expect(on('sqs:SendMessage')).toEqual([{ 'Fn::GetAtt': [idOf(events.failedPublishes), 'Arn'] }]);
    expect(statements.every((s) => s.Effect === 'Allow')).toBe(true);
    // Nobody else in the stack may put events anywhere.
    const putters = iamStatements(template).filter(({ statement }) => asArray(statement.Action).some((a) => a.startsWith('events:Put')));
    expect(putters.map((p) => p.policy)).toEqual(putters.map(() => putters[0]!.policy));
    expect(JSON.stringify(putters[0]!.roles)).toContain(roleId);
  });

  it('no rule, topic or webhook unless asked', () => {
    template.resourceCountIs('AWS::Events::Rule', 0);
    template.resourceCountIs('AWS::Events::Connection', 0);
    template.resourceCountIs('AWS::Events::ApiDestination', 0);
    template.resourceCountIs('AWS::SNS::Topic', 0);
    expect(events.flaggedTopic).toBeUndefined();
    expect(events.webhook).toBeUndefined();
    expect(template.toJSON().Outputs.WebhookSecretArn).toBeUndefined();
  });
});

describe('onDecision', () => {
  const { template, idOf, stack } = build({}, 'OnDecision', (s) => {
    const queue = new sqs.Queue(s, 'Rejections', { enforceSSL: true });
    s.pipeline.onDecision('RejectedToQueue', { target: new eventTargets.SqsQueue(queue), statuses: ['REJECTED'], types: ['automated', 'human'] });
  });

  it('matches this pipeline\'s source, detail-type Moderation Decision, and the statuses and types asked for', () => {
    const rules = Object.values(resourcesOf(template, 'AWS::Events::Rule'));
    expect(rules).toHaveLength(1);
    expect(rules[0]!.Properties!.EventPattern).toEqual({
      source: ['upload-moderation'],
      'detail-type': ['Moderation Decision'],
      detail: { status: ['REJECTED'], type: ['automated', 'human'] },
    });
    expect(rules[0]!.Properties!.EventBusName).toBe('default');
    expect(rules[0]!.Properties!.Targets[0].Arn).toEqual({ 'Fn::GetAtt': [idOf(stack.node.findChild('Rejections')), 'Arn'] });
  });

  it('needs the events: with events: false there is no stream, no publisher, and onDecision says why', () => {
    const off = build({ pipeline: { events: false } }, 'NoEvents');
    expect(off.stack.pipeline.events).toBeUndefined();
    expect(off.resources[off.idOf(off.stack.pipeline.decisionHistory)]!.Properties.StreamSpecification).toBeUndefined();
    expect(JSON.stringify(iamStatements(off.template))).not.toContain('events:PutEvents');
    expect(() => off.stack.pipeline.onDecision('X', { target: new eventTargets.SqsQueue(new sqs.Queue(off.stack, 'Q')) })).toThrow(/events: false/);
  });
});

describe('a bus, a source, flagged decisions to SNS and a webhook', () => {
  const { stack, template, idOf, resources } = build(
    { pipeline: { events: { source: 'com.example.moderation', flaggedTopic: true, webhookUrl: WEBHOOK } }, eventBusName: 'platform-events' },
    'EventsEverything',
  );
  const events = stack.pipeline.events!;
  const busArn = {
    'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':event-bus/platform-events']],
  };
  const rules = Object.entries(resourcesOf(template, 'AWS::Events::Rule'));
  /** The logical id of the one resource of a type (the L2 API destination and connection have no defaultChild). */
  const onlyId = (type: string) => {
    const ids = Object.keys(resourcesOf(template, type));
    expect(ids).toHaveLength(1);
    return ids[0]!;
  };
  const ruleOf = (construct: unknown) => rules.find(([id]) => id === idOf(construct))![1].Properties!;

  it('publishes to the given bus only, with the given source', () => {
    const roleId = idOf(events.publisher.role);
    const puts = statementsOfRole(template, roleId).filter((s) => asArray(s.Action).includes('events:PutEvents'));
    expect(puts.flatMap((s) => asArray(s.Resource))).toEqual([busArn]);
    expect(resources[idOf(events.publisher)]!.Properties.Environment.Variables).toEqual(expect.objectContaining({ [ENV.eventBusName]: busArn, [ENV.eventSource]: 'com.example.moderation' }));
  });

  it('REJECTED and REVIEW go to a new topic, encrypted with a key EventBridge may use', () => {
    const flagged = rules.map(([, r]) => r.Properties!).find((r) => JSON.stringify(r.Targets).includes(idOf(events.flaggedTopic)))!;
    expect(flagged.EventPattern).toEqual({ source: ['com.example.moderation'], 'detail-type': ['Moderation Decision'], detail: { status: ['REJECTED', 'REVIEW'] } });
    expect(flagged.EventBusName).toBe('platform-events');
    const topic = resources[idOf(events.flaggedTopic)]!.Properties;
    expect(topic.KmsMasterKeyId).toBeDefined();
    const keyPolicy = Object.values(resourcesOf(template, 'AWS::KMS::Key'))[0]!.Properties!.KeyPolicy.Statement as { Principal?: { Service?: string }; Action: string[] }[];
    expect(keyPolicy).toContainEqual(expect.objectContaining({ Principal: { Service: 'events.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] }));
    const topicPolicy = Object.values(resourcesOf(template, 'AWS::SNS::TopicPolicy'))[0]!.Properties!.PolicyDocument.Statement as unknown[];
    expect(JSON.stringify(topicPolicy)).toContain('events.amazonaws.com');
  });

  it('the webhook: an API key connection, an API destination POSTing to the URL, the event as body and its id as a header', () => {
    const connection = Object.values(resourcesOf(template, 'AWS::Events::Connection'));
    expect(connection).toHaveLength(1);
    expect(connection[0]!.Properties!.AuthorizationType).toBe('API_KEY');
    expect(connection[0]!.Properties!.AuthParameters.ApiKeyAuthParameters.ApiKeyName).toBe('X-Moderation-Api-Key');
    expect(JSON.stringify(connection[0]!.Properties!.AuthParameters.ApiKeyAuthParameters.ApiKeyValue)).toContain('{{resolve:secretsmanager:');
    const destination = Object.values(resourcesOf(template, 'AWS::Events::ApiDestination'));
    expect(destination).toHaveLength(1);
    expect(destination[0]!.Properties).toEqual(
      expect.objectContaining({ InvocationEndpoint: WEBHOOK, HttpMethod: 'POST', InvocationRateLimitPerSecond: 50, ConnectionArn: { 'Fn::GetAtt': [onlyId('AWS::Events::Connection'), 'Arn'] } }),
    );

    const rule = ruleOf(events.webhook!.rule);
    expect(rule.EventPattern).toEqual({ source: ['com.example.moderation'], 'detail-type': ['Moderation Decision'] });
    expect(rule.EventBusName).toBe('platform-events');
    const [target] = rule.Targets;
    expect(target).toEqual(
      expect.objectContaining({
        Arn: { 'Fn::GetAtt': [onlyId('AWS::Events::ApiDestination'), 'Arn'] },
        InputPath: '$.detail',
        HttpParameters: { HeaderParameters: { 'X-Moderation-Event-Id': '$.detail.id' } },
        RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86_400 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [idOf(events.failedDeliveries), 'Arn'] } },
      }),
    );
    expect(template.toJSON().Outputs.WebhookSecretArn.Value).toEqual({ Ref: idOf(events.webhook!.secret) });
  });

  it('least privilege: the rule may invoke this API destination only; only this rule may fill the failed-deliveries queue', () => {
    const rule = ruleOf(events.webhook!.rule);
    const roleId = (rule.Targets[0].RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    expect(actionsOfRole(template, roleId)).toEqual(['events:InvokeApiDestination']);
    expect(statementsOfRole(template, roleId).flatMap((s) => asArray(s.Resource))).toEqual([{ 'Fn::GetAtt': [onlyId('AWS::Events::ApiDestination'), 'Arn'] }]);
    const queuePolicies = Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy')).filter((p) => JSON.stringify(p.Properties!.Queues).includes(idOf(events.failedDeliveries)));
    const allows = queuePolicies.flatMap((p) => p.Properties!.PolicyDocument.Statement as { Effect: string; Principal?: unknown; Condition?: unknown }[]).filter((s) => s.Effect === 'Allow');
    expect(allows).toEqual([
      expect.objectContaining({ Principal: { Service: 'events.amazonaws.com' }, Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [idOf(events.webhook!.rule), 'Arn'] } } } }),
    ]);
  });

  it('an alarm on each failure queue: one message means the platform was not told of a decision', () => {
    const alarms = Object.entries(resourcesOf(template, 'AWS::CloudWatch::Alarm'));
    for (const [queue, alarm] of [
      [events.failedPublishes, events.alarms.failedPublishes],
      [events.failedDeliveries!, events.alarms.failedDeliveries!],
    ] as const) {
      const properties = alarms.find(([id]) => id === idOf(alarm))![1].Properties!;
      expect(properties).toEqual(
        expect.objectContaining({
          MetricName: 'ApproximateNumberOfMessagesVisible',
          Namespace: 'AWS/SQS',
          Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [idOf(queue), 'QueueName'] } }],
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        }),
      );
    }
  });

  it('cdk-nag finds nothing unacknowledged, and every acknowledgement under the events is a real finding', () => {
    const app = testApp();
    const nagged = new ModerationStack(app, 'EventsNag', { pipeline: { events: { flaggedTopic: true, webhookUrl: WEBHOOK } } });
    const pack = new AwsSolutionsChecks(app);
    const violations = pack.validateScope(app).violations.map((v) => ({ rule: v.ruleName, paths: v.violatingResources.map((r) => r.constructPath) }));
    expect(violations).toEqual([]);
    const raw = new AwsSolutionsChecks(app);
    (raw as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
    const findings = raw.validateScope(app).violations.map((v) => ({ rule: v.ruleName, paths: v.violatingResources.map((r) => r.constructPath ?? '') }));
    const eventsPath = nagged.pipeline.events!.node.path;
    const acks = nagged.pipeline.events!.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).flatMap((m) => Object.keys((m.data ?? {}) as object).map((id) => ({ id: id.replace(/^annotation::/i, ''), path: c.node.path }))));
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect(ack.path.startsWith(eventsPath)).toBe(true);
      expect(findings.find((f) => f.rule === ack.id && f.paths.some((p) => p === ack.path || p.startsWith(`${ack.path}/`))), `${ack.path} ${ack.id}`).toBeDefined();
    }
  });
});

describe('settings', () => {
  const read = (context: Record<string, unknown>) => settingsFromContext((key) => context[key]);

  it('-c webhookUrl=... (and eventSource, flaggedTopic, eventBusName) reach the construct; -c events=false turns them off', () => {
    const settings = read({ webhookUrl: WEBHOOK, eventSource: 'com.example', flaggedTopic: 'true', eventBusName: 'platform' });
    expect(settings.pipeline!.events).toEqual({ source: 'com.example', flaggedTopic: true, webhookUrl: WEBHOOK });
    expect(settings.eventBusName).toBe('platform');
    expect(read({}).pipeline!.events).toBeUndefined();
    expect(read({ events: 'false', webhookUrl: WEBHOOK }).pipeline!.events).toBe(false);
    const { stackName: _name, ...props } = settings;
    const { stack, template } = build(props, 'FromContext');
    expect(stack.pipeline.events!.source).toBe('com.example');
    template.resourceCountIs('AWS::Events::ApiDestination', 1);
  });

  it('a webhook URL that is not https, or a source AWS reserves, fails the synth with the reason', () => {
    const make = (events: DecisionEventsOptions) => () =>
      new ModerationPipeline(new Stack(testApp(), 'S'), 'P', { events });
    expect(make({ webhookUrl: 'http://hooks.example.com/x' })).toThrow(/webhookUrl must be an https:\/\/ URL/);
    expect(make({ webhookUrl: 'not a url' })).toThrow(/webhookUrl must be an https:\/\/ URL/);
    expect(make({ source: 'aws.moderation' })).toThrow(/source must not start with "aws\."/);
    expect(make({ webhookUrl: WEBHOOK, webhookRateLimitPerSecond: 0 })).toThrow(/webhookRateLimitPerSecond/);
  });
});
