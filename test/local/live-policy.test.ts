/**
 * The live policy through the local stack (docs/operating.md, "Live policy"): the policy asked for
 * at start is published to the local SSM parameter; a PutParameter (what `moderation policy push`
 * does) changes the decision of the next uploads within the cache window, and the records carry the
 * routed policy's name and version; a policy set routes `uploads/kids/` and the rest to different
 * policies; with SSM gone, the last good copy keeps judging. The local SSM endpoint speaks the SDK's
 * protocol (GetParameter, PutParameter with Overwrite and Version, GetParameterHistory) and persists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetParameterCommand, GetParameterHistoryCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { localClientConfig, startLocalStack, type LocalStack } from '../../local/stack.ts';
import { startLocalSsm } from '../../local/ssm.ts';
import { presetPolicy } from '../../functions/lib/policy.ts';
import { parsePolicySet, policySetParameterValue } from '../../functions/lib/policy-set.ts';
import { automatedRecord, eventually, jpeg, RETRY_NOW, startFakeRekognition, tempHome, type FakeRekognition } from './stack-helpers.ts';

const retryIntervalOverrides = RETRY_NOW;
// The fake detector: 'borderline' in the key → Explicit 60.1 (standard: REVIEW; strict: REJECT at 50).
const TENANTS = `
policies:
  kids: strict
routes:
  - { prefix: uploads/kids/, policy: kids }
default: standard
`;

describe('the live policy on the local stack', () => {
  const home = tempHome('moderation-live-policy-');
  let rekognition: FakeRekognition;
  let stack: LocalStack;
  let s3: S3Client;
  let ssm: SSMClient;
  let table: DynamoDBDocumentClient;
  const savedEnv = { ...process.env };
  let uploads = 0;

  /** The automated record of one key, once it exists (the whole item, from the table). */
  const decisionOf = (key: string) => automatedRecord(stack, table, key);
  const upload = async (prefix: string) => {
    const key = `${prefix}borderline-${++uploads}.jpg`;
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: await jpeg(), ContentType: 'image/jpeg' }));
    return key;
  };
  const push = async (value: string) =>
    (await ssm.send(new PutParameterCommand({ Name: stack.names.policyParameter, Value: value, Type: 'String', Overwrite: true }))).Version!;

  beforeAll(async () => {
    rekognition = await startFakeRekognition();
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_PROFILE;
    delete process.env.MODERATION_POLICY;
    stack = await startLocalStack({ home: home.dir, policy: 'standard', detector: { endpoint: rekognition.endpoint }, retryIntervalOverrides, quiet: true, persistQueues: false });
    const config = localClientConfig(stack);
    s3 = new S3Client(config.s3);
    ssm = new SSMClient(config.ssm);
    table = DynamoDBDocumentClient.from(new DynamoDBClient(config.dynamodb));
  });

  afterAll(async () => {
    s3?.destroy();
    ssm?.destroy();
    table?.destroy();
    await stack?.stop();
    await rekognition?.close();
    home.remove();
    process.env = savedEnv;
  });

  it('publishes the policy asked for at start, and tells the handlers where it is (a 1 s cache locally)', async () => {
    expect(stack.env).toMatchObject({ POLICY_PARAMETER: '/moderation/policy', POLICY_CACHE_SECONDS: '1', AWS_ENDPOINT_URL_SSM: stack.endpoints.ssm });
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: stack.names.policyParameter }));
    expect(Parameter).toMatchObject({ Value: 'standard', Version: 1, Type: 'String' });
  });

  it('a push changes the decision of the next uploads within the cache window; the record names the routed policy and its version', async () => {
    const before = await decisionOf(await upload('uploads/ann/'));
    expect(before).toMatchObject({ status: 'REVIEW', policyName: 'standard', policyVersion: presetPolicy('standard').version });

    const version = await push('strict');
    expect(version).toBe(2);
    const pushedAt = Date.now();
    // Each probe is a new upload (one object version gets one decision): the first judged after the
    // cache expired is REJECTED under strict.
    const after = await eventually(async () => {
      const record = await decisionOf(await upload('uploads/ann/'));
      return record.status === 'REJECTED' ? record : undefined;
    }, 20_000);
    expect(Date.now() - pushedAt).toBeLessThan(15_000);
    expect(after).toMatchObject({ status: 'REJECTED', policyName: 'strict', policyVersion: presetPolicy('strict').version });
  });

  it('a policy set routes uploads/kids/ and everything else to different policies', async () => {
    const set = parsePolicySet(TENANTS);
    await push(policySetParameterValue(set));
    // Until the new set is in force, the default upload is still judged by strict: poll.
    const grown = await eventually(async () => {
      const record = await decisionOf(await upload('uploads/bob/'));
      return record.policyName === 'standard' ? record : undefined;
    }, 20_000);
    expect(grown).toMatchObject({ status: 'REVIEW', policyVersion: presetPolicy('standard').version });
    const kids = await decisionOf(await upload('uploads/kids/'));
    expect(kids).toMatchObject({ status: 'REJECTED', policyName: 'kids', policyVersion: presetPolicy('strict').version, uploader: 'kids' });
  });

  it('an invalid value in the parameter changes nothing: the last good set keeps judging', async () => {
    await push('policies: { kids: stirct }\ndefault: kids\n');
    // Past the cache window, the invalid value has been read (and refused) at least once.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const kids = await decisionOf(await upload('uploads/kids/'));
    expect(kids).toMatchObject({ status: 'REJECTED', policyName: 'kids' });
    const other = await decisionOf(await upload('uploads/bob/'));
    expect(other).toMatchObject({ status: 'REVIEW', policyName: 'standard' });
  });

  it('with SSM unreachable, the last good copy keeps judging (never approve without a policy)', async () => {
    await push(policySetParameterValue(parsePolicySet(TENANTS)));
    await stack.services.ssm.close();
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const kids = await decisionOf(await upload('uploads/kids/'));
    expect(kids).toMatchObject({ status: 'REJECTED', policyName: 'kids' });
  });
});

