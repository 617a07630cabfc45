/**
 * The settings the deployed stack, the local runtime and the cost model share
 * (functions/lib/pipeline-settings.ts) are the settings each of them actually uses: read back from
 * the synthesized template, from the running local SQS, from the cost model's profiles and from the
 * substitutions both sides hand to the one ASL file. A value hard-coded anywhere again fails here.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CfnElement } from 'aws-cdk-lib';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  CONTEXTUAL_REVIEW_PLACEHOLDER,
  DEFINITION_FILE,
  DEFINITION_PLACEHOLDERS,
  FUNCTION_MEMORY_MB,
  MAX_RECEIVE_COUNT,
  STEPS,
} from '../../functions/lib/pipeline-settings.ts';
import { FUNCTION_PROFILES } from '../../functions/lib/cost-model.ts';
import { moderationSubstitutions } from '../../local/functions.ts';
import { startLocalSqs, type LocalSqs } from '../../local/sqs.ts';
import { DEFINITION_PATH, renderDefinition } from '../../local/workflow.ts';
import { resourcesOf, synthStack } from './helpers.ts';

const { stack, template } = synthStack();
const pipeline = stack.pipeline;
const resources = template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, any> }>;
const idOf = (construct: { node: { defaultChild?: unknown } }): string => stack.getLogicalId(construct.node.defaultChild as CfnElement);

const asl = readFileSync(DEFINITION_FILE, 'utf8');
const aslPlaceholders = [...new Set([...asl.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]))].sort();

describe('max receive count', () => {
  it('the stack redrives intake messages to the DLQ after MAX_RECEIVE_COUNT receives', () => {
    const queues = Object.values(resourcesOf(template, 'AWS::SQS::Queue')).filter((q) => q.Properties?.RedrivePolicy);
    expect(queues).toHaveLength(1);
    expect(queues[0].Properties!.RedrivePolicy.maxReceiveCount).toBe(MAX_RECEIVE_COUNT);
    expect(resources[idOf(pipeline.intakeQueue)].Properties.RedrivePolicy.maxReceiveCount).toBe(MAX_RECEIVE_COUNT);
  });

  describe('the local SQS', () => {
    let sqs: LocalSqs;
    let client: SQSClient;

    beforeAll(async () => {
      // Started the way local/stack.ts starts it: the receive count is the local default, not passed in.
      sqs = await startLocalSqs();
      client = new SQSClient({ endpoint: sqs.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    });

    afterAll(async () => {
      client?.destroy();
      await sqs?.close();
    });

    it('redrives its intake queue to its DLQ after MAX_RECEIVE_COUNT receives', async () => {
      const { Attributes } = await client.send(new GetQueueAttributesCommand({ QueueUrl: sqs.intakeQueueUrl, AttributeNames: ['RedrivePolicy'] }));
      const redrive = JSON.parse(Attributes!.RedrivePolicy!) as { deadLetterTargetArn: string; maxReceiveCount: number | string };
      expect(Number(redrive.maxReceiveCount)).toBe(MAX_RECEIVE_COUNT);
      expect(redrive.deadLetterTargetArn).toBe(sqs.deadLetterQueueArn);
    });
  });
});

describe('function memory', () => {
  it.each(STEPS)('%s: the Lambda function has the memory of the settings', (step) => {
    expect(resources[idOf(pipeline.functions[step])].Properties.MemorySize).toBe(FUNCTION_MEMORY_MB[step]);
  });

  it('every handler function in the template is one of the steps checked above', () => {
    const pipelineFunctions = new Set(STEPS.map((step) => idOf(pipeline.functions[step])));
    const handlers = Object.entries(resourcesOf(template, 'AWS::Lambda::Function')).filter(([, fn]) => fn.Properties?.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === 'moderation');
    expect(handlers.map(([id]) => id).sort()).toEqual([...pipelineFunctions].sort());
  });

  it.each(Object.keys(FUNCTION_PROFILES))('%s: the cost model prices the memory the stack deploys', (step) => {
    const profile = FUNCTION_PROFILES[step as keyof typeof FUNCTION_PROFILES];
    expect(STEPS).toContain(step);
    expect(profile.memoryMb).toBe(FUNCTION_MEMORY_MB[step as keyof typeof FUNCTION_PROFILES]);
    expect(profile.memoryMb).toBe(resources[idOf(pipeline.functions[step as keyof typeof FUNCTION_PROFILES])].Properties.MemorySize);
  });

  it('the cost model prices every function that runs per image (the fail path only on failures)', () => {
    expect(Object.keys(FUNCTION_PROFILES).sort()).toEqual(STEPS.filter((step) => step !== 'fail').sort());
  });
});

describe('the state machine definition', () => {
  const workflow = resources[idOf(pipeline.workflow)].Properties;

  it('infra and local read the same file', () => {
    expect(DEFINITION_PATH).toBe(DEFINITION_FILE);
    expect(workflow.DefinitionString).toBe(asl);
  });

  it("the ASL's ${placeholders} are exactly the settings' placeholder names", () => {
    expect(aslPlaceholders).toEqual([...DEFINITION_PLACEHOLDERS].sort());
  });

  it('the stack substitutes exactly those placeholders', () => {
    expect(Object.keys(workflow.DefinitionSubstitutions).sort()).toEqual(aslPlaceholders);
  });

  it.each([false, true])('the local runtime substitutes exactly those placeholders (contextual review %s), leaving none unfilled', (contextualReview) => {
    const substitutions = moderationSubstitutions(contextualReview);
    expect(Object.keys(substitutions).sort()).toEqual(aslPlaceholders);
    expect(renderDefinition(asl, substitutions)).not.toMatch(/\$\{/);
  });

  it('both sides switch contextual review with the same values', () => {
    const deployed = synthStack({ pipeline: { contextualReview: true } }, 'ReviewOn');
    const on = deployed.template.toJSON().Resources[deployed.stack.getLogicalId(deployed.stack.pipeline.workflow.node.defaultChild as CfnElement)].Properties;
    expect(on.DefinitionSubstitutions[CONTEXTUAL_REVIEW_PLACEHOLDER]).toBe(moderationSubstitutions(true)[CONTEXTUAL_REVIEW_PLACEHOLDER]);
    expect(workflow.DefinitionSubstitutions[CONTEXTUAL_REVIEW_PLACEHOLDER]).toBe(moderationSubstitutions(false)[CONTEXTUAL_REVIEW_PLACEHOLDER]);
  });
});
