/**
 * The serving gate (docs/architecture.md, invariant 7): the uploads bucket's policy lets nobody but
 * the pipeline, the moderators and the people granted review or operate read an object under the
 * prefix before its moderation-status tag says APPROVED, and lets nobody but the apply step and the
 * reviewers write a moderation-* tag. Asserted on the statements (shape) and by evaluating them
 * (policy-evaluation.ts) against the requests of each kind of principal: uploaders, the platform's
 * readers, CloudFront with Origin Access Control, the pipeline's functions, people.
 */
import { describe, expect, it } from 'vitest';
import { Stack, type CfnElement } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { PIPELINE_TAG_PREFIX, STATUS_TAG, withDecisionTags } from '../../functions/lib/tags.ts';
import { ModerationPipeline, type ModerationPipelineProps } from '../../infra/moderation-pipeline.ts';
import { asArray, iamStatements, resourcesOf, testApp, type Statement } from './helpers.ts';
import { bucketName, concrete, denyingStatements, roleArn, type S3Request } from './policy-evaluation.ts';

function build(props: ModerationPipelineProps = {}, people = true) {
  const stack = new Stack(testApp(), 'Gate');
  const person = (name: string) => new iam.Role(stack, name, { assumedBy: new iam.AccountRootPrincipal() });
  const moderator = person('Moderator');
  const pipeline = new ModerationPipeline(stack, 'Pipeline', { moderators: [moderator], ...props });
  const roles = { auditor: person('Auditor'), reviewer: person('Reviewer'), operator: person('Operator'), moderator, uploader: person('Uploader'), reader: person('Reader') };
  if (people) {
    pipeline.grantAudit(roles.auditor);
    pipeline.grantReview(roles.reviewer);
    pipeline.grantOperate(roles.operator);
  }
  const template = Template.fromStack(stack);
  const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, any> }> };
  const idOf = (construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement);
  const arnOf = (role: iam.IRole) => roleArn(idOf(role as never));
  const fnArn = (step: keyof ModerationPipeline['functions']) => arnOf(pipeline.functions[step].role!);
  return { stack, pipeline, template, json, idOf, roles, arnOf, fnArn };
}

const { pipeline, template, json, idOf, roles, arnOf, fnArn } = build();
const uploadsId = idOf(pipeline.uploadsBucket as never);
const bucketArn = `arn:aws:s3:::${bucketName(uploadsId)}`;
const object = (key: string) => `${bucketArn}/${key}`;

/** The uploads bucket's policy statements, with concrete ARNs. */
function policyOf(built: { json: { Resources: Record<string, { Type: string; Properties: Record<string, any> }> } }, bucketId: string): Statement[] {
  const policies = Object.values(built.json.Resources).filter((r) => r.Type === 'AWS::S3::BucketPolicy' && JSON.stringify(r.Properties.Bucket) === JSON.stringify({ Ref: bucketId }));
  expect(policies).toHaveLength(1);
  return concrete(policies[0].Properties.PolicyDocument.Statement, built.json.Resources) as Statement[];
}
const statements = policyOf({ json }, uploadsId);
const denied = (request: S3Request) => denyingStatements(statements, request).length > 0;
const bySid = (sid: string) => statements.find((s) => (s as { Sid?: string }).Sid === sid)!;

const GETS = ['s3:GetObject', 's3:GetObjectVersion'] as const;
const untagged = {};
const tagged = (status: string) => ({ [STATUS_TAG]: status, 'moderation-job': 'j'.repeat(40) });

