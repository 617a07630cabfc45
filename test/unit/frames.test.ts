/**
 * Every frame counts (frames.ts, apng.ts, frame-verdict.ts) and formats that lie (image.ts: SVG, the
 * decode memory budget). Animations are built here with sharp from the samples: a harmless first
 * frame (approve-landscape.jpg) followed by the still the local detector rejects (reject-skin-blobs.jpg).
 */
import { readFileSync } from 'node:fs';
import { crc32, createDeflate } from 'node:zlib';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { apngFrames, apngInfo } from '../../functions/lib/apng.ts';
import { combineFrameVerdicts, type JudgedFrame } from '../../functions/lib/frame-verdict.ts';
import { framesAsJpeg, framesForRekognition, MIN_FRAME_COST_PIXELS, spreadSample, type FrameExtraction, type FrameSet } from '../../functions/lib/frames.ts';
import {
  decodeBudgetBytes,
  functionMemoryMb,
  inspectImage,
  pixelLimit,
  readiness,
  svgHandling,
  toRekognitionBytes,
} from '../../functions/lib/image.ts';
import { FUNCTION_MEMORY_MB } from '../../functions/lib/pipeline-settings.ts';
import { parsePolicy, presetPolicy } from '../../functions/lib/policy.ts';
import { ancestry } from '../../functions/lib/taxonomy.ts';
import type { ModerationLabel } from '../../functions/lib/types.ts';

const SAMPLES = new URL('../../samples/', import.meta.url);
const SIDE = 400;

/** The two samples on one 400 × 400 canvas, as lossless PNGs (the frames of every animation here). */
let harmless: Buffer;
let explicit: Buffer;

beforeAll(async () => {
  harmless = await sharp(readFileSync(new URL('approve-landscape.jpg', SAMPLES))).resize(SIDE, SIDE, { fit: 'fill' }).png().toBuffer();
  explicit = await sharp(readFileSync(new URL('reject-skin-blobs.jpg', SAMPLES))).resize(SIDE, SIDE, { fit: 'fill' }).png().toBuffer();
});

afterEach(() => {
  delete process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
});

type Format = 'gif' | 'webp' | 'tiff';

async function animation(format: Format, frames: Buffer[], delayMs = 500): Promise<Buffer> {
  const joined = sharp(frames, { join: { animated: true } });
  const delay = frames.map(() => delayMs);
  if (format === 'gif') return joined.gif({ delay, loop: 0 }).toBuffer();
  // Lossless: a repeated frame decodes to exactly the same pixels (lossy WebP re-encodes it as a delta).
  if (format === 'webp') return joined.webp({ delay, lossless: true }).toBuffer();
  return joined.tiff().toBuffer();
}

/** An APNG written chunk by chunk (sharp cannot write one): each frame's IDAT data becomes fdAT after the first. */
async function apng(frames: Buffer[], options: { defaultImageIsFrame?: boolean; delayMs?: number } = {}): Promise<Buffer> {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([length, body, crc]);
  };
  const chunksOf = (png: Buffer) => {
    const out: { type: string; data: Buffer }[] = [];
    for (let o = 8; o < png.length; ) {
      const length = png.readUInt32BE(o);
      out.push({ type: png.toString('latin1', o + 4, o + 8), data: png.subarray(o + 8, o + 8 + length) });
      o += 12 + length;
    }
    return out;
  };
  // Same IHDR for every frame: 8-bit RGBA, no palette.
  const pngs = await Promise.all(frames.map((f) => sharp(f).ensureAlpha().png({ palette: false }).toBuffer()));
  const { width, height } = await sharp(pngs[0]).metadata();
  const defaultIsFrame = options.defaultImageIsFrame ?? true;
  const animated = defaultIsFrame ? pngs : pngs.slice(1);
  const parts = [Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', chunksOf(pngs[0]!).find((c) => c.type === 'IHDR')!.data)];
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(animated.length, 0);
  parts.push(chunk('acTL', actl));
  let sequence = 0;
  const fctl = () => {
    const data = Buffer.alloc(26);
    data.writeUInt32BE(sequence++, 0);
    data.writeUInt32BE(width!, 4);
    data.writeUInt32BE(height!, 8);
    data.writeUInt16BE(options.delayMs ?? 500, 20);
    data.writeUInt16BE(1000, 22);
    return chunk('fcTL', data);
  };
  if (!defaultIsFrame) for (const c of chunksOf(pngs[0]!).filter((c) => c.type === 'IDAT')) parts.push(chunk('IDAT', c.data));
  animated.forEach((png, i) => {
    parts.push(fctl());
    for (const c of chunksOf(png).filter((c) => c.type === 'IDAT')) {
      if (i === 0 && defaultIsFrame) parts.push(chunk('IDAT', c.data));
      else {
        const seq = Buffer.alloc(4);
        seq.writeUInt32BE(sequence++);
        parts.push(chunk('fdAT', Buffer.concat([seq, c.data])));
      }
    }
  });
  parts.push(chunk('IEND', Buffer.alloc(0)));
  return Buffer.concat(parts);
}

