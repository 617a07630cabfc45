/**
 * Custom moderation adapters through the whole local pipeline (issue 11, section 4): a policy that
 * names an adapter (projectVersion) sends it as ProjectVersion on every DetectModerationLabels call;
 * the local detector (local/detector/server.ts, with a stub classifier instead of nsfwjs) echoes it,
 * and the decision record says which adapter answered. An adapter the detector treats as expired
 * ($MODERATION_EXPIRED_ADAPTERS) is answered by the base model without ProjectVersion, as Rekognition
 * does: the record says `expired`, and the detect step counts AdapterExpired.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { localClientConfig, startLocalStack, type LocalStack } from '../../local/stack.ts';
import { startDetectorEndpoint, type DetectRequest } from '../../local/detector/server.ts';
import { EXPIRED_ADAPTERS_ENV } from '../../local/detector/adapters.ts';
import { metrics } from '../../functions/observability.ts';
import { automatedRecord, jpeg, RETRY_NOW, tempHome } from './stack-helpers.ts';

const ADAPTER = 'arn:aws:rekognition:us-east-1:123456789012:project/kids-adapter/version/kids-adapter.2026-01-15T10.00.00/1768471200000';

describe('a policy with a custom moderation adapter (local stack, local detector)', () => {
  const home = tempHome('moderation-adapter-');
  let stack: LocalStack;
  let s3: S3Client;
  let table: DynamoDBDocumentClient;
  const requests: DetectRequest[] = [];
  const savedEnv = { ...process.env };
  const added = vi.spyOn(metrics, 'addMetric');

  const recordFor = (key: string) => automatedRecord(stack, table, key, 30_000);

  beforeAll(async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_PROFILE;
    delete process.env[EXPIRED_ADAPTERS_ENV];
    stack = await startLocalStack({
      home: home.dir,
      policy: JSON.stringify({ name: 'kids', rules: { Explicit: { reject: 80, review: 50 } }, projectVersion: ADAPTER }),
      // The real endpoint (validation, the adapter echo) over a stub classifier: no model to load.
      detector: {
        start: (options) =>
          startDetectorEndpoint({
            ...options,
            classify: async () => ({ Drawing: 0.01, Hentai: 0.01, Neutral: 0.96, Porn: 0.01, Sexy: 0.01 }),
            fault: (request) => {
              requests.push(request);
              return undefined;
            },
          }),
      },
      retryIntervalOverrides: RETRY_NOW,
      quiet: true,
      visibilityTimeoutSeconds: 5,
      reuseDecisions: false,
    });
    const config = localClientConfig(stack);
    s3 = new S3Client(config.s3);
    table = DynamoDBDocumentClient.from(new DynamoDBClient(config.dynamodb));
  }, 60_000);

  afterAll(async () => {
    s3?.destroy();
    table?.destroy();
    await stack?.stop();
    home.remove();
    process.env = savedEnv;
    added.mockRestore();
  });

  it('sends the adapter as ProjectVersion; the detector echoes it and the record names it', async () => {
    const key = 'uploads/kim/park.jpg';
    await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: await jpeg(200, 200) }));
    const record = await recordFor(key);
    expect(record.status).toBe('APPROVED');
    expect(record.adapter).toEqual({ requested: ADAPTER, answered: ADAPTER, expired: false });
    expect(requests.at(-1)).toMatchObject({ ProjectVersion: ADAPTER, Image: { S3Object: { Name: key } } });
    expect(added.mock.calls.filter(([name]) => name === 'AdapterExpired')).toHaveLength(0);
  });

  it('an expired adapter: the base model answers without ProjectVersion; the record says expired, AdapterExpired is counted', async () => {
    process.env[EXPIRED_ADAPTERS_ENV] = `arn:aws:rekognition:us-east-1:123456789012:project/other/version/other.1/1, ${ADAPTER}`;
    try {
      const key = 'uploads/kim/beach.jpg';
      await s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: await jpeg(200, 200) }));
      const record = await recordFor(key);
      // Still decided (by the base model): an expired adapter is not a failure, it is a warning.
      expect(record.status).toBe('APPROVED');
      expect(record.adapter).toEqual({ requested: ADAPTER, answered: null, expired: true });
      expect(requests.at(-1)).toMatchObject({ ProjectVersion: ADAPTER });
      expect(added.mock.calls.filter(([name]) => name === 'AdapterExpired')).toEqual([['AdapterExpired', 'Count', 1]]);
    } finally {
      delete process.env[EXPIRED_ADAPTERS_ENV];
    }
  });
});
