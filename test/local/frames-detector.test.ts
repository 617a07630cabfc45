/**
 * Every frame counts, with the REAL local detector (nsfwjs MobileNetV2, WASM): an animation whose
 * first frame is harmless (approve-landscape.jpg) and whose second is the still the detector rejects
 * (reject-skin-blobs.jpg) was APPROVED when only its first frame was converted; judged frame by frame
 * and combined (the worst frame decides) it is REJECTED. One model load (about 1-2 s).
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { combineFrameVerdicts, type JudgedFrame } from '../../functions/lib/frame-verdict.ts';
import { framesForRekognition } from '../../functions/lib/frames.ts';
import { toRekognitionBytes } from '../../functions/lib/image.ts';
import { presetPolicy } from '../../functions/lib/policy.ts';
import { normaliseLabels } from '../../functions/lib/taxonomy.ts';
import { decideVerdict } from '../../functions/lib/verdict.ts';
import { toModerationLabels } from '../../local/detector/mapping.ts';
import { createClassifierPool, type ClassifierPool } from '../../local/detector/pool.ts';

const SAMPLES = new URL('../../samples/', import.meta.url);
const policy = presetPolicy('standard');
let pool: ClassifierPool;
let harmless: Buffer;
let explicit: Buffer;

beforeAll(async () => {
  pool = createClassifierPool({ size: 1 });
  harmless = await sharp(readFileSync(new URL('approve-landscape.jpg', SAMPLES))).resize(400, 400, { fit: 'fill' }).png().toBuffer();
  explicit = await sharp(readFileSync(new URL('reject-skin-blobs.jpg', SAMPLES))).resize(400, 400, { fit: 'fill' }).png().toBuffer();
  await pool.ready();
});

afterAll(async () => {
  await pool?.close();
});

/** What the local Rekognition endpoint answers for these bytes, normalised as the detect step does. */
async function labelsOf(jpeg: Buffer) {
  return normaliseLabels(toModerationLabels(await pool.classify(jpeg), { minConfidence: policy.minConfidence }).ModerationLabels);
}

describe('an animation with a harmless first frame and an explicit second frame (real model)', () => {
  it.each(['gif', 'webp', 'tiff'] as const)('%s: first frame only is APPROVE; every frame, worst decides, is REJECT', async (format) => {
    const joined = sharp([harmless, explicit], { join: { animated: true } });
    const file = format === 'gif' ? await joined.gif({ delay: [500, 500] }).toBuffer() : format === 'webp' ? await joined.webp({ delay: [500, 500] }).toBuffer() : await joined.tiff().toBuffer();

    // Before: one conversion, the first frame.
    expect(decideVerdict(await labelsOf((await toRekognitionBytes(file)).bytes), policy).verdict).toBe('APPROVE');

    // Now: the detect step's loop (one DetectModerationLabels per frame, stop at a REJECT), then the worst frame.
    const set = await framesForRekognition(file, { maxFrames: policy.animation.maxFrames });
    if (set.kind !== 'frames') throw new Error(set.reason);
    const judged: JudgedFrame[] = [];
    for (const frame of set.frames) {
      const labels = await labelsOf(frame.bytes);
      judged.push({ index: frame.index, labels });
      if (decideVerdict(labels, policy).verdict === 'REJECT') break;
    }
    const combined = combineFrameVerdicts(judged, policy, set);
    expect(combined.verdict).toBe('REJECT');
    expect(combined.rule).toMatchObject({ action: 'reject' });
    expect(combined.frames).toEqual({ total: 2, distinct: 2, judged: [0, 1], decidingFrame: 1, flagged: [1], covered: true });
  });
});