describe('the statements', () => {
  it('deny GetObject and GetObjectVersion under the prefix unless moderation-status is APPROVED, to all but the exempt principals', () => {
    expect(bySid('ServeOnlyApprovedObjects')).toEqual({
      Sid: 'ServeOnlyApprovedObjects',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: ['s3:GetObject', 's3:GetObjectVersion'],
      Resource: `${bucketArn}/uploads/*`,
      Condition: {
        StringNotEquals: { 's3:ExistingObjectTag/moderation-status': 'APPROVED' },
        ArnNotEquals: { 'aws:PrincipalArn': expect.any(Array) },
      },
    });
  });

  it('exempt from it: detect (Rekognition reads with its credentials), review, apply, the moderators, reviewers and operators; nobody else', () => {
    const exempt = (bySid('ServeOnlyApprovedObjects').Condition as any).ArnNotEquals['aws:PrincipalArn'] as string[];
    expect([...exempt].sort()).toEqual(
      [fnArn('detect'), fnArn('review'), fnArn('apply'), arnOf(roles.moderator), arnOf(roles.reviewer), arnOf(roles.operator)].sort(),
    );
  });

  it('deny writing any moderation-* tag anywhere in the bucket (PutObject with tags, PutObject(Version)Tagging) to all but apply and reviewers', () => {
    expect(bySid('OnlyThePipelineWritesModerationTags')).toEqual({
      Sid: 'OnlyThePipelineWritesModerationTags',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: ['s3:PutObject', 's3:PutObjectTagging', 's3:PutObjectVersionTagging'],
      Resource: `${bucketArn}/*`,
      Condition: {
        'ForAnyValue:StringLike': { 's3:RequestObjectTagKeys': [`${PIPELINE_TAG_PREFIX}*`] },
        ArnNotEquals: { 'aws:PrincipalArn': expect.any(Array) },
      },
    });
    const exempt = (bySid('OnlyThePipelineWritesModerationTags').Condition as any).ArnNotEquals['aws:PrincipalArn'] as string[];
    expect([...exempt].sort()).toEqual([fnArn('apply'), arnOf(roles.reviewer)].sort());
  });

  it('break no grant of the construct: every role allowed to read objects under the prefix may read them before approval, every role allowed to tag them may tag', () => {
    const uploadsObjects = JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [uploadsId, 'Arn'] }, '/uploads/*']] });
    const allowedTo = (action: string) =>
      iamStatements(template)
        .filter(({ statement }) => statement.Effect === 'Allow' && asArray(statement.Action).includes(action) && asArray(statement.Resource).some((r) => JSON.stringify(r) === uploadsObjects))
        .flatMap(({ roles: attached }) => (attached as { Ref: string }[]).map((ref) => roleArn(ref.Ref)));
    const readers = allowedTo('s3:GetObject');
    const taggers = allowedTo('s3:PutObjectTagging');
    expect(readers.length).toBeGreaterThanOrEqual(5);
    expect(taggers.length).toBeGreaterThanOrEqual(2);
    for (const principalArn of readers) expect(denied({ action: 's3:GetObject', resource: object('uploads/u/a.jpg'), principalArn }), principalArn).toBe(false);
    for (const principalArn of taggers) {
      expect(denied({ action: 's3:PutObjectTagging', resource: object('uploads/u/a.jpg'), principalArn, requestObjectTagKeys: [STATUS_TAG] }), principalArn).toBe(false);
    }
  });

  it('name the tag the apply step writes (functions/lib/tags.ts)', () => {
    const { tags } = withDecisionTags([], 'APPROVED', 'j'.repeat(40));
    expect(tags).toContainEqual({ Key: STATUS_TAG, Value: 'APPROVED' });
    for (const tag of tags) expect(tag.Key.startsWith(PIPELINE_TAG_PREFIX)).toBe(true);
  });
});

