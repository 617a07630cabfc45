/**
 * The analyses in the template (docs/architecture.md, "Labels, text and faces"): the detect role gets
 * DetectLabels / DetectFaces / DetectText for the analyses the deployment enables and nothing for the
 * others; no other role gets any; ANALYSIS_ENABLED tells the detect step (which refuses a policy that
 * needs more); the stack outputs it for `moderation policy validate --stack` and `policy push`.
 */
import { describe, expect, it } from 'vitest';
import type { CfnElement } from 'aws-cdk-lib';
import { asArray, resourcesOf, statementsOfRole, synthStack, testApp } from './helpers.ts';
import { ModerationStack } from '../../infra/moderation-stack.ts';

const ANALYSIS_ACTIONS = ['rekognition:DetectLabels', 'rekognition:DetectFaces', 'rekognition:DetectText'];

function analysisGrants(options: ConstructorParameters<typeof ModerationStack>[2], id: string) {
  const { stack, template } = synthStack(options, id);
  const functions = stack.pipeline.functions as unknown as Record<string, { role?: { node: { defaultChild: unknown } }; node: { defaultChild: unknown } }>;
  const byFunction: Record<string, string[]> = {};
  for (const [name, fn] of Object.entries(functions)) {
    if (!fn.role) continue;
    const roleId = stack.getLogicalId(fn.role.node.defaultChild as CfnElement);
    byFunction[name] = statementsOfRole(template, roleId).flatMap((s) => asArray(s.Action) as string[]).filter((action) => ANALYSIS_ACTIONS.includes(action)).sort();
  }
  const detect = Object.values(resourcesOf(template, 'AWS::Lambda::Function')).find((f) => f.Properties!.Description?.startsWith('Detect step'))!;
  const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
  return { byFunction, env: detect.Properties!.Environment.Variables as Record<string, string>, output: outputs.AnalysisEnabled!.Value };
}

describe('analysis grants', () => {
  it('by default: what the policy needs; the standard preset\'s child-safety rule needs DetectFaces, nothing else', () => {
    const { byFunction, env, output } = analysisGrants({}, 'AnalysisDefault');
    expect(byFunction.detect).toEqual(['rekognition:DetectFaces']);
    for (const [name, actions] of Object.entries(byFunction)) if (name !== 'detect') expect(actions, name).toEqual([]);
    expect(env.ANALYSIS_ENABLED).toBe('faces');
    expect(output).toBe('faces');
  });

  it('only the enabled APIs, to detect only', () => {
    const { byFunction, env } = analysisGrants({ pipeline: { analysis: { labels: true, text: true } } }, 'AnalysisLabelsText');
    expect(byFunction.detect).toEqual(['rekognition:DetectFaces', 'rekognition:DetectLabels', 'rekognition:DetectText']);
    expect(env.ANALYSIS_ENABLED).toBe('labels,faces,text');
    for (const [name, actions] of Object.entries(byFunction)) if (name !== 'detect') expect(actions, name).toEqual([]);
  });

  it('nothing for a policy without analysis rules; faces off is refused at synth when the policy needs them', () => {
    const plain = JSON.stringify({ name: 'plain', rules: { Explicit: { reject: 80, review: 50 } } });
    const { byFunction, env, output } = analysisGrants({ pipeline: { policy: plain } }, 'AnalysisNone');
    expect(byFunction.detect).toEqual([]);
    expect(env.ANALYSIS_ENABLED).toBe('none');
    expect(output).toBe('none');
    expect(() => new ModerationStack(testApp(), 'AnalysisRefused', { pipeline: { analysis: { faces: false } } })).toThrow(
      /analysis: policy "standard" needs faces \(DetectFaces: the child-safety rule or analysis\.faces\), which the analysis prop does not enable/,
    );
  });
});