/** Mean absolute difference (0-255) between two images, both reduced to 32 × 32 RGB: which sample a frame is. */
async function difference(a: Buffer, b: Buffer): Promise<number> {
  const small = (x: Buffer) => sharp(x).flatten({ background: '#fff' }).resize(32, 32, { fit: 'fill' }).removeAlpha().raw().toBuffer();
  const [pa, pb] = await Promise.all([small(a), small(b)]);
  let sum = 0;
  for (let i = 0; i < pa.length; i++) sum += Math.abs(pa[i]! - pb[i]!);
  return sum / pa.length;
}

/** Which of the two samples the JPEG shows. */
async function whichSample(jpeg: Buffer): Promise<'harmless' | 'explicit'> {
  return (await difference(jpeg, harmless)) < (await difference(jpeg, explicit)) ? 'harmless' : 'explicit';
}

function framesOf(result: FrameExtraction): FrameSet {
  if (result.kind !== 'frames') throw new Error(`expected frames, got unusable: ${result.reason}`);
  return result;
}

/** A solid-colour frame with a white square at a position that changes per frame (every frame visibly different). */
function movingSquare(count: number, side = 96): { strip: Buffer; width: number; height: number } {
  const strip = Buffer.alloc(side * side * 3 * count);
  for (let f = 0; f < count; f++) {
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const p = ((f * side + y) * side + x) * 3;
        const inSquare = Math.abs(x - ((f * 7) % (side - 16)) - 8) < 8 && Math.abs(y - ((f * 13) % (side - 16)) - 8) < 8;
        strip[p] = inSquare ? 255 : 40;
        strip[p + 1] = inSquare ? 255 : 90;
        strip[p + 2] = inSquare ? 255 : 160;
      }
    }
  }
  return { strip, width: side, height: side };
}

// ---------------------------------------------------------------------------------------------------

