/**
 * The local endpoints refuse cross-site browser requests (issue 10, section 5): a request with an
 * Origin other than the endpoint's own, with `Sec-Fetch-Site: cross-site`, or with a Host that is
 * not a loopback name (DNS rebinding) gets 403 from every service of the stack, before the emulator
 * sees it; an origin allowed with `corsOrigins` (`moderation serve --cors-origin`) gets CORS
 * headers; requests without those headers (SDKs, curl, presigned URLs) work as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startLocalStack, localClientConfig, type LocalStack } from '../../local/stack.ts';
import { startDetectorEndpoint } from '../../local/detector/server.ts';
import { allowBrowserOrigins, normalizeOrigin } from '../../local/net.ts';
import type { ModerationHandlers } from '../../local/functions.ts';
import { tempHome } from './stack-helpers.ts';
import { formData, rawRequest } from './raw-http.ts';

const ALLOWED = 'http://localhost:3000';
const EVIL = 'https://evil.example';
/** How the guard's refusals begin (an emulator's own 4xx does not). */
const GUARD = 'Forbidden by the local moderation stack';

let stack: LocalStack;
let home: ReturnType<typeof tempHome>;
let sqs: SQSClient;

// The guard is what is tested, not the pipeline: stub handlers (functions/ is then not imported).
const never = async () => {
  throw new Error('not used in this test');
};
const stubs = { ingest: never, detect: never, review: never, record: never, apply: never, fail: never } as unknown as ModerationHandlers;

beforeAll(async () => {
  home = tempHome('moderation-browser-guard-');
  stack = await startLocalStack({
    home: home.dir,
    quiet: true,
    functions: stubs,
    corsOrigins: [ALLOWED],
    detector: { start: (o) => startDetectorEndpoint({ ...o, classify: async () => ({ Drawing: 0, Hentai: 0, Neutral: 1, Porn: 0, Sexy: 0 }) }) },
  });
  sqs = new SQSClient(localClientConfig(stack).sqs);
});

afterAll(async () => {
  sqs?.destroy();
  await stack?.stop();
  home?.remove();
});

/** One ordinary request per service (method, path, headers, body), as an SDK would send it. */
function requestFor(service: keyof LocalStack['endpoints']): { method: string; path: string; headers: Record<string, string>; body?: string } {
  switch (service) {
    case 's3':
      return { method: 'GET', path: `/${stack.names.uploadsBucket}?list-type=2`, headers: {} };
    case 'sqs':
      return {
        method: 'POST',
        path: '/',
        headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'AmazonSQS.ListQueues' },
        body: '{}',
      };
    case 'dynamodb':
      return { method: 'POST', path: '/', headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'DynamoDB_20120810.ListTables' }, body: '{}' };
    case 'stepfunctions':
      return {
        method: 'POST',
        path: '/',
        headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'AWSStepFunctions.DescribeStateMachine' },
        body: JSON.stringify({ stateMachineArn: stack.names.stateMachineArn }),
      };
    case 'rekognition':
      return {
        method: 'POST',
        path: '/',
        headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'RekognitionService.DetectModerationLabels' },
        body: JSON.stringify({ Image: { S3Object: { Bucket: stack.names.uploadsBucket, Name: 'uploads/none.jpg' } } }),
      };
    case 'ssm':
      return { method: 'POST', path: '/', headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'AmazonSSM.GetParameter' }, body: JSON.stringify({ Name: stack.names.policyParameter }) };
  }
}

const SERVICES = ['s3', 'sqs', 'dynamodb', 'stepfunctions', 'rekognition', 'ssm'] as const;

