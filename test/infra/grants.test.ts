/**
 * Access for the people around the pipeline (DESIGN.md "Who uses it"): grantAudit, grantReview and
 * grantOperate, asserted on the IAM policies they put on a role — what each CLI command calls is
 * allowed, and nothing that would let an auditor change history or a reviewer erase it.
 */
import { describe, expect, it } from 'vitest';
import type { CfnElement } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { ModerationStack, type ModerationStackProps } from '../../infra/moderation-stack.ts';
import { actionsOfRole, asArray, statementsOfRole, testApp } from './helpers.ts';

function stackWithPeople(props: ModerationStackProps = {}, id = 'PeopleAccess') {
  const stack = new ModerationStack(testApp(), id, props);
  const person = (name: string) => new iam.Role(stack, name, { assumedBy: new iam.AccountRootPrincipal() });
  const auditor = person('Auditor');
  const reviewer = person('Reviewer');
  const operator = person('Operator');
  const grants = {
    audit: stack.pipeline.grantAudit(auditor),
    review: stack.pipeline.grantReview(reviewer),
    operate: stack.pipeline.grantOperate(operator),
  };
  const template = Template.fromStack(stack);
  const idOf = (construct: { node: { defaultChild?: unknown } }): string => stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement);
  return { stack, template, grants, idOf, roles: { auditor: idOf(auditor), reviewer: idOf(reviewer), operator: idOf(operator) } };
}

const { stack, template, grants, idOf, roles } = stackWithPeople();
const pipeline = stack.pipeline;
const table = { 'Fn::GetAtt': [idOf(pipeline.decisionHistory), 'Arn'] };
const tableIndexes = { 'Fn::Join': ['', [table, '/index/*']] };
const uploadsBucket = { 'Fn::GetAtt': [idOf(pipeline.uploadsBucket as never), 'Arn'] };
const uploadsObjects = { 'Fn::Join': ['', [uploadsBucket, '/uploads/*']] };
const quarantineBucket = { 'Fn::GetAtt': [idOf(pipeline.quarantineBucket), 'Arn'] };
const quarantineObjects = { 'Fn::Join': ['', [quarantineBucket, '/', { Ref: idOf(pipeline.uploadsBucket as never) }, '/uploads/*']] };
const deadLetterQueue = { 'Fn::GetAtt': [idOf(pipeline.deadLetterQueue), 'Arn'] };
const intakeQueue = { 'Fn::GetAtt': [idOf(pipeline.intakeQueue), 'Arn'] };

/** Asserts that the role's policy holds a statement like this one. */
function allows(roleId: string, statement: Record<string, unknown>): void {
  template.hasResourceProperties('AWS::IAM::Policy', {
    Roles: [{ Ref: roleId }],
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Allow', ...statement })]) },
  });
}

const WRITES = /^(dynamodb:(PutItem|UpdateItem|DeleteItem|BatchWriteItem|PartiQL(Insert|Update|Delete))|s3:(Put|Delete|Restore|Replicate)|sqs:(SendMessage|DeleteMessage|PurgeQueue|StartMessageMoveTask|ChangeMessageVisibility))/;
const writesOf = (roleId: string) => actionsOfRole(template, roleId).filter((action) => WRITES.test(action));
/** The resources a role's statements with any of these actions name. */
const resourcesFor = (roleId: string, action: string) =>
  statementsOfRole(template, roleId)
    .filter((s) => asArray(s.Action).includes(action))
    .flatMap((s) => asArray(s.Resource));

describe('every grant', () => {
  it.each([
    ['audit', 'auditor'],
    ['review', 'reviewer'],
    ['operate', 'operator'],
  ] as const)('%s lands in the policy of the %s role', (grant, role) => {
    expect(grants[grant].success).toBe(true);
    expect(grants[grant].principalStatements.length).toBeGreaterThan(0);
    expect(actionsOfRole(template, roles[role]).length).toBeGreaterThan(0);
  });

  it.each(Object.values(roles))("lets %s read this stack's outputs only (the CLI's --stack)", (role) => {
    allows(role, { Action: 'cloudformation:DescribeStacks', Resource: { Ref: 'AWS::StackId' } });
    expect(actionsOfRole(template, role).filter((a) => a.startsWith('cloudformation:'))).toEqual(['cloudformation:DescribeStacks']);
  });

  it('never allows an action wildcard or Resource "*"', () => {
    for (const role of Object.values(roles)) {
      for (const statement of statementsOfRole(template, role)) {
        for (const action of asArray(statement.Action)) expect(action, role).not.toMatch(/\*/);
        expect(asArray(statement.Resource), role).not.toContain('*');
      }
    }
  });
});

