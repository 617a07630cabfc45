/**
 * Generates the sample images in samples/ (CC0, made by this project): synthetic pictures drawn as
 * SVG and rasterised with sharp, nothing photographed. Then runs each through the local detector
 * (the real nsfwjs model, in this thread) and prints what it reports, for samples/README.md.
 *
 *   node --import tsx local/detector/make-samples.ts            # write samples/ and print the labels
 *   node --import tsx local/detector/make-samples.ts --check    # only print the labels of the files there
 *
 * The skin-toned samples are abstract ellipses and bands. They reach the Explicit and Non-Explicit
 * branches because MobileNetV2 reacts to large smooth skin-coloured areas, not because they depict
 * anything; their shapes were found by a small random search against the model (see
 * docs/local-runtime.md, "Limits"). Re-rendering with another sharp/librsvg version can shift the scores a little.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { classify, InvalidImageError } from './classifier.ts';
import { toModerationLabels } from './mapping.ts';

export const SAMPLES_DIR = fileURLToPath(new URL('../../samples/', import.meta.url));

/** What each sample is meant to exercise under the standard policy (reject Explicit >= 80, review >= 50; review Non-Explicit >= 60). */
export const SAMPLES = [
  { file: 'approve-landscape.jpg', expect: 'APPROVE', what: 'a landscape: sky gradient, sun, hills, a lake' },
  { file: 'approve-shapes.png', expect: 'APPROVE', what: 'a geometric drawing: primary-colour shapes on white' },
  { file: 'borderline-skin-bands.jpg', expect: 'BORDERLINE', what: 'abstract skin-toned ellipses crossed by a red and a navy band' },
  { file: 'reject-skin-blobs.jpg', expect: 'REJECT', what: 'abstract overlapping skin-toned ellipses, blurred' },
  { file: 'broken.jpg', expect: 'UNUSABLE', what: 'the first 2,000 bytes of approve-landscape.jpg (a truncated JPEG)' },
] as const;

const svg = (body: string, width = 400, height = 400) =>
  Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${body}</svg>`);

const LANDSCAPE = svg(
  `<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#3a7bd5"/><stop offset="1" stop-color="#cfe8ff"/></linearGradient>` +
    `<linearGradient id="lake" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#5fa8d3"/><stop offset="1" stop-color="#1b4965"/></linearGradient></defs>` +
    `<rect width="640" height="420" fill="url(#sky)"/><circle cx="500" cy="90" r="45" fill="#ffe066"/>` +
    `<path d="M0 260 Q120 170 240 240 T480 220 T640 240 V420 H0 Z" fill="#4f772d"/>` +
    `<path d="M0 300 Q160 240 320 290 T640 280 V420 H0 Z" fill="#31572c"/>` +
    `<ellipse cx="330" cy="370" rx="220" ry="35" fill="url(#lake)"/>`,
  640,
  420,
);

const SHAPES = svg(
  `<rect width="400" height="400" fill="#ffffff"/><circle cx="120" cy="120" r="80" fill="#e63946"/>` +
    `<rect x="200" y="180" width="150" height="150" fill="#1d3557"/><polygon points="60,350 160,200 260,350" fill="#ffb703"/>` +
    `<line x1="20" y1="20" x2="380" y2="60" stroke="#2a9d8f" stroke-width="8"/>`,
);

