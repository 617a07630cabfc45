/**
 * `npm run bench:near-duplicates`: how well the perceptual hash (functions/lib/perceptual-hash.ts) and
 * the known-bad index (functions/store/content-index.ts, band lookups) tell a re-upload of a rejected
 * image from a different image, measured on the sample images and on generated scenes (bench/scenes.ts):
 *
 * - transformed copies (resized to half, re-encoded at JPEG quality 60, 3 % cropped off the left and
 *   top, 3 % cropped off every edge): the share the index finds as near-duplicates of their original
 *   (every original stored as known bad, each copy looked up as Detect does);
 * - distinct images: every pair of different images within NEAR_DUPLICATE_MAX_DISTANCE (the false-match
 *   rate), and each image looked up against an index of all the others;
 * - the same scene with one shape moved: different pictures that share most of their content.
 *
 * Usage: npm run bench:near-duplicates -- [--scenes N] [--similar N] [--json]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { bandKeys, hammingDistance, NEAR_DUPLICATE_MAX_DISTANCE, perceptualHash, PerceptualHashError } from '../functions/lib/perceptual-hash.ts';
import { InMemoryContentIndex } from '../functions/store/content-index.ts';
import { sceneJpeg, sceneSvg, transformedCopies } from './scenes.ts';
import { benchArgs, usageError } from './args.ts';
import { machineLine } from './machine.ts';

const values = benchArgs(import.meta.url, {
  scenes: { type: 'string', default: '200' },
  similar: { type: 'string', default: '50' },
  json: { type: 'boolean', default: false },
});
const SCENES = Number(values.scenes);
const SIMILAR = Number(values.similar);
if (![SCENES, SIMILAR].every((v) => Number.isInteger(v) && v >= 2)) usageError(import.meta.url, '--scenes and --similar take whole numbers of 2 or more');
const log = (line: string) => {
  if (!values.json) process.stdout.write(`${line}\n`);
};
const POLICY = 'bench@1';
const T = NEAR_DUPLICATE_MAX_DISTANCE;
const at = new Date().toISOString();

interface Image {
  name: string;
  bytes: Buffer;
  hash?: string;
}

async function hashOf(bytes: Buffer): Promise<{ hash?: string; why?: string }> {
  try {
    const h = await perceptualHash(bytes);
    return h.informative ? { hash: h.hash } : { why: `too flat (contrast ${h.contrast})` };
  } catch (err) {
    if (err instanceof PerceptualHashError) return { why: 'not decodable' };
    throw err;
  }
}

const samplesDir = new URL('../samples/', import.meta.url).pathname;
const images: Image[] = [];
const skipped: string[] = [];
for (const file of readdirSync(samplesDir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort()) {
  const bytes = readFileSync(join(samplesDir, file));
  const { hash, why } = await hashOf(bytes);
  if (hash) images.push({ name: `samples/${file}`, bytes, hash });
  else skipped.push(`samples/${file}: ${why}`);
}
for (let seed = 1; seed <= SCENES; seed++) {
  const bytes = await sceneJpeg(seed);
  const { hash, why } = await hashOf(bytes);
  if (hash) images.push({ name: `scene ${seed}`, bytes, hash });
  else skipped.push(`scene ${seed}: ${why}`);
}
log(`machine: ${machineLine()}, sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}`);
log(`date: ${at}`);
log(`images: ${images.length} (${images.filter((i) => i.name.startsWith('samples/')).length} samples, ${images.length - images.filter((i) => i.name.startsWith('samples/')).length} generated scenes); without a hash: ${skipped.length ? skipped.join('; ') : 'none'}`);
log(`near-duplicate: at most ${T} of 64 bits apart, found through the band index\n`);

// Every original is known bad; each copy is looked up the way Detect looks up an upload.
const index = new InMemoryContentIndex();
for (const image of images) await index.rememberRejected({ perceptualHash: image.hash!, policyVersion: POLICY, jobId: image.name, recordedAt: at });

type Kind = 'resized' | 'jpeg60' | 'crop3' | 'crop3each';
// exactBandOnly: what the index would find if a rejected hash were stored under its 4 band values only.
type Row = { found: number; ownFound: number; exactBandOnly: number; wrong: string[]; distances: number[]; unhashed: string[] };
const row = (): Row => ({ found: 0, ownFound: 0, exactBandOnly: 0, wrong: [], distances: [], unhashed: [] });
const copies: Record<Kind, Row> = { resized: row(), jpeg60: row(), crop3: row(), crop3each: row() };
for (const image of images) {
  const transformed = await transformedCopies(image.bytes);
  for (const kind of Object.keys(copies) as Kind[]) {
    const row = copies[kind];
    const { hash, why } = await hashOf(transformed[kind]);
    if (!hash) {
      row.unhashed.push(`${image.name} (${why})`);
      continue;
    }
    row.distances.push(hammingDistance(image.hash!, hash));
    const matches = await index.nearRejected(hash, POLICY, T);
    if (matches.length) row.found += 1;
    if (matches.some((m) => m.jobId === image.name)) row.ownFound += 1;
    const originalBands = new Set(bandKeys(image.hash!));
    if (hammingDistance(image.hash!, hash) <= T && bandKeys(hash).some((key) => originalBands.has(key))) row.exactBandOnly += 1;
    for (const m of matches.filter((m) => m.jobId !== image.name)) row.wrong.push(`${image.name} ~ ${m.jobId} (distance ${m.distance})`);
  }
}

// Distinct images: every pair, and each image against an index of all the others.
const pairDistances: number[] = [];
for (let i = 0; i < images.length; i++) for (let j = i + 1; j < images.length; j++) pairDistances.push(hammingDistance(images[i]!.hash!, images[j]!.hash!));
let indexFalseMatches = 0;
for (const image of images) {
  const matches = await index.nearRejected(image.hash!, POLICY, T);
  if (matches.some((m) => m.jobId !== image.name)) indexFalseMatches += 1;
}

// The same scene with one shape moved.
const similar: number[] = [];
for (let k = 0; k < SIMILAR; k++) {
  const seed = 100_000 + k;
  const [a, b] = await Promise.all([sceneJpeg(seed), sceneJpeg(seed, { moveLastShape: 0.3 })]);
  const [ha, hb] = await Promise.all([hashOf(a), hashOf(b)]);
  if (ha.hash && hb.hash) similar.push(hammingDistance(ha.hash, hb.hash));
}

// Time to hash, one image at a time, on photo-sized files: a scene with film grain (gaussian noise,
// overlay), so the JPEG is as large as a camera's (smooth scenes compress to a few dozen KB).
const grainy = async (width: number, height: number) => {
  const scene = await sharp(Buffer.from(sceneSvg(7, { width, height }))).png().toBuffer();
  const grain = await sharp({ create: { width, height, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).png().toBuffer();
  return sharp(scene).composite([{ input: grain, blend: 'overlay' }]).jpeg({ quality: 85 }).toBuffer();
};
const timings: Record<string, number> = {};
for (const [name, make] of [
  ['1600×1200 JPEG', () => grainy(1600, 1200)],
  ['4032×3024 JPEG (12 MP)', () => grainy(4032, 3024)],
] as const) {
  const bytes = await make();
  await perceptualHash(bytes);
  const started = performance.now();
  for (let i = 0; i < 5; i++) await perceptualHash(bytes);
  timings[`${name}, ${(bytes.length / 1024).toFixed(0)} KB`] = Math.round(((performance.now() - started) / 5) * 10) / 10;
}

const pct = (n: number, of: number) => (of ? `${((100 * n) / of).toFixed(1)}%` : '-');
const stats = (d: number[]) => {
  const s = [...d].sort((a, b) => a - b);
  return { max: s.at(-1) ?? 0, p95: s[Math.floor(s.length * 0.95)] ?? 0, mean: s.length ? Math.round((s.reduce((a, b) => a + b, 0) / s.length) * 10) / 10 : 0 };
};
const withinT = (d: number[]) => d.filter((x) => x <= T).length;

log('transformed copies (a copy of each image, looked up against every image as known bad):');
log('copy        found as its original   (exact bands only)   distance max / p95 / mean   no hash   matched another image');
for (const [kind, row] of Object.entries(copies)) {
  const d = stats(row.distances);
  const n = row.distances.length + row.unhashed.length;
  log(
    `${kind.padEnd(11)} ${`${row.ownFound}/${n} (${pct(row.ownFound, n)})`.padEnd(23)} ${`${row.exactBandOnly}/${n} (${pct(row.exactBandOnly, n)})`.padEnd(20)} ${`${d.max} / ${d.p95} / ${d.mean}`.padEnd(27)} ${String(row.unhashed.length).padEnd(9)} ${row.wrong.length}`,
  );
}
for (const [kind, row] of Object.entries(copies)) {
  for (const u of row.unhashed) log(`  ${kind}: no hash for the copy of ${u}`);
  for (const w of row.wrong) log(`  ${kind}: the copy of ${w}`);
}
const pairStats = stats(pairDistances);
log(`\ndistinct images: ${pairDistances.length} pairs, ${withinT(pairDistances)} within ${T} bits (false-match rate ${pct(withinT(pairDistances), pairDistances.length)}); distance min ${Math.min(...pairDistances)}, mean ${pairStats.mean}`);
log(`each image against an index of the others: ${indexFalseMatches} of ${images.length} matched another image`);
const similarStats = stats(similar);
log(`same scene, one shape moved: ${withinT(similar)} of ${similar.length} pairs within ${T} bits (distance min ${Math.min(...similar)}, mean ${similarStats.mean}, max ${similarStats.max})`);
log(`\nhash time (one core's share, sharp.concurrency ${sharp.concurrency()}): ${Object.entries(timings).map(([k, v]) => `${k}: ${v} ms`).join('; ')}`);

if (values.json) {
  process.stdout.write(
    `${JSON.stringify({ date: at, images: images.length, skipped, maxDistance: T, copies, distinct: { pairs: pairDistances.length, withinT: withinT(pairDistances), min: Math.min(...pairDistances), mean: pairStats.mean, indexFalseMatches }, similar: { pairs: similar.length, withinT: withinT(similar), distances: similar }, timings }, null, 2)}\n`,
  );
}