describe('grantAudit', () => {
  it('reads the decision history: GetItem, Query and BatchGetItem on the table and its indexes', () => {
    allows(roles.auditor, {
      Action: Match.arrayWith(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query']),
      Resource: [table, tableIndexes],
    });
  });

  it('gets no write action at all, and nothing beyond the table and the stack outputs', () => {
    expect(writesOf(roles.auditor)).toEqual([]);
    const services = new Set(actionsOfRole(template, roles.auditor).map((a) => a.split(':')[0]));
    expect([...services].sort()).toEqual(['cloudformation', 'dynamodb']);
  });
});

describe('grantReview', () => {
  it('reads the decision history (review list queries the status index)', () => {
    allows(roles.reviewer, {
      Action: Match.arrayWith(['dynamodb:GetItem', 'dynamodb:Query']),
      Resource: [table, tableIndexes],
    });
  });

  it('appends a human decision with PutItem on the table, and may not delete or update one', () => {
    allows(roles.reviewer, { Action: 'dynamodb:PutItem', Resource: table });
    const actions = actionsOfRole(template, roles.reviewer);
    for (const forbidden of ['dynamodb:DeleteItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem']) expect(actions).not.toContain(forbidden);
    expect(writesOf(roles.reviewer).filter((a) => a.startsWith('dynamodb:'))).toEqual(['dynamodb:PutItem']);
  });

  it('reads and tags the image under the moderated prefix, and removes it there after a reject', () => {
    allows(roles.reviewer, {
      // (arrayWith keeps order: CDK sorts the actions.)
      Action: Match.arrayWith(['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObject', 's3:GetObjectTagging', 's3:PutObjectTagging']),
      Resource: uploadsObjects,
    });
  });

  it('copies a rejected image to the quarantine bucket (PutObject + PutObjectTagging there)', () => {
    allows(roles.reviewer, { Action: Match.arrayWith(['s3:PutObject', 's3:PutObjectTagging']), Resource: quarantineObjects });
    // PutObject nowhere else but the moderated prefix, for a granted appeal's restore (below).
    expect(resourcesFor(roles.reviewer, 's3:PutObject')).toEqual(expect.arrayContaining([quarantineObjects, uploadsObjects]));
    expect(resourcesFor(roles.reviewer, 's3:PutObject')).toHaveLength(2);
  });

  it('restores a granted appeal: copies the image back under the moderated prefix, reads and deletes the quarantine copy', () => {
    // (CDK merges statements on the same resource: ask by action.)
    expect(resourcesFor(roles.reviewer, 's3:PutObject')).toContainEqual(uploadsObjects);
    expect(resourcesFor(roles.reviewer, 's3:GetObjectTagging')).toContainEqual(quarantineObjects);
    expect(resourcesFor(roles.reviewer, 's3:DeleteObject')).toContainEqual(quarantineObjects);
    // A person's action, once per appeal; no function may write a new object there (invariant 4).
    for (const fn of Object.values(pipeline.functions)) {
      expect(resourcesFor(idOf(fn.role as never), 's3:PutObject')).not.toContainEqual(uploadsObjects);
    }
  });

  it('may list both buckets, so a missing key is a 404 and not a 403', () => {
    expect(resourcesFor(roles.reviewer, 's3:ListBucket')).toEqual(expect.arrayContaining([uploadsBucket, quarantineBucket]));
    for (const statement of statementsOfRole(template, roles.reviewer).filter((s) => asArray(s.Action).includes('s3:ListBucket'))) {
      expect(statement.Condition).toBeUndefined();
    }
  });

  it('has every S3 permission of the apply step, whose code `review approve|reject` runs (functions/apply.ts)', () => {
    const applyRole = idOf(pipeline.functions.apply.role as never);
    const s3Of = (role: string) =>
      statementsOfRole(template, role)
        .filter((s) => asArray(s.Action).some((a) => a.startsWith('s3:')))
        .flatMap((s) => asArray(s.Action).flatMap((action) => asArray(s.Resource).map((resource) => `${action} ${JSON.stringify(resource)}`)));
    // Besides, the restore of a granted appeal (above).
    const restore = [`s3:PutObject ${JSON.stringify(uploadsObjects)}`, `s3:GetObjectTagging ${JSON.stringify(quarantineObjects)}`, `s3:DeleteObject ${JSON.stringify(quarantineObjects)}`];
    expect(s3Of(roles.reviewer).filter((grant) => !restore.includes(grant)).sort()).toEqual(s3Of(applyRole).sort());
    expect(s3Of(roles.reviewer)).toEqual(expect.arrayContaining(restore));
  });

  it('touches no queue', () => {
    expect(actionsOfRole(template, roles.reviewer).filter((a) => a.startsWith('sqs:'))).toEqual([]);
  });
});

describe('grantOperate', () => {
  it('on the dead-letter queue: receive, delete, change visibility, attributes and message move tasks', () => {
    allows(roles.operator, {
      Action: Match.arrayWith([
        'sqs:CancelMessageMoveTask',
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:ListMessageMoveTasks',
        'sqs:ReceiveMessage',
        'sqs:StartMessageMoveTask',
      ]),
      Resource: deadLetterQueue,
    });
  });

  it('on the intake queue: send (replays, reconcile --enqueue) and get attributes, nothing that consumes it', () => {
    allows(roles.operator, { Action: Match.arrayWith(['sqs:GetQueueAttributes', 'sqs:SendMessage']), Resource: intakeQueue });
    expect(resourcesFor(roles.operator, 'sqs:SendMessage')).toEqual([intakeQueue]);
    expect(resourcesFor(roles.operator, 'sqs:ReceiveMessage')).toEqual([deadLetterQueue]);
    expect(resourcesFor(roles.operator, 'sqs:DeleteMessage')).toEqual([deadLetterQueue]);
  });

  it('reads the decision history (reconcile queries the image index)', () => {
    allows(roles.operator, { Action: Match.arrayWith(['dynamodb:GetItem', 'dynamodb:Query']), Resource: [table, tableIndexes] });
    expect(writesOf(roles.operator).filter((a) => a.startsWith('dynamodb:'))).toEqual([]);
  });

  it('lists the uploads bucket under the moderated prefix only, and reads (HEAD/GET) the objects there', () => {
    allows(roles.operator, { Action: 's3:ListBucket', Resource: uploadsBucket, Condition: { StringLike: { 's3:prefix': ['uploads/*'] } } });
    allows(roles.operator, { Action: 's3:GetObject', Resource: uploadsObjects });
    expect(actionsOfRole(template, roles.operator).filter((a) => a.startsWith('s3:'))).toEqual(['s3:GetObject', 's3:ListBucket']);
  });

  it('writes no object and no decision', () => {
    expect(writesOf(roles.operator).filter((a) => !a.startsWith('sqs:'))).toEqual([]);
  });
});

describe('grants follow the settings', () => {
  it("an adopted bucket with another prefix: the operator's listing and the reviewer's objects follow the prefix", () => {
    const other = stackWithPeople({ pipeline: { uploadsPrefix: 'incoming/', uploaderPattern: 'incoming/{uploader}/' }, existingUploadsBucketName: 'existing-uploads' }, 'OtherPrefix');
    const bucketArn = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::existing-uploads']] };
    other.template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: other.roles.operator }],
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Action: 's3:ListBucket', Resource: bucketArn, Condition: { StringLike: { 's3:prefix': ['incoming/*'] } } })]),
      },
    });
    other.template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: other.roles.reviewer }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: Match.arrayWith(['s3:DeleteObject', 's3:PutObjectTagging']), Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::existing-uploads/incoming/*']] } }),
        ]),
      },
    });
  });

  it('with the whole bucket moderated (prefix ""), the operator may list all of it', () => {
    const whole = stackWithPeople({ pipeline: { uploadsPrefix: '', uploaderPattern: '{uploader}/' } }, 'WholeBucket');
    const listing = statementsOfRole(whole.template, whole.roles.operator).filter((s) => asArray(s.Action).includes('s3:ListBucket'));
    expect(listing).toHaveLength(1);
    expect(listing[0].Condition).toBeUndefined();
  });
});