const SKIN_BANDS = svg(
  `<defs><radialGradient id="g" cx="36.4%" cy="37.0%" r="50.3%"><stop offset="0%" stop-color="#fff" stop-opacity="0.13"/><stop offset="68%" stop-color="#d9a07a"/><stop offset="100%" stop-color="#8d5524"/></radialGradient>` +
    `<filter id="b"><feGaussianBlur stdDeviation="1.1"/></filter></defs><rect width="400" height="400" fill="#ffffff"/><g filter="url(#b)">` +
    `<ellipse cx="226" cy="207" rx="113" ry="73" transform="rotate(65 200 200)" fill="url(#g)"/>` +
    `<ellipse cx="153" cy="203" rx="64" ry="47" transform="rotate(164 200 200)" fill="url(#g)"/>` +
    `<ellipse cx="144" cy="264" rx="128" ry="192" transform="rotate(56 200 200)" fill="url(#g)"/>` +
    `<ellipse cx="250" cy="301" rx="54" ry="168" transform="rotate(38 200 200)" fill="url(#g)"/>` +
    `<rect x="191" y="271" width="255" height="60" rx="21" transform="rotate(14 200 200)" fill="#c1121f"/>` +
    `<rect x="207" y="63" width="171" height="72" rx="5" transform="rotate(13 200 200)" fill="#1d3557"/></g>`,
);

const SKIN_BLOBS = svg(
  `<defs><radialGradient id="g" cx="51.2%" cy="37.1%" r="51.9%"><stop offset="0%" stop-color="#fff" stop-opacity="0.20"/><stop offset="57%" stop-color="#d9a07a"/><stop offset="100%" stop-color="#8d5524"/></radialGradient>` +
    `<filter id="b"><feGaussianBlur stdDeviation="5.1"/></filter></defs><rect width="400" height="400" fill="#d9a07a"/><g filter="url(#b)">` +
    `<ellipse cx="69" cy="197" rx="160" ry="135" transform="rotate(117 200 200)" fill="url(#g)"/>` +
    `<ellipse cx="137" cy="251" rx="86" ry="220" transform="rotate(152 200 200)" fill="url(#g)"/>` +
    `<ellipse cx="122" cy="208" rx="20" ry="115" transform="rotate(99 200 200)" fill="url(#g)"/>` +
    `<ellipse cx="247" cy="314" rx="155" ry="72" transform="rotate(96 200 200)" fill="url(#g)"/></g>`,
);

export async function renderSamples(): Promise<Record<(typeof SAMPLES)[number]['file'], Buffer>> {
  const landscape = await sharp(LANDSCAPE).jpeg({ quality: 85 }).toBuffer();
  return {
    'approve-landscape.jpg': landscape,
    'approve-shapes.png': await sharp(SHAPES).png({ compressionLevel: 9 }).toBuffer(),
    'borderline-skin-bands.jpg': await sharp(SKIN_BANDS).jpeg({ quality: 85 }).toBuffer(),
    'reject-skin-blobs.jpg': await sharp(SKIN_BLOBS).jpeg({ quality: 85 }).toBuffer(),
    'broken.jpg': landscape.subarray(0, 2_000),
  };
}

async function main(): Promise<void> {
  const checkOnly = process.argv.includes('--check');
  if (!checkOnly) {
    mkdirSync(SAMPLES_DIR, { recursive: true });
    for (const [file, bytes] of Object.entries(await renderSamples())) writeFileSync(path.join(SAMPLES_DIR, file), bytes);
  }
  for (const sample of SAMPLES) {
    const bytes = readFileSync(path.join(SAMPLES_DIR, sample.file));
    let line: string;
    try {
      const scores = await classify(bytes);
      const { ModerationLabels, ContentTypes } = toModerationLabels(scores, { minConfidence: 0 });
      const fmt = (n: number) => n.toFixed(1);
      line =
        `scores ${Object.entries(scores).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}\n    labels ` +
        (ModerationLabels.filter((l) => l.Confidence >= 1).map((l) => `${l.Name} (L${l.TaxonomyLevel}) ${fmt(l.Confidence)}`).join('; ') || '-') +
        (ContentTypes.length ? `\n    content types ${ContentTypes.map((c) => `${c.Name} ${fmt(c.Confidence)}`).join('; ')}` : '');
    } catch (err) {
      if (!(err instanceof InvalidImageError)) throw err;
      line = `${err.name}: ${err.message}`;
    }
    console.log(`${sample.file} (${bytes.length} bytes, expect ${sample.expect})\n    ${line}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main();
