/**
 * Acknowledging cdk-nag findings (cdk-nag 3 reads CDK's native `Validations.of(...).acknowledge`).
 *
 * Each IAM5 finding names the exact wildcard resource (`AwsSolutions-IAM5[Resource::<Bucket.Arn>/uploads/*]`),
 * so the helpers below build that id from the same token the grant used: an acknowledgement never
 * covers more than the one wildcard it was written for, and it breaks (the finding reappears) if the
 * grant changes. No cdk-nag import here: the construct does not depend on cdk-nag.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Acknowledges one cdk-nag rule (or one finding of it, `Rule[Finding]`) on a construct and everything under it. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** Acknowledges AwsSolutions-IAM5 for exactly one wildcard resource (an ARN string, tokens allowed). */
export function acknowledgeWildcardResource(scope: IConstruct, resource: string, reason: string): void {
  acknowledge(scope, `AwsSolutions-IAM5[Resource::${nagResourceName(scope, resource)}]`, reason);
}

/** The resource as cdk-nag prints it in a finding: intrinsics flattened to `<LogicalId.Attr>` / `<Ref>`. */
export function nagResourceName(scope: IConstruct, resource: string): string {
  return flatten(Stack.of(scope).resolve(resource));
}

function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const value = node as Record<string, unknown>;
  if (Array.isArray(value['Fn::Join'])) {
    const [delimiter, items] = value['Fn::Join'] as [string, unknown[]];
    return items.map(flatten).join(delimiter);
  }
  if (value['Fn::Sub'] !== undefined) return flatten(value['Fn::Sub']);
  if (Array.isArray(value['Fn::GetAtt'])) {
    const [resource, attribute] = value['Fn::GetAtt'] as [unknown, unknown];
    return `<${flatten(resource)}.${flatten(attribute)}>`;
  }
  if (value['Fn::ImportValue'] !== undefined) return flatten(value['Fn::ImportValue']);
  if (value.Ref !== undefined) return `<${flatten(value.Ref)}>`;
  return JSON.stringify(node);
}
