/**
 * STANDARD workflows lose nothing (docs/architecture.md, invariant 1): ingest deletes the intake
 * message once an execution has started, so an execution that times out, is aborted or fails inside
 * RecordFailure reaches the settle function through an EventBridge rule on this state machine's
 * Execution Status Change events. Asserted on the template: the rule, its target, the function's
 * least privilege, and that EXPRESS (no such events; ingest waits for the result) has none of it.
 */
import { describe, expect, it } from 'vitest';
import type { CfnElement } from 'aws-cdk-lib';
import { ENV } from '../../functions/lib/config.ts';
import { EXECUTION_STATUS_CHANGE, SETTLE_FUNCTION_MEMORY_MB, UNSETTLED_END_STATUSES } from '../../functions/lib/pipeline-settings.ts';
import { actionsOfRole, asArray, resourcesOf, statementsOfRole, synthStack } from './helpers.ts';

const { stack, template } = synthStack({ pipeline: { workflowType: 'STANDARD' } }, 'SettleStandard');
const pipeline = stack.pipeline;
const resources = template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, any> }>;
const idOf = (construct: { node: { defaultChild?: unknown } }): string => stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement);
const settleId = idOf(pipeline.settleFunction!);
const settleRoleId = idOf(pipeline.settleFunction!.role as never);
const workflowId = idOf(pipeline.workflow);
const dlqArn = { 'Fn::GetAtt': [idOf(pipeline.deadLetterQueue), 'Arn'] };
const executions = {
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':states:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':execution:', { 'Fn::GetAtt': [workflowId, 'Name'] }, ':*']],
};

describe('the rule', () => {
  const rules = Object.values(resourcesOf(template, 'AWS::Events::Rule'));

  it("matches this state machine's executions that ended FAILED, TIMED_OUT or ABORTED", () => {
    expect(rules).toHaveLength(1);
    expect(rules[0].Properties!.EventPattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: { stateMachineArn: [{ Ref: workflowId }], status: ['FAILED', 'TIMED_OUT', 'ABORTED'] },
    });
    expect([EXECUTION_STATUS_CHANGE.source, EXECUTION_STATUS_CHANGE.detailType, ...UNSETTLED_END_STATUSES]).toEqual([
      'aws.states',
      'Step Functions Execution Status Change',
      'FAILED',
      'TIMED_OUT',
      'ABORTED',
    ]);
  });

  it('targets the settle function only, retried for a day, undeliverable events to the dead-letter queue', () => {
    const targets = rules[0].Properties!.Targets as Record<string, any>[];
    expect(targets).toHaveLength(1);
    expect(targets[0]).toMatchObject({
      Arn: { 'Fn::GetAtt': [settleId, 'Arn'] },
      DeadLetterConfig: { Arn: dlqArn },
      RetryPolicy: { MaximumEventAgeInSeconds: 86_400, MaximumRetryAttempts: 185 },
    });
    expect(targets[0].Input ?? targets[0].InputPath ?? targets[0].InputTransformer).toBeUndefined(); // the event as it is
  });

  it('EventBridge may invoke the settle function for this rule only, and send to the dead-letter queue for this rule only', () => {
    const permissions = Object.values(resourcesOf(template, 'AWS::Lambda::Permission')).filter((p) => JSON.stringify(p.Properties!.FunctionName).includes(settleId));
    expect(permissions).toEqual([
      expect.objectContaining({
        Properties: expect.objectContaining({ Action: 'lambda:InvokeFunction', Principal: 'events.amazonaws.com', SourceArn: { 'Fn::GetAtt': [idOf(pipeline.settleRule!), 'Arn'] } }),
      }),
    ]);
    const dlqPolicy = Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy')).find((p) => JSON.stringify(p.Properties!.Queues) === JSON.stringify([{ Ref: idOf(pipeline.deadLetterQueue) }]))!;
    expect(dlqPolicy.Properties!.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [idOf(pipeline.settleRule!), 'Arn'] } } },
      }),
    );
  });
});

describe('the settle function', () => {
  const fn = resources[settleId].Properties;

  it('runs functions/settle.ts like the other handlers, with the settings it reads', () => {
    expect(fn.Runtime).toBe('nodejs22.x');
    expect(fn.Architectures).toEqual(['arm64']);
    expect(fn.MemorySize).toBe(SETTLE_FUNCTION_MEMORY_MB);
    expect(fn.TracingConfig).toEqual({ Mode: 'Active' });
    const variables = Object.keys(fn.Environment.Variables).filter((k) => !k.startsWith('POWERTOOLS_') && k !== 'NODE_OPTIONS');
    expect(variables.sort()).toEqual([ENV.deadLetterQueueUrl, ENV.decisionTable, ENV.statusShards].sort());
    expect(fn.Environment.Variables[ENV.deadLetterQueueUrl]).toEqual({ Ref: idOf(pipeline.deadLetterQueue) });
  });

  it('after Lambda\'s retries of the asynchronous invocation, the event goes to the dead-letter queue (never dropped)', () => {
    expect(fn.DeadLetterConfig).toEqual({ TargetArn: dlqArn });
  });

  it('may do exactly what it calls: Query and PutItem on the base table, send to the DLQ, describe this machine\'s executions', () => {
    expect(actionsOfRole(template, settleRoleId)).toEqual(
      [
        'dynamodb:PutItem',
        'dynamodb:Query',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
        'states:DescribeExecution',
        'xray:PutTelemetryRecords',
        'xray:PutTraceSegments',
      ].sort(),
    );
    const resourcesFor = (action: string) =>
      statementsOfRole(template, settleRoleId)
        .filter((s) => asArray(s.Action).includes(action))
        .flatMap((s) => asArray(s.Resource));
    expect(resourcesFor('dynamodb:PutItem')).toEqual([{ 'Fn::GetAtt': [idOf(pipeline.decisionHistory), 'Arn'] }]);
    expect(resourcesFor('sqs:SendMessage')).toEqual([dlqArn]);
    expect(resourcesFor('states:DescribeExecution')).toEqual([executions]);
  });
});

describe('ingest (STANDARD)', () => {
  it('may start executions, and describe one of this machine that already has the name', () => {
    const ingestRole = idOf(pipeline.functions.ingest.role as never);
    const states = statementsOfRole(template, ingestRole).filter((s) => asArray(s.Action).some((a) => a.startsWith('states:')));
    expect(states).toEqual([
      expect.objectContaining({ Action: 'states:StartExecution', Resource: { Ref: workflowId } }),
      expect.objectContaining({ Action: 'states:DescribeExecution', Resource: executions }),
    ]);
  });
});

describe('EXPRESS', () => {
  it('has no rule, no settle function, and ingest describes nothing (it waits for each result)', () => {
    const express = synthStack({}, 'SettleExpress');
    expect(express.stack.pipeline.settleFunction).toBeUndefined();
    expect(express.stack.pipeline.settleRule).toBeUndefined();
    express.template.resourceCountIs('AWS::Events::Rule', 0);
    expect(JSON.stringify(express.template.toJSON())).not.toContain('states:DescribeExecution');
  });
});
