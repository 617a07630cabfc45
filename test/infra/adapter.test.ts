/**
 * Custom moderation adapters in the template (issue 11, section 4): an alarm on AdapterExpired (the
 * detect step's metric when Rekognition answered a policy's adapter with the base model), and the
 * detect role's DetectModerationLabels grant. Its only resource type is `projectversion`, optional
 * (Service Authorization Reference): a call without an adapter is authorized on "*", and "*" covers
 * whatever adapter a (live) policy names, so the grant stays "*".
 */
import { describe, expect, it } from 'vitest';
import type { CfnElement } from 'aws-cdk-lib';
import { asArray, resourcesOf, statementsOfRole, synthStack } from './helpers.ts';

const { stack, template } = synthStack({}, 'AdapterAlarm');
const pipeline = stack.pipeline;

describe('custom moderation adapters', () => {
  it('alarms on AdapterExpired: one expired answer in 5 minutes, missing data is fine', () => {
    const alarms = Object.entries(resourcesOf(template, 'AWS::CloudWatch::Alarm')).filter(([, a]) => a.Properties!.MetricName === 'AdapterExpired');
    expect(alarms).toHaveLength(1);
    const [id, alarm] = alarms[0]!;
    expect(id).toBe(stack.getLogicalId(pipeline.alarms.adapterExpired.node.defaultChild as CfnElement));
    expect(alarm.Properties).toMatchObject({
      Namespace: 'UploadModeration',
      Dimensions: [{ Name: 'service', Value: 'moderation' }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
    expect(alarm.Properties!.AlarmDescription).toMatch(/adapter that has expired.*projectVersion/);
  });

  it('alarms on PolicyFallbacks: the live policy could not be read and the last good copy is in force', () => {
    const alarms = Object.entries(resourcesOf(template, 'AWS::CloudWatch::Alarm')).filter(([, a]) => a.Properties!.MetricName === 'PolicyFallbacks');
    expect(alarms).toHaveLength(1);
    const [id, alarm] = alarms[0]!;
    expect(id).toBe(stack.getLogicalId(pipeline.alarms.policyFallbacks.node.defaultChild as CfnElement));
    expect(alarm.Properties).toMatchObject({ Namespace: 'UploadModeration', Dimensions: [{ Name: 'service', Value: 'moderation' }], Statistic: 'Sum', Threshold: 1, EvaluationPeriods: 1 });
    expect(alarm.Properties!.AlarmDescription).toMatch(/last good copy/);
  });

  it('detect may call DetectModerationLabels on "*": with or without an adapter', () => {
    const roleId = stack.getLogicalId(pipeline.functions.detect.role!.node.defaultChild as CfnElement);
    const moderation = statementsOfRole(template, roleId).filter((s) => asArray(s.Action).includes('rekognition:DetectModerationLabels'));
    expect(moderation).toHaveLength(1);
    expect(moderation[0]!.Resource).toBe('*');
    expect(moderation[0]!.Effect).toBe('Allow');
    expect(moderation[0]!.Condition).toBeUndefined();
  });
});
