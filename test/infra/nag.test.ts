/**
 * cdk-nag AwsSolutions checks on the default stack and on a stack with every option on (STANDARD,
 * contextual review through a cross-Region inference profile, adopted bucket, alarm topic), each
 * with auditors, reviewers and operators granted their access: zero unacknowledged findings, and
 * every acknowledgement is needed and says why.
 */
import { describe, expect, it } from 'vitest';
import { Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ModerationStack } from '../../infra/moderation-stack.ts';
import { asArray, iamStatements, testApp } from './helpers.ts';

const PROFILE_ID = 'us.anthropic.claude-3-5-haiku-20241022-v1:0';

const app = testApp();
const defaults = new ModerationStack(app, 'NagDefaults');
const everything = new ModerationStack(app, 'NagEverything', {
  pipeline: { workflowType: 'STANDARD', contextualReview: true, reviewModelId: PROFILE_ID, policy: 'strict' },
  alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:alarms',
  existingUploadsBucketName: 'existing-uploads',
});
// The people's access (grantAudit, grantReview, grantOperate) is held to the same rules as the pipeline's own roles.
for (const stack of [defaults, everything]) {
  const people = (id: string) => new iam.Role(stack, id, { assumedBy: new iam.AccountRootPrincipal() });
  stack.pipeline.grantAudit(people('Auditors'));
  stack.pipeline.grantReview(people('Reviewers'));
  stack.pipeline.grantOperate(people('Operators'));
}

interface Acknowledgement {
  id: string;
  path: string;
  reason: string;
}

function acknowledgements(): Acknowledgement[] {
  const found: Acknowledgement[] = [];
  for (const construct of app.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY || !entry.data) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        found.push({ id: id.replace(/^annotation::/i, ''), path: construct.node.path, reason });
      }
    }
  }
  return found;
}

/** Findings as cdk-nag reports them, with acknowledgements honoured (`raw`: ignored). */
function findings(raw = false): { rule: string; paths: string[] }[] {
  const pack = new AwsSolutionsChecks(app);
  if (raw) (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  return pack.validateScope(app).violations.map((v) => ({ rule: v.ruleName, paths: v.violatingResources.map((r) => r.constructPath ?? '') }));
}

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged', () => {
    expect(findings()).toEqual([]);
  });

  it('lets synthesis through when registered as a validation plugin (as infra/bin/app.ts does)', () => {
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).not.toThrow();
  });

  it('every acknowledgement gives a reason a reviewer can check', () => {
    const acks = acknowledgements();
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThanOrEqual(80);
      expect(ack.reason, `${ack.path} ${ack.id}`).not.toMatch(/\b(todo|fixme|tbd|ignore|not needed|n\/a)\b/i);
    }
  });

  it('every acknowledgement matches a real finding under it (none is stale or broader than its finding)', () => {
    const raw = findings(true);
    for (const ack of acknowledgements()) {
      const finding = raw.find((f) => f.rule === ack.id && f.paths.some((p) => p === ack.path || p.startsWith(`${ack.path}/`)));
      expect(finding, `${ack.path} acknowledges ${ack.id}, which nothing under it raises`).toBeDefined();
    }
  });

  it('acknowledges only these kinds of findings: Node 22 runtime, resource wildcards, the managed policy of the CDK notification handler, failure queues cdk-nag does not see as dead-letter queues, the state machine logging ERROR', () => {
    const kinds = new Set(acknowledgements().map((a) => a.id.replace(/\[.*$/, '')));
    // SQS3: the decision events' failure destination (infra/decision-events.ts) is a DLQ that cdk-nag only recognises through a redrive policy.
    // SF1: the state machine logs ERROR, not ALL, by default (workflowLogLevel; docs/operating.md, "What it costs").
    expect([...kinds].sort()).toEqual(['AwsSolutions-IAM4', 'AwsSolutions-IAM5', 'AwsSolutions-L1', 'AwsSolutions-SF1', 'AwsSolutions-SQS3']);
    for (const ack of acknowledgements().filter((a) => a.id === 'AwsSolutions-SF1')) expect(ack.reason).toMatch(/workflowLogLevel 'ALL'/);
    for (const ack of acknowledgements()) {
      if (ack.id.startsWith('AwsSolutions-IAM5')) expect(ack.id, ack.path).toMatch(/^AwsSolutions-IAM5\[Resource::/); // never an action wildcard
      if (ack.id.startsWith('AwsSolutions-IAM4')) expect(ack.id).toContain('AWSLambdaBasicExecutionRole');
    }
  });
});

describe('review through a cross-Region inference profile', () => {
  it('may invoke the profile, and the model in any Region only through that profile', () => {
    const template = Template.fromStack(everything);
    const bedrock = iamStatements(template).filter(({ statement }) => asArray(statement.Action).includes('bedrock:InvokeModel'));
    const stack = everything;
    const resolved = bedrock.map(({ statement }) => stack.resolve(statement));
    const profileArn = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':bedrock:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:inference-profile/${PROFILE_ID}`]] };
    expect(resolved).toContainEqual({ Effect: 'Allow', Action: 'bedrock:InvokeModel', Resource: profileArn });
    expect(resolved).toContainEqual({
      Effect: 'Allow',
      Action: 'bedrock:InvokeModel',
      Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0']] },
      Condition: { StringEquals: { 'bedrock:InferenceProfileArn': profileArn } },
    });
    expect(resolved).toHaveLength(2);
    // The default stack (review off) has no Bedrock permission at all.
    expect(JSON.stringify(iamStatements(Template.fromStack(defaults)))).not.toContain('bedrock:');
  });
});
