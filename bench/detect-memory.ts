/**
 * `npm run bench:detect-memory`: what the detect handler needs in memory and time, per Lambda memory
 * setting, to size FUNCTION_MEMORY_MB.detect (functions/lib/pipeline-settings.ts) on measurements.
 *
 * Each case runs the real handler (functions/detect.ts) once in a fresh Node process, as a cold Lambda
 * container would, with AWS_LAMBDA_FUNCTION_MEMORY_SIZE set (the decode budget follows it), in-memory
 * stores and a Rekognition client that answers at once; the process's peak RSS (maxRSS) is what Lambda
 * would report as Max Memory Used, plus the runtime's own (the Node.js 22 runtime's bootstrap, about
 * 20-30 MB more than a bare `node`), minus tsx (which compiles TypeScript here: about 30 MB that the
 * esbuild bundle deployed to Lambda does not have).
 *
 * Cases: a 12 MP camera JPEG (read by reference, perceptual hash at 1/8 scale), the largest still PNG
 * Rekognition reads by reference (10,000 × 10,000, under 15 MB), the largest WebP the decode budget
 * converts at that memory, and a 40-frame animated GIF.
 *
 * Usage: npm run bench:detect-memory -- [--memory 256,512,1024] [--json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ObjectStore } from '../functions/store/object-store.ts';
import { benchArgs, usageError } from './args.ts';
import { machineLine } from './machine.ts';

const here = fileURLToPath(import.meta.url);

if (process.argv[2] === '--child') {
  await child(process.argv[3]!);
  process.exit(0);
}

const values = benchArgs(import.meta.url, { memory: { type: 'string', default: '256,512,1024' }, json: { type: 'boolean', default: false } });
const memories = values.memory.split(',').map(Number);
if (!memories.every((mb) => Number.isInteger(mb) && mb >= 128 && mb <= 10_240)) usageError(import.meta.url, '--memory takes Lambda memory sizes in MB (128 to 10240), comma-separated');
const sharp = (await import('sharp')).default;
const { sceneSvg } = await import('./scenes.ts');
const { decodeBudgetBytes } = await import('../functions/lib/image.ts');
const dir = mkdtempSync(join(tmpdir(), 'detect-memory-'));

const grainy = async (width: number, height: number) => {
  const scene = await sharp(Buffer.from(sceneSvg(11, { width: Math.min(width, 4096), height: Math.min(height, 4096) })))
    .resize(width, height, { fit: 'fill' })
    .png()
    .toBuffer();
  const grain = await sharp({ create: { width, height, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).png().toBuffer();
  const composed = sharp(scene, { limitInputPixels: false }).composite([{ input: grain, blend: 'overlay' }]);
  return composed.jpeg({ quality: 85 }).toBuffer();
};

const files: Record<string, string> = {};
const save = (name: string, bytes: Buffer) => {
  files[name] = join(dir, name);
  writeFileSync(files[name]!, bytes);
  return bytes.length;
};
const sizes: Record<string, number> = {};
sizes['camera-12mp.jpg'] = save('camera-12mp.jpg', await grainy(4032, 3024));
sizes['largest-direct.png'] = save(
  'largest-direct.png',
  await (async () => {
    const side = 10_000;
    const tile = await sharp(Buffer.from(sceneSvg(12, { width: 1000, height: 1000 }))).removeAlpha().raw().toBuffer();
    const raw = Buffer.alloc(side * side * 3);
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x += 1000) tile.copy(raw, (y * side + x) * 3, (y % 1000) * 3000, (y % 1000) * 3000 + 3000);
    return sharp(raw, { raw: { width: side, height: side, channels: 3 }, limitInputPixels: false }).png({ compressionLevel: 6 }).toBuffer();
  })(),
);
for (const memory of memories) {
  // The largest RGB WebP whose decoded pixels fit the budget of this memory (WebP allows 16,383 px a side).
  const side = Math.min(16_383, Math.floor(Math.sqrt(decodeBudgetBytes(memory) / 3)) - 16);
  // A 1024 px scene tiled over the whole picture, encoded from raw pixels with the fastest setting
  // (sharp's own upscaling pipeline to 100+ Mpx takes many minutes here).
  const tile = await sharp(Buffer.from(sceneSvg(13, { width: 1024, height: 1024 }))).removeAlpha().raw().toBuffer();
  const raw = Buffer.alloc(side * side * 3);
  for (let y = 0; y < side; y++) {
    const from = (y % 1024) * 1024 * 3;
    for (let x = 0; x < side; x += 1024) tile.copy(raw, (y * side + x) * 3, from + 0, from + Math.min(1024, side - x) * 3);
  }
  const webp = await sharp(raw, { raw: { width: side, height: side, channels: 3 }, limitInputPixels: false }).webp({ quality: 50, effort: 0 }).toBuffer();
  sizes[`largest-conversion-${memory}.webp`] = save(`largest-conversion-${memory}.webp`, webp);
  // The worst case for memory: an interlaced (Adam7) PNG cannot be decoded a strip at a time, nor at a
  // smaller scale. 10,240 px wide (over Rekognition's 10,000, so converted) and as tall as the budget allows.
  const width = 10_240;
  const height = Math.floor(decodeBudgetBytes(memory) / 3 / width) - 8;
  const pngRaw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = (y % 1024) * 1024 * 3;
    for (let x = 0; x < width; x += 1024) tile.copy(pngRaw, (y * width + x) * 3, from, from + Math.min(1024, width - x) * 3);
  }
  sizes[`largest-conversion-${memory}.png`] = save(
    `largest-conversion-${memory}.png`,
    await sharp(pngRaw, { raw: { width, height, channels: 3 }, limitInputPixels: false }).png({ progressive: true, compressionLevel: 6 }).toBuffer(),
  );
}
{
  const frames = await Promise.all(Array.from({ length: 40 }, (_, i) => sharp(Buffer.from(sceneSvg(200 + i, { width: 800, height: 600 }))).removeAlpha().raw().toBuffer()));
  const strip = sharp(Buffer.concat(frames), { raw: { width: 800, height: 600 * 40, channels: 3, pageHeight: 600 } as never });
  sizes['animation-40-frames.gif'] = save('animation-40-frames.gif', await strip.gif({ delay: Array(40).fill(100), loop: 0, effort: 1 }).toBuffer());
}

const rows: { case: string; memoryMb: number; maxRssMb: number; baselineRssMb: number; ms: number; verdict: string; detail: string }[] = [];
for (const memory of memories) {
  for (const name of ['camera-12mp.jpg', 'largest-direct.png', `largest-conversion-${memory}.webp`, `largest-conversion-${memory}.png`, 'animation-40-frames.gif']) {
    const out = spawnSync(process.execPath, ['--import', 'tsx', here, '--child', JSON.stringify({ file: files[name], memory })], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    const line = out.stdout.trim().split('\n').at(-1) ?? '';
    let result: { maxRssMb: number; baselineRssMb: number; ms: number; verdict: string; detail: string };
    try {
      result = JSON.parse(line);
    } catch {
      result = { maxRssMb: NaN, baselineRssMb: NaN, ms: NaN, verdict: `crashed (${out.status ?? out.signal})`, detail: out.stderr.slice(-300) };
    }
    rows.push({ case: name.replace(`-${memory}`, ''), memoryMb: memory, ...result });
    if (!values.json) process.stderr.write('.');
  }
}
rmSync(dir, { recursive: true, force: true });

if (values.json) {
  process.stdout.write(`${JSON.stringify({ date: new Date().toISOString(), sizes, rows }, null, 2)}\n`);
} else {
  process.stdout.write(`machine: ${machineLine()}; date ${new Date().toISOString()}\n`);
  process.stdout.write(`files: ${Object.entries(sizes).map(([k, v]) => `${k} ${(v / 2 ** 20).toFixed(1)} MB`).join(', ')}\n\n`);
  process.stdout.write('memory  case                          peak RSS  after import  time     verdict\n');
  for (const r of rows) {
    process.stdout.write(
      `${String(r.memoryMb).padStart(6)}  ${r.case.padEnd(28)}  ${`${r.maxRssMb} MB`.padStart(8)}  ${`${r.baselineRssMb} MB`.padStart(12)}  ${`${r.ms} ms`.padStart(7)}  ${r.verdict}${r.detail ? ` (${r.detail})` : ''}\n`,
    );
  }
}

/** One cold invocation of the detect handler on one file. */
async function child(spec: string): Promise<void> {
  const { file, memory } = JSON.parse(spec) as { file: string; memory: number };
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memory),
    DECISION_TABLE: 'bench',
    MODERATION_POLICY: 'standard',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  const bytes = readFileSync(file);
  const { mockClient } = await import('aws-sdk-client-mock');
  const { DetectModerationLabelsCommand, RekognitionClient } = await import('@aws-sdk/client-rekognition');
  mockClient(RekognitionClient).on(DetectModerationLabelsCommand).resolves({ ModerationModelVersion: '7.0', ModerationLabels: [] });
  const { useStores } = await import('../functions/stores.ts');
  const { InMemoryDecisionStore } = await import('../functions/store/memory.ts');
  const unused = () => {
    throw new Error('not used by detect');
  };
  const objects: Partial<ObjectStore> = {
    head: async () => ({ size: bytes.length, eTag: 'bench' }),
    read: async (_ref, range) => (range ? bytes.subarray(range.start, range.end + 1) : bytes),
    fetch: async (_ref, { maxBytes }) => ({ size: bytes.length, eTag: 'bench', ...(bytes.length <= maxBytes ? { bytes: Buffer.from(bytes) } : {}) }),
    readTags: unused,
    writeTags: unused,
    copyToQuarantine: unused,
    delete: unused,
    list: unused,
  };
  useStores({
    decisions: new InMemoryDecisionStore(),
    // The ObjectStore methods detect calls; anything else would be a surprise.
    objects: new Proxy(objects, { get: (target, name) => target[name as keyof ObjectStore] ?? unused }) as ObjectStore,
  });
  const { handler } = await import('../functions/detect.ts');
  const baselineRssMb = Math.round(process.memoryUsage().rss / 2 ** 20);
  const now = new Date().toISOString();
  const started = performance.now();
  const out = await handler({ job: { jobId: 'b'.repeat(40), bucket: 'bench', key: `uploads/bench/${file.split('/').at(-1)}`, eTag: 'bench', eventTime: now, receivedAt: now } });
  const ms = Math.round(performance.now() - started);
  const detection = out.detection!;
  // VmHWM: this process's own peak (getrusage's maxRSS can carry the parent's over fork and exec).
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  process.stdout.write(
    `${JSON.stringify({
      maxRssMb: Math.round((hwm ? Number(hwm[1]) : process.resourceUsage().maxRSS) / 1024),
      baselineRssMb,
      ms,
      verdict: detection.verdict,
      detail:
        detection.unusableReason ??
        [detection.conversion, detection.frames ? `${detection.frames.judged.length} of ${detection.frames.total} frames judged` : '', detection.fingerprint?.perceptualHash ? 'perceptual hash' : 'no perceptual hash']
          .filter(Boolean)
          .join('; '),
    })}\n`,
  );
}
