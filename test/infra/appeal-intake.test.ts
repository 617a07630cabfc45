/**
 * The platform's appeal intake in the template (issue 14, section 3; infra/appeal-intake.ts): off by
 * default; with `appeals` an encrypted TLS-only queue with a redrive to its own dead-letter queue, one
 * function on it (partial batch failures) that may Query and PutItem on the decision table and send to
 * that dead-letter queue, nothing else; with decision events a rule for `Moderation Appeal Request`
 * events (the appeal source) that hands the queue the event's detail; grantAppeal gives SendMessage on
 * the queue and PutEvents on the bus for that detail-type and source only; an alarm on the dead letters.
 */
import { describe, expect, it } from 'vitest';
import type { CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ModerationStack, type ModerationStackProps } from '../../infra/moderation-stack.ts';
import { MAX_RECEIVE_COUNT } from '../../functions/lib/pipeline-settings.ts';
import { asArray, iamStatements, resourcesOf, statementsOfRole, testApp } from './helpers.ts';
import { settingsFromContext } from '../../infra/context.ts';

function build(props: ModerationStackProps, id: string, withPlatform = false) {
  const app = testApp();
  const stack = new ModerationStack(app, id, props);
  const platform = withPlatform ? new iam.Role(stack, 'Platform', { assumedBy: new iam.AccountPrincipal('123456789012') }) : undefined;
  if (platform) stack.pipeline.grantAppeal(platform);
  const template = Template.fromStack(stack);
  const idOf = (construct: unknown): string => stack.getLogicalId(((construct as { node: { defaultChild?: unknown } }).node.defaultChild ?? construct) as CfnElement);
  return { stack, template, idOf, platform, resources: template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, any> }> };
}

describe('appeals off (the default)', () => {
  const { stack, template } = build({}, 'NoAppeals');
  it('has no appeal queue, function or output; grantAppeal says why it cannot', () => {
    expect(stack.pipeline.appeals).toBeUndefined();
    expect(stack.pipeline.appealQueue).toBeUndefined();
    expect(template.toJSON().Outputs.AppealQueueUrl).toBeUndefined();
    expect(() => stack.pipeline.grantAppeal(new iam.Role(stack, 'R', { assumedBy: new iam.AccountPrincipal('123456789012') }))).toThrow(/grantAppeal needs the appeal intake \(set appeals: true\)/);
  });
});

