/**
 * `npm run bench:soak`: the memory of a long-running local pipeline (`moderation serve` left on for a
 * day): N distinct uploads kept C in flight (an upload is in flight until its decision is recorded,
 * so no backlog builds up, as on a pipeline that keeps up), and every K decisions the process's RSS
 * and its V8 heap after a full garbage collection. What the figures tell: whether memory levels off
 * (caches filling, then steady) or climbs with every image (something is kept per image).
 *
 * The growth is a least-squares slope over the second half of the samples (the first half includes
 * the warm-up: model load, JIT, LevelDB and libvips caches). The heap after GC is the figure that
 * shows a leak in JavaScript; RSS also holds native memory (LevelDB, libvips, the classifier's
 * worker threads) and what the allocator keeps after freeing.
 *
 * Usage: npm run bench:soak -- [--images N] [--concurrency C] [--every K] [--json]
 *   --images       uploads in all (default 2000)
 *   --concurrency  uploads in flight (default 8)
 *   --every        decisions between two samples (default 200)
 */
import '../local/polyfills.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startLocalStack } from '../local/stack.ts';
import { clientsFor } from '../cli/target.ts';
import { gradientJpeg } from './scenes.ts';
import { benchArgs, usageError } from './args.ts';
import { decisionWatcher } from './decisions.ts';
import { machineLine } from './machine.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const values = benchArgs(import.meta.url, {
  images: { type: 'string', default: '2000' },
  concurrency: { type: 'string', default: '8' },
  every: { type: 'string', default: '200' },
  json: { type: 'boolean', default: false },
});
const N = Number(values.images);
const CONCURRENCY = Number(values.concurrency);
const EVERY = Number(values.every);
if (![N, CONCURRENCY, EVERY].every((v) => Number.isInteger(v) && v >= 1) || N < 4 * EVERY) {
  usageError(import.meta.url, '--images, --concurrency and --every take whole numbers of 1 or more, with at least 4 samples (--images ≥ 4 × --every)');
}
const gc = globalThis.gc;
if (!gc) usageError(import.meta.url, 'run it as npm run bench:soak (node --expose-gc): the heap is measured after a full collection');

const log = (line: string) => {
  if (!values.json) process.stderr.write(`${line}\n`);
};
const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

interface Sample {
  decided: number;
  rssMb: number;
  heapAfterGcMb: number;
  externalMb: number;
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx;
}

const home = mkdtempSync(join(tmpdir(), 'moderation-soak-'));
const loadAtStart = loadavg()[0]!;
log('starting the local stack…');
const stack = await startLocalStack({ home, quiet: true, policy: 'standard' });
const clients = clientsFor(stack.region, stack.endpoints, true);

let decided = 0;
const { decisionOf } = decisionWatcher(stack.events);

const samples: Sample[] = [];
const sample = () => {
  gc!();
  const usage = process.memoryUsage();
  const s = { decided, rssMb: mb(usage.rss), heapAfterGcMb: mb(usage.heapUsed), externalMb: mb(usage.external) };
  samples.push(s);
  log(`${String(s.decided).padStart(7)} decided: RSS ${s.rssMb} MB, heap after GC ${s.heapAfterGcMb} MB, external ${s.externalMb} MB`);
};

const started = performance.now();
try {
  sample();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        const index = next++;
        // Generated per upload: the bench holds no more than C images at a time.
        const key = `${stack.names.uploadsPrefix}soak/${index}.jpg`;
        const decision = decisionOf(key, 120_000);
        await clients.s3.send(new PutObjectCommand({ Bucket: stack.names.uploadsBucket, Key: key, Body: await gradientJpeg(index), ContentType: 'image/jpeg' }));
        await decision;
        decided++;
        if (decided % EVERY === 0) sample();
      }
    }),
  );
} finally {
  await stack.stop();
  rmSync(home, { recursive: true, force: true });
}

const seconds = (performance.now() - started) / 1000;
const secondHalf = samples.filter((s) => s.decided >= N / 2);
const perThousand = (pick: (s: Sample) => number) => Math.round(slope(secondHalf.map((s) => [s.decided, pick(s)])) * 1000 * 10) / 10;
const growth = { rssMbPer1000: perThousand((s) => s.rssMb), heapAfterGcMbPer1000: perThousand((s) => s.heapAfterGcMb) };
const machine = machineLine();
const load = { atStart: Number(loadAtStart.toFixed(2)), atEnd: Number(loadavg()[0]!.toFixed(2)) };
const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);

if (values.json) {
  process.stdout.write(`${JSON.stringify({ machine, date: new Date().toISOString(), load, images: N, concurrency: CONCURRENCY, seconds: Math.round(seconds), samples, growth, peakRssMb })}\n`);
} else {
  console.log(`machine: ${machine}; load average ${load.atStart} at start, ${load.atEnd} at the end`);
  console.log(`date: ${new Date().toISOString()}`);
  console.log(`images: ${N} generated 640×480 JPEG, ${CONCURRENCY} in flight; policy standard; ${Math.round(seconds)} s`);
  console.log('');
  console.log(`decided   RSS MB   heap after GC MB`);
  for (const s of samples) console.log(`${String(s.decided).padStart(7)} ${s.rssMb.toFixed(1).padStart(8)} ${s.heapAfterGcMb.toFixed(1).padStart(18)}`);
  console.log('');
  console.log(`peak RSS ${peakRssMb} MB`);
  console.log(`growth over the second half, per 1,000 images: RSS ${growth.rssMbPer1000} MB, heap after GC ${growth.heapAfterGcMbPer1000} MB`);
}