describe('the local SSM endpoint', () => {
  it('speaks GetParameter, PutParameter (Overwrite, Version, tiers) and GetParameterHistory, and persists', async () => {
    const home = tempHome('moderation-ssm-');
    let endpoint = await startLocalSsm({ directory: home.dir });
    let client = new SSMClient({ region: 'us-east-1', endpoint: endpoint.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    try {
      await expect(client.send(new GetParameterCommand({ Name: '/p' }))).rejects.toMatchObject({ name: 'ParameterNotFound' });
      expect((await client.send(new PutParameterCommand({ Name: '/p', Value: 'one', Type: 'String' }))).Version).toBe(1);
      await expect(client.send(new PutParameterCommand({ Name: '/p', Value: 'two', Type: 'String' }))).rejects.toMatchObject({ name: 'ParameterAlreadyExists' });
      expect((await client.send(new PutParameterCommand({ Name: '/p', Value: 'two', Type: 'String', Overwrite: true }))).Version).toBe(2);
      await expect(client.send(new PutParameterCommand({ Name: '/p', Value: 'x'.repeat(4097), Type: 'String', Overwrite: true }))).rejects.toMatchObject({
        name: 'ValidationException',
        message: expect.stringMatching(/maximum parameter value of 4096 characters/),
      });
      expect((await client.send(new PutParameterCommand({ Name: '/p', Value: 'x'.repeat(5000), Type: 'String', Overwrite: true, Tier: 'Advanced' }))).Tier).toBe('Advanced');
      await expect(client.send(new PutParameterCommand({ Name: '/p', Value: 'three', Type: 'String', Overwrite: true, Tier: 'Standard' }))).rejects.toMatchObject({ name: 'ValidationException' });

      // Persisted: a new endpoint on the same directory has every version.
      await endpoint.close();
      client.destroy();
      endpoint = await startLocalSsm({ directory: home.dir });
      client = new SSMClient({ region: 'us-east-1', endpoint: endpoint.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
      const { Parameter } = await client.send(new GetParameterCommand({ Name: '/p' }));
      expect(Parameter).toMatchObject({ Version: 3, Value: 'x'.repeat(5000), ARN: 'arn:aws:ssm:us-east-1:000000000000:parameter/p' });
      expect(Parameter!.LastModifiedDate).toBeInstanceOf(Date);
      const { Parameters = [] } = await client.send(new GetParameterHistoryCommand({ Name: '/p' }));
      expect(Parameters.map((p) => [p.Version, p.Value?.slice(0, 3)])).toEqual([
        [1, 'one'],
        [2, 'two'],
        [3, 'xxx'],
      ]);
    } finally {
      client.destroy();
      await endpoint.close();
      home.remove();
    }
  });
});
