/**
 * `npm run bench`: throughput, CPU time and latency of the whole local pipeline (upload → S3
 * notification → SQS → ingest → Step Functions → detect → record → apply) on N generated images,
 * beside the detector alone on the same images in the same run (docs/performance.md).
 *
 * 1. The detector alone: DetectModerationLabels with the image bytes, C requests in flight.
 * 2. The pipeline: N uploads, C in flight; done when every decision is recorded (the stack's decision
 *    events say so; nothing polls the table).
 * 3. One upload at a time on the idle pipeline, against one detector request at a time: the latency
 *    the orchestration adds to a single image.
 *
 * CPU time is measured for each stage (whole process; the main thread and the classifier's worker
 * threads where the system tells): what the orchestration costs per image is the pipeline's CPU
 * time minus the detector's. The ratio pipeline/detector (throughput) is printed last.
 *
 * With --analyze labels,faces,text the pipeline also runs those analyses on every image (the local
 * endpoint's offline models, docs/local-runtime.md); the detector-alone stage stays moderation only,
 * so the ratio then shows what the analyses cost on top. `npm run bench:analysis` measures each alone.
 *
 * Usage: npm run bench -- [--images N] [--concurrency C] [--pollers P] [--latency-samples K] [--analyze LIST] [--json]
 */
import '../local/polyfills.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DetectModerationLabelsCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import { localClientConfig, startLocalStack } from '../local/stack.ts';
import { startDetectorEndpoint, type DetectorEndpoint } from '../local/detector/server.ts';
import { clientsFor } from '../cli/target.ts';
import { gradientJpeg } from './scenes.ts';
import { cpuSince, cpuSnapshot, type CpuSnapshot } from './cpu-time.ts';
import { benchArgs, usageError } from './args.ts';
import { decisionWatcher } from './decisions.ts';
import { machineLine } from './machine.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const values = benchArgs(import.meta.url, {
  images: { type: 'string', default: '200' },
  concurrency: { type: 'string', default: '8' },
  pollers: { type: 'string' },
  'latency-samples': { type: 'string', default: '10' },
  analyze: { type: 'string' },
  json: { type: 'boolean', default: false },
});
const N = Number(values.images);
const CONCURRENCY = Number(values.concurrency);
const LATENCY_SAMPLES = Number(values['latency-samples']);
if (![N, CONCURRENCY].every((v) => Number.isInteger(v) && v >= 1) || !Number.isInteger(LATENCY_SAMPLES) || LATENCY_SAMPLES < 0) {
  usageError(import.meta.url, '--images and --concurrency take whole numbers of 1 or more, --latency-samples of 0 or more');
}
/** Uploads that warm the pipeline (first invocations, JIT) before it is measured. */
const WARM_UPLOADS = 4;

const log = (line: string) => {
  if (!values.json) process.stderr.write(`${line}\n`);
};

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
  /** CPU time per image, ms: the whole process, its main thread, the classifier's worker threads (inference). */
  cpuMsPerImage: { process: number; main?: number; detectorWorkers?: number };
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

function summarise(latencies: number[], seconds: number, cpu: CpuSnapshot, workerCpuMs: number | undefined): Measure {
  const sorted = [...latencies].sort((a, b) => a - b);
  const n = latencies.length;
  return {
    images: n,
    seconds: round(seconds, 2),
    imagesPerSecond: round(n / seconds),
    p50Ms: Math.round(percentile(sorted, 50)),
    p95Ms: Math.round(percentile(sorted, 95)),
    cpuMsPerImage: {
      process: round(cpu.process / n),
      ...(cpu.main !== undefined ? { main: round(cpu.main / n) } : {}),
      ...(workerCpuMs ? { detectorWorkers: round(workerCpuMs / n) } : {}),
    },
  };
}

