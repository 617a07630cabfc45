/**
 * Generated test pictures for the near-duplicate measurement (bench/near-duplicates.ts) and the reuse
 * tests: a random scene per seed (a gradient sky, 4 to 11 circles, rectangles and ellipses, some
 * blurred), rendered from SVG with sharp. Deterministic: the same seed gives the same pixels. A scene
 * has structure at every scale, unlike flat colours or noise, which have no perceptual hash at all.
 */
import sharp from 'sharp';

/** A deterministic pseudo-random generator (xorshift32). */
export function prng(seed: number): () => number {
  let state = (seed * 2654435761) >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x100000000;
  };
}

export interface SceneOptions {
  width?: number;
  height?: number;
  /** Moves the last shape by this share of the picture: the same scene with one thing changed. */
  moveLastShape?: number;
}

/** The SVG of scene `seed`. */
export function sceneSvg(seed: number, options: SceneOptions = {}): string {
  const random = prng(seed);
  const W = options.width ?? 1024;
  const H = options.height ?? 768;
  const colour = () => `rgb(${Math.floor(random() * 256)},${Math.floor(random() * 256)},${Math.floor(random() * 256)})`;
  let svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><defs>` +
    `<linearGradient id="g" x1="0" y1="0" x2="${random().toFixed(2)}" y2="1"><stop offset="0" stop-color="${colour()}"/><stop offset="1" stop-color="${colour()}"/></linearGradient>` +
    `<filter id="b"><feGaussianBlur stdDeviation="${(W / 170).toFixed(1)}"/></filter></defs><rect width="${W}" height="${H}" fill="url(#g)"/>`;
  const shapes = 4 + Math.floor(random() * 8);
  for (let i = 0; i < shapes; i++) {
    let x = random() * W;
    let y = random() * H;
    const size = (W / 1024) * (40 + random() * 300);
    const fill = colour();
    const kind = Math.floor(random() * 3);
    const blur = random() < 0.4 ? ' filter="url(#b)"' : '';
    if (options.moveLastShape && i === shapes - 1) {
      x = (x + W * options.moveLastShape) % W;
      y = (y + H * options.moveLastShape * 0.6) % H;
    }
    if (kind === 0) svg += `<circle cx="${x}" cy="${y}" r="${size / 2}" fill="${fill}"${blur}/>`;
    else if (kind === 1) svg += `<rect x="${x}" y="${y}" width="${size}" height="${size * (0.3 + random())}" fill="${fill}" transform="rotate(${random() * 90} ${x} ${y})"${blur}/>`;
    else svg += `<ellipse cx="${x}" cy="${y}" rx="${size / 2}" ry="${size / 4}" fill="${fill}"${blur}/>`;
  }
  return `${svg}</svg>`;
}

/** Scene `seed` as a JPEG (quality 90 unless told). */
export function sceneJpeg(seed: number, options: SceneOptions & { quality?: number } = {}): Promise<Buffer> {
  return sharp(Buffer.from(sceneSvg(seed, options))).jpeg({ quality: options.quality ?? 90 }).toBuffer();
}

/** The copies a re-uploader makes of a picture, as in docs/performance.md, "Near-duplicates". */
export async function transformedCopies(image: Buffer): Promise<Record<'resized' | 'jpeg60' | 'crop3' | 'crop3each', Buffer>> {
  const { width = 0, height = 0 } = await sharp(image).metadata();
  const dx = Math.round(width * 0.03);
  const dy = Math.round(height * 0.03);
  return {
    // Half the size, re-encoded at quality 85.
    resized: await sharp(image).resize(Math.round(width / 2)).jpeg({ quality: 85 }).toBuffer(),
    // The same pixels re-encoded at JPEG quality 60.
    jpeg60: await sharp(image).jpeg({ quality: 60 }).toBuffer(),
    // 3 % of the width and of the height cut off (from the left and the top).
    crop3: await sharp(image).extract({ left: dx, top: dy, width: width - dx, height: height - dy }).jpeg({ quality: 85 }).toBuffer(),
    // 3 % cut off every edge (6 % of each dimension).
    crop3each: await sharp(image).extract({ left: dx, top: dy, width: width - 2 * dx, height: height - 2 * dy }).jpeg({ quality: 85 }).toBuffer(),
  };
}

/**
 * The pictures `npm run bench` sends (bench/pipeline.ts): a colour gradient with per-pixel noise, a
 * JPEG (quality 80) of `width` × `height` (640 × 480 unless told), deterministic per index.
 */
export function gradientJpeg(index: number, width = 640, height = 480): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let seed = index * 7919 + 1;
  for (let p = 0; p < width * height; p++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const x = p % width;
    const y = Math.floor(p / width);
    raw[p * 3] = (x * 255) / width + (seed % 32);
    raw[p * 3 + 1] = (y * 255) / height + ((index * 37) % 64);
    raw[p * 3 + 2] = ((x + y + index * 11) % 256) ^ (seed % 16);
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
}
