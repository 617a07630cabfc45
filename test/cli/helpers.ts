/**
 * The CLI tests' local stack: the whole pipeline in this process (the real handlers, the same ASL)
 * with a Rekognition-compatible endpoint whose answer depends on the object key and that can be
 * switched into an outage, reached by the CLI through <home>/serve.json exactly like a running
 * `moderation serve`.
 */
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { closeServer, listen } from '../../local/net.ts';
import { startLocalStack, type DetectorFactory, type LocalStack, type LocalStackOptions } from '../../local/stack.ts';
import { resolveTarget, serveFile, type ServeInfo, type Target, type TargetNames } from '../../cli/target.ts';
import { decisionStoreOf } from '../../cli/stores.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { eventually as pollUntil, RETRY_NOW } from '../local/stack-helpers.ts';

type Label = { Name: string; ParentName: string; TaxonomyLevel: number; Confidence: number };

/** 'reject' in the key → Explicit Nudity 95 (REJECTED); 'borderline' → 65 (REVIEW under the standard policy); else none. */
export function labelsForKey(key: string): Label[] {
  if (key.includes('reject')) return [{ Name: 'Explicit Nudity', ParentName: 'Explicit', TaxonomyLevel: 2, Confidence: 95.2 }];
  if (key.includes('borderline')) return [{ Name: 'Explicit Nudity', ParentName: 'Explicit', TaxonomyLevel: 2, Confidence: 65.4 }];
  return [];
}

export interface FakeRekognition {
  /** DetectModerationLabels calls per object key (outage answers included). */
  calls: Map<string, number>;
  /** While it returns true for a key, the endpoint answers 500 InternalServerError (an outage). */
  failing: (key: string) => boolean;
  start: DetectorFactory;
}

export function fakeRekognition(): FakeRekognition {
  const fake: FakeRekognition = {
    calls: new Map(),
    failing: () => false,
    start: async ({ host, port }) => {
      const server = createServer(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { Image?: { S3Object?: { Name?: string } } };
        const key = body.Image?.S3Object?.Name ?? '(bytes)';
        fake.calls.set(key, (fake.calls.get(key) ?? 0) + 1);
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        if (fake.failing(key)) {
          res.statusCode = 500;
          res.end(JSON.stringify({ __type: 'InternalServerError', message: 'Rekognition is having a bad day' }));
          return;
        }
        res.end(JSON.stringify({ ModerationLabels: labelsForKey(key), ModerationModelVersion: '7.0' }));
      });
      const bound = await listen(server, port, host);
      return { endpoint: `http://${host}:${bound}`, close: () => closeServer(server) };
    },
  };
  return fake;
}

export interface TestStack {
  stack: LocalStack;
  /** What the CLI gets from resolveTarget({ home }): the stack found through serve.json. */
  target: Target;
  home: string;
  rekognition: FakeRekognition;
  close(): Promise<void>;
}

/** One local stack for a test file, announced in <home>/serve.json like `moderation serve` does. */
export async function startTestStack(options: Partial<LocalStackOptions> = {}): Promise<TestStack> {
  const home = mkdtempSync(join(tmpdir(), 'moderation-cli-'));
  const rekognition = fakeRekognition();
  const saved = { AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID, AWS_PROFILE: process.env.AWS_PROFILE };
  delete process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_PROFILE;
  const stack = await startLocalStack({
    home,
    quiet: true,
    detector: { start: rekognition.start },
    retryIntervalOverrides: RETRY_NOW,
    waitTimeSeconds: 1,
    persistQueues: false,
    ...options,
  });
  const info: ServeInfo = { pid: process.pid, region: stack.region, endpoints: stack.endpoints, names: stack.names as TargetNames };
  writeFileSync(serveFile(home), JSON.stringify(info));
  const target = await resolveTarget({ home });
  return {
    stack,
    target,
    home,
    rekognition,
    close: async () => {
      await target.close();
      await stack.stop();
      rmSync(home, { recursive: true, force: true });
      Object.assign(process.env, Object.fromEntries(Object.entries(saved).filter(([, v]) => v !== undefined)));
    },
  };
}

/** A small PNG whose bytes (and so ETag) differ for each seed. */
export async function png(seed: number, size = 96): Promise<Buffer> {
  const pixels = Buffer.alloc(size * size * 3);
  let x = (seed + 1) * 2654435761;
  for (let i = 0; i < pixels.length; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    pixels[i] = x & 0xff;
  }
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

export async function upload(target: Target, key: string, body: Buffer): Promise<string> {
  const out = await target.s3.send(new PutObjectCommand({ Bucket: target.names.uploadsBucket, Key: key, Body: body, ContentType: 'image/png' }));
  return out.ETag!.replace(/"/g, '');
}

/** Every record of one image (any version), oldest first, through the decision store (the byImage index holds keys only). */
export async function recordsOf(target: Target, key: string): Promise<DecisionRecord[]> {
  return (await decisionStoreOf(target).imageHistory(target.names.uploadsBucket, key)).reverse();
}

/** Polls until `probe` returns something other than undefined (CLI tests allow a little longer). */
export function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  return pollUntil(probe, timeoutMs, everyMs);
}

/** Waits until every given key has a record matching `which`. */
export async function decided(target: Target, keys: string[], which: (r: DecisionRecord) => boolean = (r) => r.sk === 'DECISION#auto'): Promise<Map<string, DecisionRecord>> {
  return eventually(async () => {
    const found = new Map<string, DecisionRecord>();
    for (const key of keys) {
      const record = (await recordsOf(target, key)).find(which);
      if (!record) return undefined;
      found.set(key, record);
    }
    return found;
  }, 30_000);
}
