/**
 * `npm run bench`: throughput and latency of the whole local pipeline (upload → S3 notification →
 * SQS → ingest → Step Functions → detect → record → apply) on N generated images, beside the
 * detector alone on the same images in the same run. The ratio pipeline/detector, printed last,
 * says how much the orchestration costs on top of classification.
 *
 * Usage: npm run bench -- [--images N] [--concurrency C] [--json]
 */
import '../local/polyfills.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DetectModerationLabelsCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import { localClientConfig, startLocalStack } from '../local/stack.ts';
import { clientsFor } from '../cli/target.ts';
import { DynamoDecisionStore } from '../functions/store/decision-store.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    pollers: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(values.images);
const CONCURRENCY = Number(values.concurrency);
if (!Number.isInteger(N) || N < 1 || !Number.isInteger(CONCURRENCY) || CONCURRENCY < 1) {
  console.error('usage: npm run bench -- [--images N] [--concurrency C] [--json]');
  process.exit(1);
}

const log = (line: string) => {
  if (!values.json) process.stderr.write(`${line}\n`);
};

/** Varied, deterministic photos-like images: gradients with noise, 640×480 JPEG. */
async function makeImages(count: number): Promise<Buffer[]> {
  const images: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const width = 640;
    const height = 480;
    const raw = Buffer.alloc(width * height * 3);
    let seed = i * 7919 + 1;
    for (let p = 0; p < width * height; p++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const x = p % width;
      const y = Math.floor(p / width);
      raw[p * 3] = (x * 255) / width + (seed % 32);
      raw[p * 3 + 1] = (y * 255) / height + ((i * 37) % 64);
      raw[p * 3 + 2] = ((x + y + i * 11) % 256) ^ (seed % 16);
    }
    images.push(await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer());
  }
  return images;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function inParallel<T>(items: T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        await work(items[index]!, index);
      }
    }),
  );
}

interface Measure {
  images: number;
  seconds: number;
  imagesPerSecond: number;
  p50Ms: number;
  p95Ms: number;
}

function summarise(latencies: number[], seconds: number): Measure {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    images: latencies.length,
    seconds: Math.round(seconds * 100) / 100,
    imagesPerSecond: Math.round((latencies.length / seconds) * 10) / 10,
    p50Ms: Math.round(percentile(sorted, 50)),
    p95Ms: Math.round(percentile(sorted, 95)),
  };
}

const home = mkdtempSync(join(tmpdir(), 'moderation-bench-'));
log(`generating ${N} images…`);
const images = await makeImages(N);
log('starting the local stack…');
const stack = await startLocalStack({
  home,
  quiet: true,
  policy: 'standard',
  ...(values.pollers ? { pollerConcurrency: Number(values.pollers) } : {}),
});
const clients = clientsFor(stack.region, stack.endpoints, true);
const rekognition = new RekognitionClient(localClientConfig(stack).rekognition);

try {
  // Warm the classifier workers so neither measurement pays the model load.
  await rekognition.send(new DetectModerationLabelsCommand({ Image: { Bytes: images[0] } }));

  log(`detector alone: ${N} images, ${CONCURRENCY} in flight…`);
  const detectorLatencies: number[] = [];
  const detectorStart = performance.now();
  await inParallel(images, CONCURRENCY, async (image) => {
    const t0 = performance.now();
    await rekognition.send(new DetectModerationLabelsCommand({ Image: { Bytes: image }, MinConfidence: 50 }));
    detectorLatencies.push(performance.now() - t0);
  });
  const detector = summarise(detectorLatencies, (performance.now() - detectorStart) / 1000);

  log(`pipeline: ${N} uploads…`);
  const uploadedAt = new Map<string, number>();
  const pipelineStart = Date.now();
  await inParallel(images, CONCURRENCY, async (image, i) => {
    const key = `${stack.names.uploadsPrefix}bench/image-${String(i).padStart(5, '0')}.jpg`;
    uploadedAt.set(key, Date.now());
    await clients.s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: image, ContentType: 'image/jpeg' }));
  });
  const pending = new Set(uploadedAt.keys());
  const history = new DynamoDecisionStore({ client: clients.dynamodb, tableName: stack.names.decisionTable, statusShards: stack.names.statusShards });
  const pipelineLatencies: number[] = [];
  let lastDecision = pipelineStart;
  const deadline = Date.now() + Math.max(120_000, N * 2_000);
  while (pending.size > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    await inParallel([...pending], 16, async (key) => {
      const [decided] = await history.imageHistory(stack.names.uploadsBucket, key);
      if (!decided) return;
      const at = Date.parse(decided.decidedAt);
      pipelineLatencies.push(at - uploadedAt.get(key)!);
      lastDecision = Math.max(lastDecision, at);
      pending.delete(key);
    });
  }
  if (pending.size > 0) throw new Error(`${pending.size} images had no decision before the deadline`);
  const pipeline = summarise(pipelineLatencies, (lastDecision - pipelineStart) / 1000);
  const ratio = Math.round((pipeline.imagesPerSecond / detector.imagesPerSecond) * 100) / 100;
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);

  if (values.json) {
    process.stdout.write(`${JSON.stringify({ machine, images: N, concurrency: CONCURRENCY, detector, pipeline, maxRssMb, ratio })}\n`);
  } else {
    const row = (name: string, m: Measure) =>
      `${name.padEnd(10)} ${String(m.images).padStart(6)} ${m.seconds.toFixed(2).padStart(8)} ${m.imagesPerSecond.toFixed(1).padStart(9)} ${String(m.p50Ms).padStart(8)} ${String(m.p95Ms).padStart(8)}`;
    console.log(`machine: ${machine}`);
    console.log(`images: ${N} generated 640×480 JPEG, ${CONCURRENCY} in flight; policy standard; contextual review off`);
    console.log('');
    console.log(`${'stage'.padEnd(10)} ${'images'.padStart(6)} ${'seconds'.padStart(8)} ${'images/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)}`);
    console.log(row('detector', detector));
    console.log(row('pipeline', pipeline));
    console.log('');
    console.log(`peak RSS of the process (stack + detector workers): ${maxRssMb} MB`);
    console.log(`ratio pipeline/detector (throughput): ${ratio}`);
  }
} finally {
  rekognition.destroy();
  await stack.stop();
  rmSync(home, { recursive: true, force: true });
}
