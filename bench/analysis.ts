/**
 * `npm run bench:analysis`: images per second, CPU time per image and memory of the local
 * detector's DetectLabels, DetectFaces and DetectText (human and Tesseract in the analysis worker,
 * docs/local-runtime.md, "Labels, faces and text"), through the endpoint with the AWS SDK, on the
 * real photographs in test/fixtures/photos/.
 *
 * For each operation: the first request (the model loads), then R rounds over the photos, C
 * requests in flight (the pool has one analysis worker by default, so C > 1 only queues). CPU time
 * is the whole process's (main thread, analysis worker, Tesseract's thread): on a shared machine it
 * moves less than wall time.
 *
 * Usage: npm run bench:analysis -- [--rounds R] [--concurrency C] [--workers W] [--json]
 */
import '../local/polyfills.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { DetectFacesCommand, DetectLabelsCommand, DetectTextCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import { startDetectorEndpoint } from '../local/detector/server.ts';
import { benchArgs, usageError } from './args.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const values = benchArgs(import.meta.url, {
  rounds: { type: 'string', default: '3' },
  concurrency: { type: 'string', default: '1' },
  workers: { type: 'string', default: '1' },
  json: { type: 'boolean', default: false },
});
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const WORKERS = Number(values.workers);
if (![ROUNDS, CONCURRENCY, WORKERS].every((v) => Number.isInteger(v) && v >= 1)) {
  usageError(import.meta.url, '--rounds, --concurrency and --workers take whole numbers of 1 or more');
}
const log = (line: string) => {
  if (!values.json) process.stderr.write(`${line}\n`);
};

const dir = new URL('../test/fixtures/photos/', import.meta.url);
const photos = readdirSync(dir)
  .filter((name) => /\.(jpe?g|png)$/i.test(name))
  .sort()
  .map((name) => ({ name, bytes: readFileSync(new URL(name, dir)) }));

const detector = await startDetectorEndpoint({
  s3: { endpoint: 'http://127.0.0.1:9' },
  classify: () => Promise.reject(new Error('not measured here')),
  analysisPool: { size: WORKERS },
});
const client = new RekognitionClient({ endpoint: detector.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' }, maxAttempts: 1 });

const operations = {
  DetectLabels: (Bytes: Uint8Array) => client.send(new DetectLabelsCommand({ Image: { Bytes } })),
  DetectFaces: (Bytes: Uint8Array) => client.send(new DetectFacesCommand({ Image: { Bytes }, Attributes: ['ALL'] })),
  DetectText: (Bytes: Uint8Array) => client.send(new DetectTextCommand({ Image: { Bytes } })),
};

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 100);

interface Result {
  operation: string;
  firstRequestMs: number;
  images: number;
  wallMs: number;
  imagesPerSecond: number;
  cpuMsPerImage: number;
  meanLatencyMs: number;
}
const results: Result[] = [];

for (const [operation, send] of Object.entries(operations)) {
  let started = performance.now();
  await send(photos[0].bytes);
  const firstRequestMs = performance.now() - started;

  const queue = Array.from({ length: ROUNDS }, () => photos).flat();
  const latencies: number[] = [];
  const cpuBefore = cpuMs();
  started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, queue.length) }, async () => {
      for (let photo = queue.shift(); photo; photo = queue.shift()) {
        const t = performance.now();
        await send(photo.bytes);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const wallMs = performance.now() - started;
  const cpu = cpuMs() - cpuBefore;
  const images = latencies.length;
  const result = {
    operation,
    firstRequestMs: Math.round(firstRequestMs),
    images,
    wallMs: Math.round(wallMs),
    imagesPerSecond: Number(((images * 1000) / wallMs).toFixed(2)),
    cpuMsPerImage: Math.round(cpu / images),
    meanLatencyMs: Math.round(latencies.reduce((a, b) => a + b, 0) / images),
  };
  results.push(result);
  log(
    `${operation.padEnd(13)} first request ${result.firstRequestMs} ms (model load); ${images} images in ${result.wallMs} ms: ` +
      `${result.imagesPerSecond} images/s, ${result.cpuMsPerImage} ms CPU per image, mean latency ${result.meanLatencyMs} ms`,
  );
}

clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage.rss());
const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGb: Math.round(totalmem() / 2 ** 30), loadAverage: loadavg().map((l) => Number(l.toFixed(2))), node: process.version };
const summary = { date: new Date().toISOString(), machine, photos: photos.map((p) => p.name), rounds: ROUNDS, concurrency: CONCURRENCY, workers: WORKERS, results, peakRssMb: Math.round(peakRss / 2 ** 20) };
log(`peak RSS ${summary.peakRssMb} MB (endpoint, analysis worker and Tesseract, one process); ${machine.cpus} cores (${machine.cpuModel}), load ${machine.loadAverage.join(' ')}`);
if (values.json) console.log(JSON.stringify(summary));

client.destroy();
await detector.close();