const home = mkdtempSync(join(tmpdir(), 'moderation-bench-'));
log(`generating ${N + WARM_UPLOADS + 2 * LATENCY_SAMPLES} images…`);
// Distinct pictures everywhere: identical bytes would repeat an earlier decision without the detector.
const images = await Promise.all(Array.from({ length: N }, (_, i) => gradientJpeg(i)));
const warmImages = await Promise.all(Array.from({ length: WARM_UPLOADS }, (_, i) => gradientJpeg(N + i)));
const latencyImages = await Promise.all(Array.from({ length: 2 * LATENCY_SAMPLES }, (_, i) => gradientJpeg(N + WARM_UPLOADS + i)));
const loadAtStart = loadavg()[0]!;
log('starting the local stack…');
let detectorEndpoint: DetectorEndpoint | undefined;
const stack = await startLocalStack({
  home,
  quiet: true,
  policy: 'standard',
  ...(values.analyze ? { analyze: values.analyze } : {}),
  detector: { start: async (options) => (detectorEndpoint = await startDetectorEndpoint(options)) },
  ...(values.pollers ? { pollerConcurrency: Number(values.pollers) } : {}),
});
const clients = clientsFor(stack.region, stack.endpoints, true);
const rekognition = new RekognitionClient(localClientConfig(stack).rekognition);
const workerCpuMs = () => detectorEndpoint?.stats().classifier?.cpuMs;

const { decisionOf } = decisionWatcher(stack.events);
const upload = (key: string, body: Buffer) =>
  clients.s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: `${stack.names.uploadsPrefix}${key}`, Body: body, ContentType: 'image/jpeg' }));
const detectBytes = (image: Buffer) => rekognition.send(new DetectModerationLabelsCommand({ Image: { Bytes: image }, MinConfidence: 50 }));

