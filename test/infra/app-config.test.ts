/**
 * The app's configuration without a synth: cdk.json, CDK context → props, and the construct's
 * validation of its props (it throws before building anything).
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { App, Stack } from 'aws-cdk-lib';
import { DEFAULTS } from '../../functions/lib/config.ts';
import { PolicyError } from '../../functions/lib/policy.ts';
import { DEFAULT_STACK_NAME, settingsFromContext } from '../../infra/context.ts';
import { ModerationPipeline, PIPELINE_DEFAULTS } from '../../infra/moderation-pipeline.ts';
import { CDK_JSON } from './helpers.ts';

const require = createRequire(import.meta.url);

describe('cdk.json', () => {
  it('runs the TypeScript app with tsx and shows no notices', () => {
    expect(CDK_JSON.app).toBe('npx tsx infra/bin/app.ts');
    expect(CDK_JSON.notices).toBe(false);
  });

  it("sets aws-cdk-lib's recommended feature flags (keeping other buckets' notifications on an adopted bucket)", () => {
    const recommended = require('aws-cdk-lib/recommended-feature-flags.json') as Record<string, unknown>;
    for (const [flag, value] of Object.entries(recommended)) {
      const expected = flag === '@aws-cdk/aws-s3:keepNotificationInImportedBucket' ? true : value;
      expect(CDK_JSON.context[flag], flag).toEqual(expected);
    }
  });

  it('package.json has the synth script CI runs', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(pkg.scripts.synth).toMatch(/^cdk synth/);
  });
});

describe('settings from CDK context', () => {
  const read = (context: Record<string, unknown>) => settingsFromContext((key) => context[key]);

  it('defaults to the stack name docs/deploying.md uses and leaves the construct defaults alone', () => {
    const settings = read({});
    expect(settings.stackName).toBe(DEFAULT_STACK_NAME);
    expect(Object.values(settings.pipeline!).every((v) => v === undefined)).toBe(true);
    expect(settings.alarmTopicArn).toBeUndefined();
    expect(settings.existingUploadsBucketName).toBeUndefined();
  });

  it('parses -c strings (case-insensitive enums, booleans, integers) and cdk.json values', () => {
    const settings = read({
      stackName: 'Moderation-Prod',
      workflowType: 'standard',
      contextualReview: 'true',
      reviewModelId: 'amazon.nova-lite-v1:0',
      maxConcurrency: '25',
      batchSize: 5,
      statusShards: '16',
      logLevel: 'debug',
      uploadsPrefix: '',
      policy: 'strict',
      alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:alarms',
      uploadsBucketName: 'my-uploads',
    });
    expect(settings).toEqual({
      stackName: 'Moderation-Prod',
      pipeline: {
        workflowType: 'STANDARD',
        contextualReview: true,
        reviewModelId: 'amazon.nova-lite-v1:0',
        maxConcurrency: 25,
        batchSize: 5,
        statusShards: 16,
        logLevel: 'DEBUG',
        uploadsPrefix: '',
        policy: 'strict',
        uploaderPattern: undefined,
      },
      alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:alarms',
      existingUploadsBucketName: 'my-uploads',
    });
    expect(read({ contextualReview: false }).pipeline!.contextualReview).toBe(false);
    expect(read({ contextualReview: 'off' }).pipeline!.contextualReview).toBe(false);
    // The serving gate is on unless the context turns it off (docs/deploying.md, "Serving approved content").
    expect(read({}).pipeline!.servingGate).toBeUndefined();
    expect(PIPELINE_DEFAULTS.servingGate).toBe(true);
    expect(read({ servingGate: 'false' }).pipeline!.servingGate).toBe(false);
    expect(read({ servingGate: false }).pipeline!.servingGate).toBe(false);
    expect(read({ qualitySampleRate: '0.05' }).pipeline!.qualitySampleRate).toBe(0.05);
    expect(read({ qualitySampleRate: 0 }).pipeline!.qualitySampleRate).toBe(0);
    expect(() => read({ qualitySampleRate: 'often' })).toThrow(/qualitySampleRate must be a number/);
  });

  it('names every bad value at once', () => {
    expect(() => read({ workflowType: 'FAST', contextualReview: 'maybe', maxConcurrency: 'ten' })).toThrow(
      /workflowType must be one of EXPRESS, STANDARD.*contextualReview must be true or false.*maxConcurrency must be an integer/,
    );
  });
});

describe('ModerationPipeline props validation', () => {
  const build = (props: ConstructorParameters<typeof ModerationPipeline>[2]) => () =>
    new ModerationPipeline(new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'S'), 'P', props);

  it('documents its defaults (the handlers\' own defaults where they overlap)', () => {
    expect(PIPELINE_DEFAULTS).toEqual(
      expect.objectContaining({
        policy: 'standard',
        uploadsPrefix: 'uploads/',
        workflowType: 'EXPRESS',
        contextualReview: false,
        reviewModelId: DEFAULTS.reviewModelId,
        uploaderPattern: 'uploads/{uploader}/',
        maxConcurrency: 5,
        batchSize: 10,
        statusShards: 8,
        qualitySampleRate: 0.01,
      }),
    );
  });

  it('rejects out-of-range and malformed settings with one message', () => {
    expect(build({ maxConcurrency: 1, statusShards: 0, uploaderPattern: 'uploads/', uploadsPrefix: '/uploads/' })).toThrow(
      /uploadsPrefix must not start with "\/".*uploaderPattern must contain \{uploader\}.*maxConcurrency must be an integer from 2 to 1000.*statusShards must be an integer from 1 to 100/,
    );
    expect(build({ workflowType: 'FAST' as never })).toThrow(/workflowType must be EXPRESS or STANDARD/);
    expect(build({ qualitySampleRate: 1.5 })).toThrow(/qualitySampleRate must be a number from 0 to 1, got 1.5/);
  });

  it('fails the synth on a bad policy, listing the problem', () => {
    expect(build({ policy: 'rules:\n  Explicit: { reject: 180 }\n' })).toThrow(PolicyError);
    expect(build({ policy: 'lenient' })).toThrow(/policy file not found: lenient/);
  });

  it('refuses a policy that does not fit in the Lambda environment', () => {
    const bigButValid = `name: ${'x'.repeat(3100)}\nrules:\n  Explicit: { reject: 90 }\n`;
    expect(build({ policy: bigButValid })).toThrow(/at most 3000 fit in the functions' environment/);
  });
});
