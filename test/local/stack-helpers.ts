/**
 * Helpers for the local stack tests: a tiny Rekognition-compatible endpoint (JSON 1.1,
 * DetectModerationLabels) whose answer depends on the object key, test images, and polling.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { closeServer, listen } from '../../local/net.ts';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDecisionStore } from '../../functions/store/decision-store.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';

// These fake detectors answer by object key, not by content, and the tests upload the same bytes
// under keys that must be judged differently: their stacks do not reuse decisions of identical bytes
// (functions/content-reuse.ts). Tests of reuse pass `reuseDecisions: true` to startLocalStack.
process.env.REUSE_DECISIONS ??= 'off';

/** Retries without waiting: a test stack's retryIntervalOverrides. */
export const RETRY_NOW = { Detect: 0, Review: 0, Record: 0, Apply: 0, RecordFailure: 0 };

export interface FakeRekognitionCall {
  target: string;
  body: { Image?: { S3Object?: { Bucket?: string; Name?: string; Version?: string }; Bytes?: string }; MinConfidence?: number };
}

export interface FakeRekognition {
  endpoint: string;
  calls: FakeRekognitionCall[];
  close(): Promise<void>;
}

type Label = { Name: string; ParentName: string; TaxonomyLevel: number; Confidence: number };

/** Labels by key: 'reject' in the key → Explicit 95, 'borderline' → Explicit 60, else none ('broken' → HTTP 500). */
export function labelsForKey(key: string): Label[] {
  if (key.includes('reject')) return [{ Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: 95.5 }];
  if (key.includes('borderline')) return [{ Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: 60.1 }];
  return [];
}

const ANALYSIS_ANSWERS: Record<string, object> = {
  'RekognitionService.DetectFaces': { FaceDetails: [] },
  'RekognitionService.DetectLabels': { Labels: [], LabelModelVersion: '3.0' },
  'RekognitionService.DetectText': { TextDetections: [], TextModelVersion: '3.0' },
};

export async function startFakeRekognition(port = 0): Promise<FakeRekognition> {
  const calls: FakeRekognitionCall[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as FakeRekognitionCall['body'];
    calls.push({ target, body });
    res.setHeader('content-type', 'application/x-amz-json-1.1');
    // The analyses a policy may ask for (the presets' child-safety rule asks DetectFaces when nudity
    // is flagged): this fake finds nothing, as Rekognition does on an image without faces or text.
    const analysis = ANALYSIS_ANSWERS[target];
    if (analysis) {
      res.end(JSON.stringify(analysis));
      return;
    }
    if (target !== 'RekognitionService.DetectModerationLabels') {
      res.statusCode = 400;
      res.end(JSON.stringify({ __type: 'UnknownOperationException', message: target }));
      return;
    }
    const key = body.Image?.S3Object?.Name ?? '';
    if (key.includes('broken')) {
      res.statusCode = 500;
      res.end(JSON.stringify({ __type: 'InternalServerError', message: 'the detector is down' }));
      return;
    }
    res.end(JSON.stringify({ ModerationLabels: labelsForKey(key), ModerationModelVersion: '7.0' }));
  });
  const bound = await listen(server, port);
  return { endpoint: `http://127.0.0.1:${bound}`, calls, close: () => closeServer(server) };
}

let nextShade = 0;

/**
 * A small flat JPEG. Without a shade, each call gives other bytes: identical bytes under another key
 * would reuse the first one's decision (the pipeline never pays twice for the same bytes).
 */
export async function jpeg(width = 128, height = 128, shade = (nextShade++ * 37) % 256): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: shade, g: 255 - shade, b: 90 } } })
    .jpeg()
    .toBuffer();
}

export function tempHome(prefix = 'moderation-stack-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Polls `probe` until it returns something other than undefined (or the time runs out). */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Every record of one image, newest first, through the decision store: the byImage index holds keys
 * and a few attributes only, so a test that reads the index directly would not see the records.
 */
export function imageRecords(stack: { names: { decisionTable: string; uploadsBucket: string; statusShards: number } }, client: DynamoDBDocumentClient, key: string): Promise<DecisionRecord[]> {
  return new DynamoDecisionStore({ client, tableName: stack.names.decisionTable, statusShards: stack.names.statusShards }).imageHistory(stack.names.uploadsBucket, key);
}

/** The automated record of one image, once it exists (polled through imageRecords). */
export function automatedRecord(stack: Parameters<typeof imageRecords>[0], client: DynamoDBDocumentClient, key: string, timeoutMs = 15_000): Promise<DecisionRecord> {
  return eventually(async () => (await imageRecords(stack, client, key)).find((r) => r.kind === 'automated'), timeoutMs);
}