describe('reading an object under the prefix', () => {
  const key = object('uploads/gina/photo.jpg');
  const uploader = () => arnOf(roles.uploader);

  it.each(GETS)('%s by the uploader (or any role of the platform) is refused until the object is APPROVED', (action) => {
    expect(denied({ action, resource: key, principalArn: uploader(), existingObjectTags: untagged })).toBe(true);
    for (const status of ['REVIEW', 'REJECTED', 'UNUSABLE', 'FAILED', 'approved']) {
      expect(denied({ action, resource: key, principalArn: uploader(), existingObjectTags: tagged(status) }), status).toBe(true);
    }
    expect(denied({ action, resource: key, principalArn: uploader(), existingObjectTags: tagged('APPROVED') })).toBe(false);
  });

  it('a reader role signing presigned URLs serves APPROVED objects only; an auditor is no exception', () => {
    for (const principalArn of [arnOf(roles.reader), arnOf(roles.auditor)]) {
      expect(denied({ action: 's3:GetObject', resource: key, principalArn, existingObjectTags: untagged })).toBe(true);
      expect(denied({ action: 's3:GetObject', resource: key, principalArn, existingObjectTags: tagged('APPROVED') })).toBe(false);
    }
  });

  it('CloudFront with Origin Access Control (a service principal: no aws:PrincipalArn) and anonymous requests get APPROVED objects only', () => {
    expect(denied({ action: 's3:GetObject', resource: key, existingObjectTags: untagged })).toBe(true);
    expect(denied({ action: 's3:GetObject', resource: key, existingObjectTags: tagged('REVIEW') })).toBe(true);
    expect(denied({ action: 's3:GetObject', resource: key, existingObjectTags: tagged('APPROVED') })).toBe(false);
  });

  it('the APPROVED tag counts even on an object whose uploader filled S3\'s ten tags (the apply step keeps the status tag)', () => {
    const own = Array.from({ length: 10 }, (_, i) => ({ Key: `own-${i}`, Value: 'x' }));
    const { tags } = withDecisionTags(own, 'APPROVED', 'j'.repeat(40));
    expect(tags).toHaveLength(10);
    expect(denied({ action: 's3:GetObject', resource: key, principalArn: uploader(), existingObjectTags: Object.fromEntries(tags.map((t) => [t.Key, t.Value])) })).toBe(false);
  });

  it.each(GETS)('%s by detect, review and apply, the moderators, reviewers and operators works before any decision', (action) => {
    for (const principalArn of [fnArn('detect'), fnArn('review'), fnArn('apply'), arnOf(roles.moderator), arnOf(roles.reviewer), arnOf(roles.operator)]) {
      expect(denied({ action, resource: key, principalArn, existingObjectTags: untagged }), principalArn).toBe(false);
    }
  });

  it('the functions that never read objects are not exempt', () => {
    for (const step of ['ingest', 'record', 'fail'] as const) {
      expect(denied({ action: 's3:GetObject', resource: key, principalArn: fnArn(step), existingObjectTags: untagged }), step).toBe(true);
    }
  });

  it('objects outside the moderated prefix are not gated', () => {
    expect(denied({ action: 's3:GetObject', resource: object('static/logo.png'), principalArn: uploader(), existingObjectTags: untagged })).toBe(false);
  });

  it('the gate does not touch listing or tag reads', () => {
    expect(denied({ action: 's3:ListBucket', resource: bucketArn, principalArn: uploader() })).toBe(false);
    expect(denied({ action: 's3:GetObjectTagging', resource: key, principalArn: uploader(), existingObjectTags: untagged })).toBe(false);
  });
});

describe("writing the pipeline's tags", () => {
  const key = object('uploads/gina/photo.jpg');
  const uploader = () => arnOf(roles.uploader);

  it('an uploader cannot upload an object tagged moderation-status=APPROVED (or any moderation-* tag)', () => {
    for (const keys of [[STATUS_TAG], ['moderation-job'], ['team', 'moderation-status'], ['moderation-anything']]) {
      expect(denied({ action: 's3:PutObject', resource: key, principalArn: uploader(), requestObjectTagKeys: keys }), keys.join(',')).toBe(true);
    }
  });

  it('an uploader may still upload, with no tags or with its own', () => {
    expect(denied({ action: 's3:PutObject', resource: key, principalArn: uploader() })).toBe(false);
    expect(denied({ action: 's3:PutObject', resource: key, principalArn: uploader(), requestObjectTagKeys: ['team', 'Moderation'] })).toBe(false);
  });

  it.each(['s3:PutObjectTagging', 's3:PutObjectVersionTagging'])('%s with a moderation-* key is refused to uploaders, operators and moderators', (action) => {
    for (const principalArn of [uploader(), arnOf(roles.operator), arnOf(roles.moderator), fnArn('detect')]) {
      expect(denied({ action, resource: key, principalArn, requestObjectTagKeys: [STATUS_TAG] }), principalArn).toBe(true);
    }
  });

  it('also outside the prefix: no object in the bucket can carry a forged status into the prefix by a copy with its tags', () => {
    expect(denied({ action: 's3:PutObject', resource: object('staging/x.jpg'), principalArn: uploader(), requestObjectTagKeys: [STATUS_TAG] })).toBe(true);
    expect(denied({ action: 's3:PutObjectTagging', resource: object('staging/x.jpg'), principalArn: uploader(), requestObjectTagKeys: [STATUS_TAG] })).toBe(true);
  });

  it('the apply step and reviewers (review approve|reject runs the same code) may tag', () => {
    for (const principalArn of [fnArn('apply'), arnOf(roles.reviewer)]) {
      expect(denied({ action: 's3:PutObjectTagging', resource: key, principalArn, requestObjectTagKeys: [STATUS_TAG, 'moderation-job'] }), principalArn).toBe(false);
    }
  });
});

