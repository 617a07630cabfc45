/**
 * A perceptual hash of an image, for "known bad" near-duplicates: an upload that looks like an image
 * already REJECTED under the same policy is rejected without asking Rekognition again
 * (docs/architecture.md, "Never pay twice for the same bytes"; docs/performance.md, "Near-duplicates").
 *
 * The hash is a 64-bit DCT hash (pHash): the image is auto-oriented, flattened on white, reduced to
 * 32 × 32 grey pixels, and the 8 × 8 lowest frequencies of its 2-D DCT are compared with their median
 * (DC excluded from the median), one bit each. Low frequencies are what survives resizing,
 * re-encoding and small crops; measured with bench/near-duplicates.ts, a resized or re-encoded
 * (JPEG quality 60) copy stays within a few bits, a 3 % crop mostly within NEAR_DUPLICATE_MAX_DISTANCE,
 * and distinct images are around 32 bits apart. A difference hash (dHash, 9 × 8 gradients) was measured
 * too and moved far more on re-encoding of smooth images; it is not used.
 *
 * A hash says nothing about an image with almost no contrast (a flat colour, a faint noise): its
 * DCT coefficients are rounding noise and two unrelated flat images could share a hash. Such images
 * get no hash (`informative: false`) and are never matched as near-duplicates.
 *
 * Lookup without a scan (multi-index hashing): the 64 bits are cut into HASH_BANDS bands of 16 bits.
 * If two hashes are within d bits, at least one band differs in at most floor(d / HASH_BANDS) bits;
 * a REJECTED hash is stored under each band's value and every value one bit away from it
 * (bandKeysForStorage: 4 × 17 keys), so one exact-key Query per band of the new image (4 Queries)
 * finds every stored hash with a band within one bit, which is every hash within 7 bits and most
 * within 10. Candidates are then compared on all 64 bits.
 *
 * Pure image work with sharp; no AWS clients.
 */
import sharp from 'sharp';
import { MAX_DECODE_PIXELS } from './image.ts';
import { PerceptualHashError } from './hash-bands.ts';

export { PerceptualHashError, bandKeys, bandKeysForStorage, hammingDistance, HASH_BANDS, NEAR_DUPLICATE_MAX_DISTANCE } from './hash-bands.ts';

/**
 * Below this standard deviation of the 32 × 32 grey image (0-255), the image is too flat for its hash
 * to mean anything (a solid colour, noise around one colour).
 */
export const MIN_CONTRAST = 6;

const SIZE = 32;
const KEEP = 8;
/** cos((2x + 1) u π / 2N) for u < 8, x < 32: the DCT-II basis, computed once. */
const BASIS: Float64Array[] = Array.from({ length: KEEP }, (_, u) => Float64Array.from({ length: SIZE }, (_, x) => Math.cos(((2 * x + 1) * u * Math.PI) / (2 * SIZE))));

export interface PerceptualHash {
  /** 16 hex digits. */
  hash: string;
  /** False for images too flat to be compared (see MIN_CONTRAST): never matched. */
  informative: boolean;
  /** The standard deviation of the 32 × 32 grey image. */
  contrast: number;
}

/**
 * The pHash of an image file (its first frame or page). Decoding streams through libvips with
 * shrink-on-load for JPEG, so even a 10,000 px JPEG is never held decoded at full size. Throws
 * PerceptualHashError for what sharp cannot decode.
 */
export async function perceptualHash(bytes: Buffer, options: { maxPixels?: number } = {}): Promise<PerceptualHash> {
  let grey: Buffer;
  try {
    grey = await sharp(bytes, { limitInputPixels: options.maxPixels ?? MAX_DECODE_PIXELS, failOn: 'error', pages: 1 })
      .rotate()
      .flatten({ background: '#ffffff' })
      .greyscale()
      .resize(SIZE, SIZE, { fit: 'fill' })
      .raw()
      .toBuffer();
  } catch (err) {
    throw new PerceptualHashError((err as Error)?.message ?? String(err));
  }
  return hashOfGrey(grey);
}

/** The hash of 32 × 32 grey pixels (row-major, one byte each). */
export function hashOfGrey(grey: Uint8Array): PerceptualHash {
  if (grey.length !== SIZE * SIZE) throw new PerceptualHashError(`expected ${SIZE * SIZE} grey pixels, got ${grey.length}`);
  let sum = 0;
  for (const v of grey) sum += v;
  const mean = sum / grey.length;
  let variance = 0;
  for (const v of grey) variance += (v - mean) ** 2;
  const contrast = Math.sqrt(variance / grey.length);
  // Row transform (32 rows × 8 frequencies), then columns: 8 × 8 coefficients.
  const rows = new Float64Array(SIZE * KEEP);
  for (let y = 0; y < SIZE; y++) {
    for (let v = 0; v < KEEP; v++) {
      let s = 0;
      const basis = BASIS[v]!;
      for (let x = 0; x < SIZE; x++) s += grey[y * SIZE + x]! * basis[x]!;
      rows[y * KEEP + v] = s;
    }
  }
  const coefficients: number[] = [];
  for (let u = 0; u < KEEP; u++) {
    const basis = BASIS[u]!;
    for (let v = 0; v < KEEP; v++) {
      let s = 0;
      for (let y = 0; y < SIZE; y++) s += rows[y * KEEP + v]! * basis[y]!;
      coefficients.push(s);
    }
  }
  const ac = coefficients.slice(1).sort((a, b) => a - b);
  const median = (ac[(ac.length - 1) >> 1]! + ac[ac.length >> 1]!) / 2;
  let hash = 0n;
  for (const c of coefficients) hash = (hash << 1n) | (c > median ? 1n : 0n);
  return { hash: hash.toString(16).padStart(16, '0'), informative: contrast >= MIN_CONTRAST, contrast: Math.round(contrast * 100) / 100 };
}