describe('every frame counts', () => {
  it.each(['gif', 'webp', 'tiff'] as const)('returns both frames of a 2-frame %s: the harmless first and the explicit second', async (format) => {
    const file = await animation(format, [harmless, explicit]);
    // What the detect step did before: the first frame only.
    expect(await whichSample((await toRekognitionBytes(file)).bytes)).toBe('harmless');

    const set = framesOf(await framesForRekognition(file, { maxFrames: 10 }));
    expect(set).toMatchObject({ kind: 'frames', format, total: 2, examined: 2, distinct: 2, covered: true });
    expect(set.frames.map((f) => [f.index, f.total, f.covers])).toEqual([
      [0, 2, 1],
      [1, 2, 1],
    ]);
    expect(await whichSample(set.frames[0]!.bytes)).toBe('harmless');
    expect(await whichSample(set.frames[1]!.bytes)).toBe('explicit');
    for (const frame of set.frames) {
      // Rekognition-ready: a JPEG within the request limits.
      expect(frame.bytes.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
      expect(frame.bytes.length).toBeLessThan(5 * 1024 * 1024);
      expect([frame.width, frame.height]).toEqual([SIDE, SIDE]);
    }
    if (format !== 'tiff') expect(set.frames.map((f) => f.atMs)).toEqual([0, 500]);
  });

  it('returns both frames of an APNG, which libvips alone reads as a still', async () => {
    const file = await apng([harmless, explicit]);
    const header = await inspectImage(file);
    expect(header).toMatchObject({ format: 'png', apng: true, pages: 2 });
    // Rekognition would have read it by S3 reference as a plain PNG, the first frame only.
    expect(readiness(header, file.length)).toEqual({ kind: 'convert', why: 'animated PNG (2 frames)' });
    expect(await whichSample((await toRekognitionBytes(file)).bytes)).toBe('harmless');

    const set = framesOf(await framesForRekognition(file, { maxFrames: 10 }));
    expect(set).toMatchObject({ format: 'png', total: 2, distinct: 2, covered: true });
    expect(await whichSample(set.frames[0]!.bytes)).toBe('harmless');
    expect(await whichSample(set.frames[1]!.bytes)).toBe('explicit');
  });

  it('finds an APNG whose animation chunk sits beyond the first 64 KB (after large metadata)', async () => {
    const file = await apng([harmless, explicit]);
    const ihdrEnd = 8 + 12 + 13;
    const comment = Buffer.concat([Buffer.from('Comment\0'), Buffer.alloc(100_000, 65)]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(comment.length);
    const body = Buffer.concat([Buffer.from('tEXt', 'latin1'), comment]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    const padded = Buffer.concat([file.subarray(0, ihdrEnd), length, body, crc, file.subarray(ihdrEnd)]);
    // The header read cannot tell: it is unreadable, so the detect step reads the whole file...
    await expect(inspectImage(padded.subarray(0, 64 * 1024))).rejects.toThrow(/before the image data|corrupt/);
    // ...which shows the animation.
    expect(await inspectImage(padded)).toMatchObject({ apng: true, pages: 2 });
    expect(framesOf(await framesForRekognition(padded, { maxFrames: 10 })).frames).toHaveLength(2);
  });

  it('judges an APNG default image that is not part of the animation as a frame of its own', async () => {
    // Viewers without APNG support show the default image; the animation shows the rest.
    const file = await apng([harmless, explicit, harmless], { defaultImageIsFrame: false });
    expect(apngInfo(file)).toMatchObject({ animationFrames: 2, defaultImageIsFrame: false, frames: 3 });
    const frames = [];
    for await (const frame of apngFrames(file)) frames.push(frame);
    expect(frames.map((f) => [f.index, f.delayMs])).toEqual([
      [0, 0],
      [1, 500],
      [2, 500],
    ]);
    const set = framesOf(await framesForRekognition(file, { maxFrames: 10 }));
    expect(set).toMatchObject({ total: 3, distinct: 2, covered: true });
    expect(await Promise.all(set.frames.map((f) => whichSample(f.bytes)))).toEqual(['harmless', 'explicit']);
  });

  it.each(['gif', 'webp', 'tiff'] as const)('judges identical %s frames once (a hash of their pixels)', async (format) => {
    const file = await animation(format, [harmless, explicit, harmless, explicit, harmless]);
    const set = framesOf(await framesForRekognition(file, { maxFrames: 10 }));
    expect(set).toMatchObject({ total: 5, examined: 5, distinct: 2, covered: true });
    expect(set.frames.map((f) => [f.index, f.covers])).toEqual([
      [0, 3],
      [1, 2],
    ]);
  });

  it('covers frames that differ from a judged one only by noise (near-identical), but not a small change', async () => {
    const base = await sharp(harmless).raw().toBuffer({ resolveWithObject: true });
    const shifted = Buffer.from(base.data);
    for (let i = 0; i < shifted.length; i++) shifted[i] = Math.min(255, shifted[i]! + ((i * 7919) % 5)); // +0..4: re-dithering
    const inset = Buffer.from(base.data);
    // A 40 × 40 px patch (1 % of the frame) of other content: enough to hide something in.
    for (let y = 180; y < 220; y++) for (let x = 180; x < 220; x++) inset.fill(0, (y * SIDE + x) * base.info.channels, (y * SIDE + x + 1) * base.info.channels);
    const raw = (data: Buffer) => sharp(data, { raw: { width: SIDE, height: SIDE, channels: base.info.channels } }).png().toBuffer();
    const file = await animation('tiff', [harmless, await raw(shifted), await raw(inset)]);
    const set = framesOf(await framesForRekognition(file, { maxFrames: 10 }));
    expect(set).toMatchObject({ total: 3, distinct: 3, covered: true });
    // Frame 1 is covered by frame 0; frame 2 is judged.
    expect(set.frames.map((f) => [f.index, f.covers])).toEqual([
      [0, 2],
      [2, 1],
    ]);
  });

  it('samples a long animation within maxFrames, first and last distinct frames included, and says it is not covered', async () => {
    const count = 60;
    const { strip, width, height } = movingSquare(count);
    const file = await sharp(strip, { raw: { width, height: height * count, channels: 3, pageHeight: height } })
      .gif({ delay: Array.from({ length: count }, () => 100), effort: 1 })
      .toBuffer();
    const set = framesOf(await framesForRekognition(file, { maxFrames: 10 }));
    expect(set).toMatchObject({ total: count, examined: count, distinct: count, covered: false });
    expect(set.reason).toMatch(/60 distinct frames of 60 .*exceed the 10 judged per file \(policy animation\.maxFrames\); 10 spread over the animation were judged/);
    const indexes = set.frames.map((f) => f.index);
    expect(indexes).toHaveLength(10);
    expect(indexes[0]).toBe(0);
    expect(indexes.at(-1)).toBe(count - 1);
    // Spread: no gap between judged frames is more than twice the even spacing.
    const gaps = indexes.slice(1).map((index, i) => index - indexes[i]!);
    expect(Math.max(...gaps)).toBeLessThanOrEqual((2 * (count - 1)) / 9);
    expect(set.frames.every((f) => f.total === count && f.bytes.length > 0)).toBe(true);
  });

  it('gives the contextual review the flagged frames, not the first one', async () => {
    const gif = await animation('gif', [harmless, explicit, harmless]);
    const frames = await framesAsJpeg(gif, [1, 7]);
    expect([...frames.keys()]).toEqual([1]);
    expect(await whichSample(frames.get(1)!.bytes)).toBe('explicit');
    const apngFile = await apng([harmless, explicit]);
    expect(await whichSample((await framesAsJpeg(apngFile, [1])).get(1)!.bytes)).toBe('explicit');
    // A still has frame 0 only.
    expect([...(await framesAsJpeg(explicit, [0, 1])).keys()]).toEqual([0]);
  });

  it('spreads the sample over time, not over frame numbers', () => {
    // Frame 0 lasts 9 s, frames 1-9 last 0.1 s each: the middle of the timeline is still frame 0.
    const starts = [0, 9000, 9100, 9200, 9300, 9400, 9500, 9600, 9700, 9800];
    const firsts = [...starts.keys()];
    expect(spreadSample(firsts, starts, 3)).toEqual([0, 1, 9]);
    expect(spreadSample(firsts, starts, 20)).toEqual(firsts);
    expect(spreadSample(firsts, starts, 1)).toEqual([0]);
  });

  it('stops decoding at the scan budget and says how far it got', async () => {
    const count = 30;
    const { strip, width, height } = movingSquare(count);
    const file = await sharp(strip, { raw: { width, height: height * count, channels: 3, pageHeight: height } }).webp({ delay: 100, lossless: true }).toBuffer();
    // Budget for 12 frames (small frames cost the per-frame minimum); memory for 5 frames per load: the
    // loads restart from frame 0, so after frames 0-4 (5) only frames 5-6 fit (a load of 7): 12.
    const frameBytes = width * height * 4;
    expect(width * height).toBeLessThan(MIN_FRAME_COST_PIXELS);
    const set = framesOf(
      await framesForRekognition(file, { maxFrames: 30, maxScanPixels: MIN_FRAME_COST_PIXELS * 12, memoryMb: (frameBytes * 5.5) / 0.4 / 1024 / 1024 }),
    );
    expect(set).toMatchObject({ total: count, examined: 7, covered: false });
    expect(set.reason).toMatch(/only the first 7 of 30 frames could be decoded/);
    expect(set.frames.map((f) => f.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // One load of all 30 frames would pass the budget: the first load is cut to what fits, not refused.
    const oneLoad = framesOf(await framesForRekognition(file, { maxFrames: 30, maxScanPixels: MIN_FRAME_COST_PIXELS * 12 }));
    expect(oneLoad).toMatchObject({ examined: 12, covered: false });
  });
});

describe('the worst frame decides', () => {
  const standard = presetPolicy('standard');
  const detected = (name: string, confidence: number): ModerationLabel[] => {
    const path = ancestry(name);
    return path.map((label, i) => ({ name: label, parentName: i === 0 ? '' : path[i - 1]!, level: (i + 1) as 1 | 2 | 3, confidence }));
  };
  const covered = { total: 3, distinct: 3, covered: true, frames: [{ index: 0 }, { index: 1 }, { index: 2 }] };

  it('rejects when any frame rejects, and records which frame decided', () => {
    const judged: JudgedFrame[] = [
      { index: 0, labels: [] },
      { index: 1, labels: detected('Explicit Nudity', 95) },
      { index: 2, labels: detected('Explicit Nudity', 65) },
    ];
    const combined = combineFrameVerdicts(judged, standard, covered);
    expect(combined).toMatchObject({ verdict: 'REJECT', rule: { label: 'Explicit Nudity', confidence: 95, action: 'reject' } });
    expect(combined.frames).toEqual({ total: 3, distinct: 3, judged: [0, 1, 2], decidingFrame: 1, flagged: [1, 2], covered: true });
    expect(combined.labels).toEqual(judged[1]!.labels);
    expect(combined.holdReason).toBeUndefined();
  });

  it('among frames with the same verdict, the more confident one decides; else the earlier', () => {
    const judged: JudgedFrame[] = [
      { index: 0, labels: detected('Explicit Nudity', 60) },
      { index: 1, labels: detected('Explicit Nudity', 70) },
      { index: 2, labels: detected('Explicit Nudity', 70) },
    ];
    const combined = combineFrameVerdicts(judged, standard, covered);
    expect(combined.verdict).toBe('BORDERLINE');
    expect(combined.frames?.decidingFrame).toBe(1);
    expect(combineFrameVerdicts([{ index: 0, labels: [] }, { index: 1, labels: [] }, { index: 2, labels: [] }], standard, covered)).toMatchObject({
      verdict: 'APPROVE',
      frames: { decidingFrame: 0, covered: true },
    });
  });

  it('never approves a file whose frames were not all covered, but still rejects it', () => {
    const uncovered = { total: 60, distinct: 60, covered: false, reason: '60 distinct frames exceed the 10 judged per file' };
    const approve = combineFrameVerdicts([{ index: 0, labels: [] }, { index: 59, labels: [] }], standard, uncovered);
    expect(approve.verdict).toBe('BORDERLINE');
    expect(approve.rule).toBeUndefined();
    expect(approve.holdReason).toBe('not every frame could be judged: 60 distinct frames exceed the 10 judged per file; held for a human');
    expect(approve.frames).toMatchObject({ total: 60, judged: [0, 59], covered: false });
    expect(combineFrameVerdicts([{ index: 0, labels: detected('Explicit Nudity', 90) }], standard, uncovered).verdict).toBe('REJECT');
    // Frames that were to be judged but were not (the caller stopped early without a REJECT): not covered either.
    expect(combineFrameVerdicts([{ index: 0, labels: [] }], standard, covered)).toMatchObject({ verdict: 'BORDERLINE', holdReason: 'frames 1, 2 of 3 not judged; held for a human' });
    // Stopping at a REJECT is fine: nothing can be worse.
    expect(combineFrameVerdicts([{ index: 0, labels: detected('Explicit Nudity', 99) }], standard, covered)).toMatchObject({ verdict: 'REJECT', frames: { covered: false } });
    expect(combineFrameVerdicts([], standard, covered)).toMatchObject({ verdict: 'BORDERLINE', holdReason: 'no frame was judged; held for a human' });
  });

  it('holds a file for a human when told to (SVG), unless a frame is rejected', () => {
    const still = { total: 1, distinct: 1, covered: true };
    const hold = svgHandling('review');
    if (hold.kind !== 'judge') throw new Error('expected judge');
    const held = combineFrameVerdicts([{ index: 0, labels: [] }], standard, still, { hold: hold.hold });
    expect(held).toMatchObject({ verdict: 'BORDERLINE', holdReason: expect.stringMatching(/^SVG: a browser may render it differently/) });
    expect(held.frames).toBeUndefined();
    expect(combineFrameVerdicts([{ index: 0, labels: detected('Explicit Nudity', 95) }], standard, still, { hold: hold.hold }).verdict).toBe('REJECT');
  });
});

describe('formats that lie: SVG', () => {
  const svg = Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200"><style>rect{fill:red}</style><rect width="300" height="200"/>' +
      '<image href="https://example.com/x.png" width="10" height="10"/><script>document.body.innerHTML = ""</script></svg>',
  );

  it('is held for review by default, unusable or trusted as a raster when the policy says so', async () => {
    const info = await inspectImage(svg);
    expect(info.format).toBe('svg');
    expect(readiness(info, svg.length)).toMatchObject({ kind: 'convert', hold: expect.stringMatching(/scripts, remote references, CSS/) });
    expect(readiness(info, svg.length, { svg: 'unusable' })).toMatchObject({ kind: 'unusable', reason: expect.stringMatching(/^SVG is not accepted by the policy/) });
    expect(readiness(info, svg.length, { svg: 'raster' })).toEqual({ kind: 'convert', why: 'svg is not JPEG or PNG' });
    // The policy carries the setting.
    expect(presetPolicy('standard').formats.svg).toBe('review');
    expect(parsePolicy('rules: {}\nformats: { svg: raster }').formats.svg).toBe('raster');
  });

  it('is rasterised into one frame when judged', async () => {
    const set = framesOf(await framesForRekognition(svg, { maxFrames: 10 }));
    expect(set).toMatchObject({ format: 'svg', total: 1, covered: true });
    expect(set.frames).toHaveLength(1);
    expect(set.frames[0]).toMatchObject({ index: 0, total: 1, width: 300, height: 200 });
  });

  it('is held to the memory budget like any raster (a huge width attribute)', async () => {
    const huge = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="60000" height="60000"><rect width="10" height="10"/></svg>');
    expect(await framesForRekognition(huge, { maxFrames: 10 })).toMatchObject({ kind: 'unusable', reason: expect.stringMatching(/too large to decode/) });
  });
});

describe('decoding is bounded by the function memory', () => {
  /** A real interlaced 16,000 × 16,000 RGB PNG (~0.75 MB, 768 MB decoded): black, deflated as it streams. */
  async function interlacedPng(width: number, height: number): Promise<Buffer> {
    const passes = [
      [0, 0, 8, 8],
      [4, 0, 8, 8],
      [0, 4, 4, 8],
      [2, 0, 4, 4],
      [0, 2, 2, 4],
      [1, 0, 2, 2],
      [0, 1, 1, 2],
    ];
    let rawBytes = 0;
    for (const [x0, y0, dx, dy] of passes) {
      const w = Math.ceil((width - x0!) / dx!);
      const h = Math.ceil((height - y0!) / dy!);
      if (w > 0 && h > 0) rawBytes += h * (1 + w * 3); // a filter byte per row, 3 bytes per pixel: all zero
    }
    const deflate = createDeflate({ level: 9 });
    const out: Buffer[] = [];
    deflate.on('data', (d: Buffer) => out.push(d));
    const ended = new Promise((resolve) => deflate.on('end', resolve));
    const zeros = Buffer.alloc(8 * 1024 * 1024);
    for (let left = rawBytes; left > 0; left -= zeros.length) {
      if (!deflate.write(zeros.subarray(0, Math.min(left, zeros.length)))) await new Promise((resolve) => deflate.once('drain', resolve));
    }
    deflate.end();
    await ended;
    const chunk = (type: string, data: Buffer) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(data.length);
      const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(body) >>> 0);
      return Buffer.concat([length, body, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // RGB
    ihdr[12] = 1; // Adam7 interlace: libvips must hold the whole image to decode it
    return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(out)), chunk('IEND', Buffer.alloc(0))]);
  }

  let bomb: Buffer;
  beforeAll(async () => {
    bomb = await interlacedPng(16_000, 16_000);
  });

  it('budgets from AWS_LAMBDA_FUNCTION_MEMORY_SIZE (default: the detect function\'s memory)', () => {
    expect(functionMemoryMb({})).toBe(FUNCTION_MEMORY_MB.detect);
    expect(functionMemoryMb({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3008' })).toBe(3008);
    expect(functionMemoryMb({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: 'lots' })).toBe(FUNCTION_MEMORY_MB.detect);
    expect(decodeBudgetBytes(1024)).toBe(Math.floor(1024 * 1024 * 1024 * 0.4));
    // sharp's limitInputPixels backstop: an RGB 16,000² image is over it at 1,024 MB.
    expect(pixelLimit(1024)).toBeLessThan(16_000 * 16_000);
  });

  it('makes a 1 MB interlaced 16,000 × 16,000 PNG UNUSABLE from its header, before decoding, with RSS unmoved', async () => {
    expect(bomb.length).toBeLessThan(1024 * 1024);
    // The detect step reads the first 64 KB and inspects the header.
    const header = await inspectImage(bomb.subarray(0, 64 * 1024));
    expect(header).toMatchObject({ format: 'png', width: 16_000, height: 16_000, channels: 3 });
    const budget = (FUNCTION_MEMORY_MB.detect * 0.4).toFixed(1);
    const reason = `image too large to decode within the function's memory: 16000×16000 px × 3 bands = 732.4 MB decoded, over the ${budget} MB budget (40% of ${FUNCTION_MEMORY_MB.detect} MB)`;
    expect(readiness(header, bomb.length)).toEqual({ kind: 'unusable', reason });

    const before = process.memoryUsage().rss;
    const result = await framesForRekognition(bomb, { maxFrames: 10 });
    const grown = process.memoryUsage().rss - before;
    expect(result).toEqual({ kind: 'unusable', reason });
    // Decoding it would have taken ~1.25 GB; refusing it from the header takes next to nothing.
    expect(grown).toBeLessThan(64 * 1024 * 1024);
  });

  it('lets a bigger function decode what a smaller one refuses, and refuses per frame for animations', async () => {
    const header = await inspectImage(bomb.subarray(0, 64 * 1024));
    expect(readiness(header, bomb.length, { memoryMb: 3008 })).toEqual({ kind: 'convert', why: '16000×16000 px is over 10,000 px' });
    process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE = '128';
    // 128 MB: 51.2 MB budget; a 4000 × 4000 RGBA frame is 61 MB.
    const frame = { format: 'gif', width: 4000, height: 4000, pages: 50, channels: 4 };
    expect(readiness(frame, 1000)).toMatchObject({ kind: 'unusable', reason: expect.stringMatching(/4000×4000 px × 4 bands = 61\.0 MB decoded, over the 51\.2 MB budget \(40% of 128 MB\)/) });
  });

  it('turns undecodable data into UNUSABLE, never a thrown error', async () => {
    expect(await framesForRekognition(Buffer.from('not an image at all'), { maxFrames: 10 })).toEqual({ kind: 'unusable', reason: 'not an image (unrecognised file format)' });
    // A truncated GIF decodes (libvips fills in what is missing, as browsers show partial frames):
    // both frames are still judged, so truncation cannot hide the second one.
    const gif = await animation('gif', [harmless, explicit]);
    const truncated = framesOf(await framesForRekognition(gif.subarray(0, Math.floor(gif.length * 0.9)), { maxFrames: 10 }));
    expect(truncated).toMatchObject({ total: 2, distinct: 2, covered: true });
    const brokenApng = await apng([harmless, explicit]);
    const result = await framesForRekognition(brokenApng.subarray(0, brokenApng.length - 200), { maxFrames: 10 });
    expect(result).toMatchObject({ kind: 'unusable', reason: expect.stringMatching(/corrupt animated PNG|corrupt or truncated/) });
  });
});
