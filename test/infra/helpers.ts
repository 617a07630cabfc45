/**
 * Shared setup of the infrastructure tests: an App with cdk.json's context (a `new App()` in a test
 * ignores cdk.json), bundling skipped (esbuild + npm are the CI synth's job) and CloudFormation's
 * built-in validation off (seconds per synth; the CI synth keeps it).
 */
import { readFileSync } from 'node:fs';
import { App, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ModerationStack, type ModerationStackProps } from '../../infra/moderation-stack.ts';

export const CDK_JSON = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
  app: string;
  notices: boolean;
  context: Record<string, unknown>;
};

export function testApp(context: Record<string, unknown> = {}): App {
  return new App({
    context: { ...CDK_JSON.context, 'aws:cdk:bundling-stacks': [], ...context },
    builtinCloudFormationValidation: false,
  });
}

export interface Synthesized {
  app: App;
  stack: ModerationStack;
  template: Template;
}

export function synthStack(props: ModerationStackProps = {}, id = 'TestModeration'): Synthesized {
  const app = testApp();
  const stack = new ModerationStack(app, id, props);
  return { app, stack, template: Template.fromStack(stack) };
}

export type Resource = { Type: string; Properties?: Record<string, any>; DependsOn?: string[] };

/** Every resource of a type, by logical id. */
export function resourcesOf(template: Template, type: string): Record<string, Resource> {
  return template.findResources(type) as Record<string, Resource>;
}

/** The single resource of a type whose logical id starts with a prefix (CDK appends a hash). */
export function logicalIdOf(stack: Stack, construct: { node: { defaultChild?: unknown } } | unknown): string {
  const child = (construct as { node: { defaultChild?: unknown } }).node.defaultChild ?? construct;
  return stack.getLogicalId(child as never);
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

/** All IAM statements of the template (inline role policies and AWS::IAM::Policy), with where they are. */
export function iamStatements(template: Template): { policy: string; roles: unknown; statement: Statement }[] {
  const out: { policy: string; roles: unknown; statement: Statement }[] = [];
  for (const [id, policy] of Object.entries(resourcesOf(template, 'AWS::IAM::Policy'))) {
    for (const statement of policy.Properties!.PolicyDocument.Statement as Statement[]) out.push({ policy: id, roles: policy.Properties!.Roles, statement });
  }
  for (const [id, role] of Object.entries(resourcesOf(template, 'AWS::IAM::Role'))) {
    for (const inline of (role.Properties?.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[]) {
      for (const statement of inline.PolicyDocument.Statement) out.push({ policy: id, roles: [{ Ref: id }], statement });
    }
  }
  return out;
}

export const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** The statements of the policies attached to one role (by the role's logical id). */
export function statementsOfRole(template: Template, roleLogicalId: string): Statement[] {
  return iamStatements(template)
    .filter(({ roles }) => JSON.stringify(roles ?? []).includes(JSON.stringify({ Ref: roleLogicalId })))
    .map(({ statement }) => statement);
}

/** The sorted, de-duplicated actions a role is allowed. */
export function actionsOfRole(template: Template, roleLogicalId: string): string[] {
  return [...new Set(statementsOfRole(template, roleLogicalId).filter((s) => s.Effect === 'Allow').flatMap((s) => asArray(s.Action)))].sort();
}