describe('appeals on, with decision events', () => {
  const { stack, template, idOf, platform, resources } = build({ pipeline: { appeals: true } }, 'Appeals', true);
  const appeals = stack.pipeline.appeals!;
  const queue = resources[idOf(appeals.queue)]!;
  const dlqId = idOf(appeals.deadLetterQueue);
  const fnRoleId = idOf(appeals.handler.role);

  it('an encrypted, TLS-only queue that redrives to its own dead-letter queue; the stack outputs its URL', () => {
    expect(stack.pipeline.appealQueue).toBe(appeals.queue);
    expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
    expect(queue.Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: MAX_RECEIVE_COUNT });
    const policies = Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy')).filter((p) => JSON.stringify(p.Properties!.Queues).includes(idOf(appeals.queue)));
    expect(JSON.stringify(policies)).toContain('"aws:SecureTransport":"false"');
    expect(template.toJSON().Outputs.AppealQueueUrl.Value).toEqual({ Ref: idOf(appeals.queue) });
  });

  it('one function on the queue, reporting partial batch failures, told where the dead letters go', () => {
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping')).filter((m) => JSON.stringify(m.Properties!.EventSourceArn).includes(idOf(appeals.queue)));
    expect(mappings).toHaveLength(1);
    expect(mappings[0]!.Properties).toMatchObject({ FunctionName: { Ref: idOf(appeals.handler) }, FunctionResponseTypes: ['ReportBatchItemFailures'] });
    expect(resources[idOf(appeals.handler)]!.Properties.Environment.Variables).toMatchObject({ APPEAL_DEAD_LETTER_QUEUE_URL: { Ref: dlqId } });
  });

  it('the function may Query and PutItem on the table (no index, no update, no delete), send to its dead-letter queue, read its queue', () => {
    const statements = statementsOfRole(template, fnRoleId);
    const table = statements.filter((s) => asArray(s.Action).some((a) => a.startsWith('dynamodb:')));
    expect(table).toHaveLength(1);
    expect(asArray(table[0]!.Action).sort()).toEqual(['dynamodb:PutItem', 'dynamodb:Query']);
    expect(table[0]!.Resource).toEqual({ 'Fn::GetAtt': [idOf(stack.pipeline.decisionHistory), 'Arn'] });
    const sendTo = statements.filter((s) => asArray(s.Action).includes('sqs:SendMessage')).map((s) => s.Resource);
    expect(sendTo).toEqual([{ 'Fn::GetAtt': [dlqId, 'Arn'] }]);
    const actions = new Set(statements.flatMap((s) => asArray(s.Action)));
    for (const action of actions) expect(action, action).toMatch(/^(dynamodb:(Query|PutItem)|sqs:(SendMessage|GetQueueAttributes|GetQueueUrl|ReceiveMessage|DeleteMessage|ChangeMessageVisibility)|logs:(CreateLogStream|PutLogEvents))$/);
  });

  it('a rule for Moderation Appeal Request events of the appeal source, on the decision events\' bus, hands the queue the detail', () => {
    const rules = Object.values(resourcesOf(template, 'AWS::Events::Rule')).filter((r) => JSON.stringify(r.Properties!.EventPattern).includes('Moderation Appeal Request'));
    expect(rules).toHaveLength(1);
    expect(rules[0]!.Properties!.EventPattern).toEqual({ source: ['upload-platform.appeals'], 'detail-type': ['Moderation Appeal Request'] });
    expect(rules[0]!.Properties!.Targets).toEqual([expect.objectContaining({ Arn: { 'Fn::GetAtt': [idOf(appeals.queue), 'Arn'] }, InputPath: '$.detail' })]);
    // Only that rule may send to the queue (the queue policy's condition on the rule's ARN).
    const policy = JSON.stringify(Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy')).filter((p) => JSON.stringify(p.Properties!.Queues).includes(idOf(appeals.queue))));
    expect(policy).toContain('events.amazonaws.com');
    expect(policy).toContain('aws:SourceArn');
  });

  it('grantAppeal: SendMessage on the appeal queue, PutEvents on the bus for this detail-type and source only', () => {
    const statements = statementsOfRole(template, idOf(platform));
    const send = statements.filter((s) => asArray(s.Action).includes('sqs:SendMessage'));
    expect(send.map((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [idOf(appeals.queue), 'Arn'] }]);
    const put = statements.filter((s) => asArray(s.Action).includes('events:PutEvents'));
    expect(put).toHaveLength(1);
    expect(put[0]!.Condition).toEqual({ StringEquals: { 'events:detail-type': 'Moderation Appeal Request', 'events:source': 'upload-platform.appeals' } });
    expect(JSON.stringify(put[0]!.Resource)).toContain('event-bus/default');
    // Nothing else: no table, no bucket.
    expect(statements.flatMap((s) => asArray(s.Action)).every((a) => a.startsWith('sqs:') || a === 'events:PutEvents')).toBe(true);
  });

  it('an alarm when anything lands in the appeal dead-letter queue', () => {
    const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).filter((a) => JSON.stringify(a.Properties!.Dimensions ?? []).includes(dlqId));
    expect(alarms).toHaveLength(1);
    expect(alarms[0]!.Properties).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1, TreatMissingData: 'notBreaching' });
  });
});

describe('appeals without decision events, and from the context', () => {
  it('events: false: the queue only; grantAppeal gives SendMessage and no PutEvents', () => {
    const { stack, template, idOf, platform } = build({ pipeline: { events: false, appeals: true } }, 'AppealsQueueOnly', true);
    expect(stack.pipeline.appeals!.rule).toBeUndefined();
    template.resourceCountIs('AWS::Events::Rule', 0);
    const actions = statementsOfRole(template, idOf(platform)).flatMap((s) => asArray(s.Action));
    expect(actions).toContain('sqs:SendMessage');
    expect(actions).not.toContain('events:PutEvents');
    expect(iamStatements(template).some(({ statement }) => asArray(statement.Action).includes('events:PutEvents'))).toBe(false);
  });

  it('appeals.events without decision events, or an aws.* source, fail at synth', () => {
    expect(() => build({ pipeline: { events: false, appeals: { events: true } } }, 'Bad1')).toThrow(/appeals.events needs the decision events' bus/);
    expect(() => build({ pipeline: { appeals: { source: 'aws.s3' } } }, 'Bad2')).toThrow(/not start with "aws\."/);
  });

  it('-c appeals=true -c appealSource=com.example.appeals', () => {
    const context: Record<string, string> = { appeals: 'true', appealSource: 'com.example.appeals' };
    expect(settingsFromContext((key) => context[key]).pipeline?.appeals).toEqual({ source: 'com.example.appeals' });
    expect(settingsFromContext(() => undefined).pipeline?.appeals).toBeUndefined();
  });
});