describe('every local endpoint refuses cross-site browser requests', () => {
  it.each(SERVICES)('%s: a foreign Origin gets 403 and no CORS headers', async (service) => {
    const r = requestFor(service);
    const res = await rawRequest(stack.endpoints[service], r.path, { method: r.method, body: r.body, headers: { ...r.headers, Origin: EVIL } });
    expect(res.status).toBe(403);
    expect(res.body).toContain(GUARD);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it.each(SERVICES)('%s: Sec-Fetch-Site cross-site (no Origin) gets 403', async (service) => {
    const r = requestFor(service);
    const res = await rawRequest(stack.endpoints[service], r.path, { method: r.method, body: r.body, headers: { ...r.headers, 'Sec-Fetch-Site': 'cross-site' } });
    expect(res.status).toBe(403);
  });

  it.each(SERVICES)('%s: a preflight from a foreign Origin gets 403 (the emulators would have allowed "*")', async (service) => {
    const res = await rawRequest(stack.endpoints[service], '/', {
      method: 'OPTIONS',
      headers: { Origin: EVIL, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-amz-target' },
    });
    expect(res.status).toBe(403);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it.each(SERVICES)('%s: a Host that is not a loopback name (DNS rebinding) gets 403', async (service) => {
    const r = requestFor(service);
    const port = new URL(stack.endpoints[service]).port;
    const res = await rawRequest(stack.endpoints[service], r.path, { method: r.method, body: r.body, headers: { ...r.headers, Host: `rebound.evil.example:${port}` } });
    expect(res.status).toBe(403);
  });

  it.each(SERVICES)('%s: without Origin (an SDK, curl), with its own origin, or same-site, the request is served', async (service) => {
    const r = requestFor(service);
    const own = `http://127.0.0.1:${new URL(stack.endpoints[service]).port}`;
    const variants: Array<Record<string, string>> = [{}, { Origin: own }, { 'Sec-Fetch-Site': 'same-origin' }, { 'Sec-Fetch-Site': 'none' }, { Host: `localhost:${new URL(stack.endpoints[service]).port}` }];
    for (const extra of variants) {
      const res = await rawRequest(stack.endpoints[service], r.path, { method: r.method, body: r.body, headers: { ...r.headers, ...extra } });
      expect(res.status, `${service} ${JSON.stringify(extra)}: ${res.body}`).not.toBe(403);
      expect(res.body).not.toContain(GUARD);
    }
  });

  it('S3: a form POST from a web page (a foreign Origin) stores nothing', async () => {
    const form = formData([['key', 'uploads/from-a-web-page.txt']], { name: 'x.txt', content: 'planted' });
    const res = await rawRequest(stack.endpoints.s3, `/${stack.names.uploadsBucket}`, {
      method: 'POST',
      body: form.body,
      headers: { 'Content-Type': form.contentType, Origin: EVIL, 'Sec-Fetch-Site': 'cross-site' },
    });
    expect(res.status).toBe(403);
    // Asked as the pipeline (the serving gate answers 403 to anyone else for an object not APPROVED).
    const pipeline = new S3Client(localClientConfig(stack).s3);
    await expect(pipeline.send(new HeadObjectCommand({ Bucket: stack.names.uploadsBucket, Key: 'uploads/from-a-web-page.txt' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    pipeline.destroy();
  });

  it('SQS: a SendMessage from a web page enqueues nothing', async () => {
    const res = await rawRequest(stack.endpoints.sqs, '/', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'AmazonSQS.SendMessage', Origin: 'null' },
      body: JSON.stringify({ QueueUrl: stack.names.deadLetterQueueUrl, MessageBody: 'planted' }),
    });
    expect(res.status).toBe(403);
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: stack.names.deadLetterQueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
    expect(Attributes?.ApproximateNumberOfMessages).toBe('0');
  });
});

describe('an origin allowed with corsOrigins (moderation serve --cors-origin)', () => {
  it.each(SERVICES)('%s: its preflight is answered with CORS headers for that origin', async (service) => {
    const res = await rawRequest(stack.endpoints[service], '/', {
      method: 'OPTIONS',
      headers: { Origin: ALLOWED, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-amz-target', 'Sec-Fetch-Site': 'cross-site' },
    });
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(res.headers['access-control-allow-headers']).toBe('content-type,x-amz-target');
    expect(String(res.headers['access-control-allow-methods'])).toContain('POST');
  });

  it.each(SERVICES)('%s: its requests are served, with Access-Control-Allow-Origin naming it (not "*")', async (service) => {
    const r = requestFor(service);
    const res = await rawRequest(stack.endpoints[service], r.path, { method: r.method, body: r.body, headers: { ...r.headers, Origin: ALLOWED, 'Sec-Fetch-Site': 'cross-site' } });
    expect(res.status, res.body).not.toBe(403);
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(String(res.headers.vary)).toMatch(/origin/i);
  });

  it('S3: an error answer keeps the CORS headers (the page can read why)', async () => {
    // Outside the moderated prefix (inside it, the serving gate answers 403 before S3 looks).
    const res = await rawRequest(stack.endpoints.s3, `/${stack.names.uploadsBucket}/elsewhere/missing.jpg`, { headers: { Origin: ALLOWED } });
    expect(res.status).toBe(404);
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
  });
});

describe('origins', () => {
  it('are normalised, and anything that is not one origin is refused', () => {
    expect(normalizeOrigin('http://localhost:3000/')).toBe('http://localhost:3000');
    expect(normalizeOrigin('HTTPS://App.Example')).toBe('https://app.example');
    for (const bad of ['*', 'null', 'localhost:3000', 'http://app.example/path', 'file:///tmp/x.html', 'http://user@app.example']) {
      expect(() => normalizeOrigin(bad), bad).toThrow(/not an origin/);
    }
  });

  it('an allowance ends when revoked', async () => {
    const origin = 'http://127.0.0.1:5173';
    const r = requestFor('dynamodb');
    const send = () => rawRequest(stack.endpoints.dynamodb, r.path, { method: r.method, body: r.body, headers: { ...r.headers, Origin: origin } });
    expect((await send()).status).toBe(403);
    const revoke = allowBrowserOrigins([origin]);
    const allowed = await send();
    expect(allowed.status).not.toBe(403);
    expect(allowed.headers['access-control-allow-origin']).toBe(origin);
    revoke();
    expect((await send()).status).toBe(403);
  });
});
