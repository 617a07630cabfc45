/**
 * The lookup side of perceptual hashes (perceptual-hash.ts computes them): distances, and the bands a
 * hash is stored and looked up under (multi-index hashing). Pure, no sharp: the decision store
 * (functions/store/content-index.ts) and the record step use it without loading an image library.
 */

/** A near-duplicate is at most this many bits (of 64) away from the rejected image's hash. */
export const NEAR_DUPLICATE_MAX_DISTANCE = 10;
/** Bands of the hash used as lookup keys: 4 bands of 16 bits. */
export const HASH_BANDS = 4;
const BAND_BITS = 64 / HASH_BANDS;

export class PerceptualHashError extends Error {
  override name = 'PerceptualHashError';
}

/** Bits that differ between two hashes (16 hex digits each). */
export function hammingDistance(a: string, b: string): number {
  let x = BigInt(`0x${a}`) ^ BigInt(`0x${b}`);
  let bits = 0;
  while (x) {
    x &= x - 1n;
    bits += 1;
  }
  return bits;
}

/** The hash's bands, as `<band index>:<4 hex digits>`: the keys a lookup queries, one per band. */
export function bandKeys(hash: string): string[] {
  return Array.from({ length: HASH_BANDS }, (_, band) => `${band}:${bandValue(hash, band).toString(16).padStart(BAND_BITS / 4, '0')}`);
}

/** The keys a REJECTED hash is stored under: each band's value and every value one bit away (4 × 17). */
export function bandKeysForStorage(hash: string): string[] {
  const keys: string[] = [];
  for (let band = 0; band < HASH_BANDS; band++) {
    const value = bandValue(hash, band);
    for (let flip = -1; flip < BAND_BITS; flip++) {
      const variant = flip < 0 ? value : value ^ (1 << flip);
      keys.push(`${band}:${variant.toString(16).padStart(BAND_BITS / 4, '0')}`);
    }
  }
  return keys;
}

function bandValue(hash: string, band: number): number {
  if (!/^[0-9a-f]{16}$/.test(hash)) throw new PerceptualHashError(`not a 64-bit hash in hex: ${hash}`);
  return Number.parseInt(hash.slice(band * (BAND_BITS / 4), (band + 1) * (BAND_BITS / 4)), 16);
}