describe('options', () => {
  it('servingGate: false leaves only the TLS statement, and grants add nothing', () => {
    const off = build({ servingGate: false });
    const policy = policyOf(off, off.idOf(off.pipeline.uploadsBucket as never));
    expect(policy).toHaveLength(1);
    expect(policy[0]).toMatchObject({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
    expect(off.pipeline.servingGateStatements).toEqual([]);
    expect(JSON.stringify(off.json)).not.toContain('ExistingObjectTag');
    Annotations.fromStack(off.stack).hasNoWarning('*', Match.stringLikeRegexp('serving gate'));
  });

  it('with the whole bucket moderated (prefix ""), the read gate covers every key', () => {
    const whole = build({ uploadsPrefix: '', uploaderPattern: '{uploader}/' });
    const read = policyOf(whole, whole.idOf(whole.pipeline.uploadsBucket as never)).find((s) => (s as { Sid?: string }).Sid === 'ServeOnlyApprovedObjects')!;
    expect(read.Resource).toBe(`arn:aws:s3:::${bucketName(whole.idOf(whole.pipeline.uploadsBucket as never))}/*`);
  });

  it('an adopted bucket keeps its owner\'s policy: no bucket policy is created, a synth warning says the gate is not in place, and the statements are offered', () => {
    const stack = new Stack(testApp(), 'Adopted');
    const existing = s3.Bucket.fromBucketName(stack, 'Existing', 'existing-uploads');
    const adopted = new ModerationPipeline(stack, 'Pipeline', { uploadsBucket: existing });
    const reviewer = new iam.Role(stack, 'Reviewer', { assumedBy: new iam.AccountRootPrincipal() });
    adopted.grantReview(reviewer);
    const t = Template.fromStack(stack);
    for (const policy of Object.values(resourcesOf(t, 'AWS::S3::BucketPolicy'))) expect(policy.Properties!.Bucket).not.toBe('existing-uploads');
    Annotations.fromStack(stack).hasWarning('/Adopted/Pipeline', Match.stringLikeRegexp('serving gate .* is NOT in place'));
    // What the owner adds to the bucket's policy: the same two statements, reviewers included.
    const offered = stack.resolve(adopted.servingGateStatements.map((s) => s.toStatementJson()));
    expect(offered.map((s: { Sid: string }) => s.Sid)).toEqual(['ServeOnlyApprovedObjects', 'OnlyThePipelineWritesModerationTags']);
    expect(JSON.stringify(offered[0].Resource)).toContain(':s3:::existing-uploads/uploads/*');
    expect(offered[1].Condition.ArnNotEquals['aws:PrincipalArn']).toContainEqual({ 'Fn::GetAtt': [stack.getLogicalId(reviewer.node.defaultChild as CfnElement), 'Arn'] });
  });

  it('a group cannot be named by aws:PrincipalArn: granting it review warns', () => {
    const built = build({}, false);
    built.pipeline.grantReview(new iam.Group(built.stack, 'Reviewers'));
    Annotations.fromStack(built.stack).hasWarning('/Gate/Pipeline', Match.stringLikeRegexp('Reviewers is not a role or a user'));
  });
});
