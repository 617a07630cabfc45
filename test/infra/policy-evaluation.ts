/**
 * A small evaluator of the explicit Deny statements of a synthesized bucket policy, enough to ask
 * "would S3 refuse this request because of the bucket policy?" in tests: IAM's rules for the
 * condition operators the construct uses (a missing key makes a negated operator true and a
 * ForAnyValue operator false), wildcards in actions and resources, and the intrinsics CDK writes
 * for ARNs turned into concrete ARNs. An operator it does not know fails the test instead of
 * guessing. Allow statements are not evaluated: what is not denied here is up to IAM.
 */
import type { Statement } from './helpers.ts';

export const ACCOUNT = '111122223333';

/** A request as the bucket policy sees it. */
export interface S3Request {
  action: string;
  /** The object's ARN (or the bucket's). */
  resource: string;
  /** aws:PrincipalArn; absent for anonymous requests and service principals such as CloudFront's. */
  principalArn?: string;
  /** The object version's tags (s3:ExistingObjectTag/<key>). */
  existingObjectTags?: Record<string, string>;
  /** Tag keys the request writes (s3:RequestObjectTagKeys: x-amz-tagging, PutObjectTagging). */
  requestObjectTagKeys?: string[];
  secureTransport?: boolean;
}

type Resources = Record<string, { Type: string; Properties?: Record<string, any> }>;

/** Concrete values for the intrinsics CDK writes: a role's Arn, a bucket's Arn or name. */
export function concrete(value: unknown, resources: Resources): unknown {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => concrete(v, resources));
  const v = value as Record<string, unknown>;
  if (v['Fn::Join']) {
    const [delimiter, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => String(concrete(p, resources))).join(delimiter);
  }
  if (v['Fn::GetAtt']) {
    const [id, attribute] = v['Fn::GetAtt'] as [string, string];
    const type = resources[id]?.Type;
    if (attribute === 'Arn' && type === 'AWS::IAM::Role') return roleArn(id);
    if (attribute === 'Arn' && type === 'AWS::S3::Bucket') return `arn:aws:s3:::${bucketName(id)}`;
    throw new Error(`no concrete value for ${id}.${attribute} (${type})`);
  }
  if (v.Ref !== undefined) {
    if (v.Ref === 'AWS::Partition') return 'aws';
    if (v.Ref === 'AWS::AccountId') return ACCOUNT;
    if (v.Ref === 'AWS::Region') return 'us-east-1';
    if (resources[v.Ref as string]?.Type === 'AWS::S3::Bucket') return bucketName(v.Ref as string);
    throw new Error(`no concrete value for Ref ${String(v.Ref)}`);
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, concrete(x, resources)]));
}

export const roleArn = (logicalId: string) => `arn:aws:iam::${ACCOUNT}:role/${logicalId}`;
export const bucketName = (logicalId: string) => `bucket-${logicalId.toLowerCase()}`;

/** The Deny statements of a policy that apply to the request: empty when the policy denies nothing. */
export function denyingStatements(statements: Statement[], request: S3Request): Statement[] {
  return statements.filter(
    (s) =>
      s.Effect === 'Deny' &&
      principalIsEveryone((s as { Principal?: unknown }).Principal) &&
      asList(s.Action).some((a) => matches(String(a), request.action)) &&
      asList(s.Resource).some((r) => matches(String(r), request.resource)) &&
      conditionsHold(s.Condition as Record<string, Record<string, unknown>> | undefined, request),
  );
}

function principalIsEveryone(principal: unknown): boolean {
  if (principal === '*') return true;
  const aws = (principal as { AWS?: unknown } | undefined)?.AWS;
  if (aws !== '*') throw new Error(`the evaluator only knows Principal "*" in a Deny, got ${JSON.stringify(principal)}`);
  return true;
}

function conditionsHold(condition: Record<string, Record<string, unknown>> | undefined, request: S3Request): boolean {
  if (!condition) return true;
  return Object.entries(condition).every(([operator, keys]) => Object.entries(keys).every(([key, expected]) => holds(operator, key, asList(expected).map(String), request)));
}

function holds(operator: string, key: string, expected: string[], request: S3Request): boolean {
  const value = contextValue(key, request);
  switch (operator) {
    case 'StringEquals':
      return typeof value === 'string' && expected.includes(value);
    case 'StringNotEquals':
      // A negated operator is true when the key is missing.
      return typeof value !== 'string' || !expected.includes(value);
    case 'ArnEquals':
      return typeof value === 'string' && expected.includes(value);
    case 'ArnNotEquals':
      return typeof value !== 'string' || !expected.includes(value);
    case 'ArnNotLike':
      return typeof value !== 'string' || !expected.some((pattern) => matches(pattern, value));
    case 'ForAnyValue:StringLike':
      // A ForAnyValue operator is false when the key is missing or empty.
      return Array.isArray(value) && value.some((item) => expected.some((pattern) => matches(pattern, item)));
    case 'Bool':
      return typeof value === 'string' && expected.includes(value);
    default:
      throw new Error(`the evaluator does not know the condition operator ${operator}`);
  }
}

function contextValue(key: string, request: S3Request): string | string[] | undefined {
  if (key === 'aws:PrincipalArn') return request.principalArn;
  if (key === 'aws:SecureTransport') return String(request.secureTransport ?? true);
  if (key === 's3:RequestObjectTagKeys') return request.requestObjectTagKeys;
  const tag = /^s3:ExistingObjectTag\/(.+)$/.exec(key);
  if (tag) return request.existingObjectTags?.[tag[1]];
  throw new Error(`the evaluator does not know the condition key ${key}`);
}

/** IAM's wildcards: `*` any run of characters, `?` one. */
function matches(pattern: string, value: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return regex.test(value);
}

const asList = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