try {
  // Warm every classifier worker (the pool grows while requests wait) so no stage pays a model load.
  for (let round = 0; round < 10; round++) {
    await Promise.all(latencyImages.slice(0, 4).map(detectBytes));
    const pool = detectorEndpoint?.stats().classifier;
    if (!pool || pool.ready >= pool.size) break;
  }
  await Promise.all(warmImages.map((image, i) => upload(`bench/warm-${i}.jpg`, image)));
  await Promise.all(warmImages.map((_, i) => decisionOf(`${stack.names.uploadsPrefix}bench/warm-${i}.jpg`, 120_000)));

  log(`detector alone: ${N} images, ${CONCURRENCY} in flight…`);
  const detectorLatencies: number[] = [];
  let cpu = cpuSnapshot();
  let workers = workerCpuMs();
  const detectorStart = performance.now();
  await inParallel(images, CONCURRENCY, async (image) => {
    const t0 = performance.now();
    await detectBytes(image);
    detectorLatencies.push(performance.now() - t0);
  });
  const detector = summarise(detectorLatencies, (performance.now() - detectorStart) / 1000, cpuSince(cpu), workers === undefined ? undefined : workerCpuMs()! - workers);

  log(`pipeline: ${N} uploads, ${CONCURRENCY} in flight…`);
  const keys = images.map((_, i) => `${stack.names.uploadsPrefix}bench/image-${String(i).padStart(5, '0')}.jpg`);
  const uploadedAt = new Map<string, number>();
  cpu = cpuSnapshot();
  workers = workerCpuMs();
  const pipelineStart = performance.now();
  await inParallel(images, CONCURRENCY, async (image, i) => {
    uploadedAt.set(keys[i]!, performance.now());
    await upload(keys[i]!.slice(stack.names.uploadsPrefix.length), image);
  });
  const recordedAt = await Promise.all(keys.map((key) => decisionOf(key, Math.max(120_000, N * 2_000))));
  const pipelineEnd = Math.max(...recordedAt);
  const pipeline = summarise(
    keys.map((key, i) => recordedAt[i]! - uploadedAt.get(key)!),
    (pipelineEnd - pipelineStart) / 1000,
    cpuSince(cpu),
    workers === undefined ? undefined : workerCpuMs()! - workers,
  );

  // One image at a time on an idle pipeline: what the orchestration adds to one upload's wait.
  await stack.services.poller.idle();
  const single = { detectorMs: [] as number[], pipelineMs: [] as number[] };
  if (LATENCY_SAMPLES > 0) log(`single uploads on the idle pipeline: ${LATENCY_SAMPLES}…`);
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const t0 = performance.now();
    await detectBytes(latencyImages[i]!);
    single.detectorMs.push(performance.now() - t0);
  }
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const key = `${stack.names.uploadsPrefix}bench/single-${i}.jpg`;
    const t0 = performance.now();
    await upload(key.slice(stack.names.uploadsPrefix.length), latencyImages[LATENCY_SAMPLES + i]!);
    single.pipelineMs.push((await decisionOf(key, 60_000)) - t0);
    await stack.services.poller.idle();
  }
  const median = (list: number[]) => Math.round(percentile([...list].sort((a, b) => a - b), 50));
  const latency = LATENCY_SAMPLES
    ? { samples: LATENCY_SAMPLES, detectorMs: median(single.detectorMs), pipelineMs: median(single.pipelineMs), addedMs: median(single.pipelineMs) - median(single.detectorMs) }
    : undefined;

  const orchestration = {
    process: round(pipeline.cpuMsPerImage.process - detector.cpuMsPerImage.process),
    ...(pipeline.cpuMsPerImage.main !== undefined && detector.cpuMsPerImage.main !== undefined
      ? { main: round(pipeline.cpuMsPerImage.main - detector.cpuMsPerImage.main) }
      : {}),
  };
  const ratio = Math.round((pipeline.imagesPerSecond / detector.imagesPerSecond) * 100) / 100;
  const machine = machineLine();
  const load = { atStart: round(loadAtStart, 2), atEnd: round(loadavg()[0]!, 2) };
  const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);

  if (values.json) {
    process.stdout.write(`${JSON.stringify({ machine, date: new Date().toISOString(), load, images: N, concurrency: CONCURRENCY, orchestration, detector, pipeline, latency, maxRssMb, ratio })}\n`);
  } else {
    const ms = (v: number | undefined) => (v === undefined ? 'n/a' : v.toFixed(1)).padStart(8);
    const row = (name: string, m: Measure) =>
      `${name.padEnd(10)} ${String(m.images).padStart(6)} ${m.seconds.toFixed(2).padStart(8)} ${m.imagesPerSecond.toFixed(1).padStart(9)} ${String(m.p50Ms).padStart(8)} ${String(m.p95Ms).padStart(8)}`;
    const cpuRow = (name: string, c: Measure['cpuMsPerImage']) =>
      `${name.padEnd(34)} ${ms(c.process)} ${ms(c.main)} ${ms(c.detectorWorkers)} ${ms(c.main === undefined ? undefined : c.process - c.main - (c.detectorWorkers ?? 0))}`;
    console.log(`machine: ${machine}; load average ${load.atStart} at start, ${load.atEnd} at the end`);
    console.log(`date: ${new Date().toISOString()}`);
    console.log(`images: ${N} generated 640×480 JPEG, ${CONCURRENCY} in flight; policy standard; contextual review off${values.analyze ? `; analysis on every image: ${values.analyze}` : ''}`);
    console.log('');
    console.log(`${'CPU time per image (ms)'.padEnd(34)} ${'process'.padStart(8)} ${'main'.padStart(8)} ${'workers'.padStart(8)} ${'other'.padStart(8)}`);
    console.log(`${'orchestration (pipeline − detector)'.padEnd(34)} ${ms(orchestration.process)} ${ms(orchestration.main)}`);
    console.log(cpuRow('detector alone', detector.cpuMsPerImage));
    console.log(cpuRow('pipeline', pipeline.cpuMsPerImage));
    console.log('  (main: the main thread: emulators, handlers, SDK; workers: classifier threads, inference;');
    console.log('   other: libuv/libvips/GC threads: file I/O, LevelDB, JPEG decoding, hashing)');
    console.log('');
    console.log(`${'stage'.padEnd(10)} ${'images'.padStart(6)} ${'seconds'.padStart(8)} ${'images/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)}`);
    console.log(row('detector', detector));
    console.log(row('pipeline', pipeline));
    console.log('');
    if (latency) {
      console.log(
        `single upload on an idle pipeline (median of ${latency.samples}): detector alone ${latency.detectorMs} ms; upload → recorded decision ${latency.pipelineMs} ms (+${latency.addedMs} ms)`,
      );
    }
    console.log(`peak RSS of the process (stack + detector workers): ${maxRssMb} MB`);
    console.log(`ratio pipeline/detector (throughput): ${ratio}`);
  }
} finally {
  rekognition.destroy();
  await stack.stop();
  rmSync(home, { recursive: true, force: true });
}
