/**
 * The live policy's wiring (docs/operating.md, "Live policy"): the SSM parameter (standard tier
 * unless asked, starting as the `policy` prop), the detect function told its name and the only
 * function that may read it, `grantPolicyPush` for the people who change it (read + PutParameter on
 * that parameter, nothing else of SSM), and the stack outputs the CLI finds it by.
 */
import { describe, expect, it } from 'vitest';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Template } from 'aws-cdk-lib/assertions';
import { ModerationStack } from '../../infra/moderation-stack.ts';
import { ENV } from '../../functions/lib/config.ts';
import { parsePolicySet } from '../../functions/lib/policy-set.ts';
import { actionsOfRole, asArray, logicalIdOf, resourcesOf, statementsOfRole, synthStack, testApp } from './helpers.ts';

function withPeople() {
  const stack = new ModerationStack(testApp(), 'LivePolicy', { pipeline: { policy: 'strict' } });
  const person = (name: string) => new iam.Role(stack, name, { assumedBy: new iam.AccountRootPrincipal() });
  const pusher = person('PolicyOwner');
  const operator = person('Operator');
  const auditor = person('Auditor');
  const grant = stack.pipeline.grantPolicyPush(pusher);
  stack.pipeline.grantOperate(operator);
  stack.pipeline.grantAudit(auditor);
  const template = Template.fromStack(stack);
  const id = (construct: unknown) => logicalIdOf(stack, construct);
  return { stack, template, grant, roles: { pusher: id(pusher), operator: id(operator), auditor: id(auditor) }, id };
}

const { stack, template, grant, roles, id } = withPeople();
const pipeline = stack.pipeline;
const parameterId = id(pipeline.policyParameter);
const parameterArn = {
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ssm:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':parameter/', { Ref: parameterId }]],
};
const functionRoles = Object.fromEntries(Object.entries(pipeline.functions).map(([name, fn]) => [name, id(fn.role)]));

describe('the live-policy parameter', () => {
  it('is one standard-tier String parameter that starts as the policy prop (a valid policy set)', () => {
    const parameters = resourcesOf(template, 'AWS::SSM::Parameter');
    expect(Object.keys(parameters)).toEqual([parameterId]);
    const props = parameters[parameterId]!.Properties!;
    expect(props).toMatchObject({ Type: 'String', Tier: 'Standard', Value: 'strict' });
    expect(parsePolicySet(props.Value).defaultPolicy).toBe('strict');
  });

  it('a policy document starts as its compact JSON, which parses as the same policy', () => {
    const document = { name: 'photos', rules: { Explicit: { reject: 80, review: 50 } } };
    const { template: t } = synthStack({ pipeline: { policy: JSON.stringify(document) } }, 'LivePolicyDocument');
    const [parameter] = Object.values(resourcesOf(t, 'AWS::SSM::Parameter'));
    expect(JSON.parse(parameter!.Properties!.Value)).toEqual(document);
    expect(parsePolicySet(parameter!.Properties!.Value).defaultPolicy).toBe('photos');
  });

  it('policyParameterTier: advanced makes an advanced parameter and says so in the outputs', () => {
    const { template: t } = synthStack({ pipeline: { policyParameterTier: 'advanced' } }, 'LivePolicyAdvanced');
    const [parameter] = Object.values(resourcesOf(t, 'AWS::SSM::Parameter'));
    expect(parameter!.Properties!.Tier).toBe('Advanced');
    expect(t.toJSON().Outputs.PolicyParameterTier.Value).toBe('Advanced');
    expect(() => synthStack({ pipeline: { policyParameterTier: 'premium' as never } }, 'LivePolicyBadTier')).toThrow(/policyParameterTier must be standard or advanced, got "premium"/);
  });

  it('the stack outputs name it for the CLI (--stack)', () => {
    const outputs = template.toJSON().Outputs;
    expect(outputs.PolicyParameterName.Value).toEqual({ Ref: parameterId });
    expect(outputs.PolicyParameterTier.Value).toBe('Standard');
  });
});

describe('least privilege', () => {
  it('the detect function is told the parameter and may read it, on that parameter only', () => {
    const detect = Object.values(resourcesOf(template, 'AWS::Lambda::Function')).find((fn) => fn.Properties!.Role?.['Fn::GetAtt']?.[0] === functionRoles.detect);
    expect(detect!.Properties!.Environment.Variables[ENV.policyParameter]).toEqual({ Ref: parameterId });
    const ssmStatements = statementsOfRole(template, functionRoles.detect!).filter((s) => asArray(s.Action).some((a) => a.startsWith('ssm:')));
    expect(ssmStatements).toHaveLength(1);
    expect([...asArray(ssmStatements[0]!.Action)].sort()).toEqual(['ssm:DescribeParameters', 'ssm:GetParameter', 'ssm:GetParameterHistory', 'ssm:GetParameters']);
    expect(ssmStatements[0]!.Resource).toEqual(parameterArn);
    expect(actionsOfRole(template, functionRoles.detect!)).not.toContain('ssm:PutParameter');
  });

  it('no other function reads or writes any parameter', () => {
    for (const [name, role] of Object.entries(functionRoles)) {
      if (name === 'detect') continue;
      expect(actionsOfRole(template, role!).filter((a) => a.startsWith('ssm:')), name).toEqual([]);
    }
  });

  it('grantPolicyPush: read and PutParameter on that parameter, the history, the stack outputs; never a wildcard', () => {
    expect(grant.success).toBe(true);
    const actions = actionsOfRole(template, roles.pusher);
    expect(actions.filter((a) => a.startsWith('ssm:'))).toEqual(['ssm:DescribeParameters', 'ssm:GetParameter', 'ssm:GetParameterHistory', 'ssm:GetParameters', 'ssm:PutParameter']);
    expect(actions).toContain('cloudformation:DescribeStacks');
    expect(actions).toContain('dynamodb:Query');
    for (const statement of statementsOfRole(template, roles.pusher)) {
      if (asArray(statement.Action).some((a) => a.startsWith('ssm:'))) expect(statement.Resource).toEqual(parameterArn);
      expect(asArray(statement.Resource)).not.toContain('*');
      for (const action of asArray(statement.Action)) expect(action).not.toMatch(/\*/);
    }
    // Nothing that writes the history, the objects or the queues.
    expect(actions.filter((a) => /^(dynamodb:(Put|Update|Delete|BatchWrite)|s3:|sqs:)/.test(a))).toEqual([]);
  });

  it('operators and auditors cannot change the live policy', () => {
    expect(actionsOfRole(template, roles.operator).filter((a) => a.startsWith('ssm:'))).toEqual([]);
    expect(actionsOfRole(template, roles.auditor).filter((a) => a.startsWith('ssm:'))).toEqual([]);
  });
});
