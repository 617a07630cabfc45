/**
 * Every frame counts: the frames of an upload that Rekognition must judge, as request-ready JPEGs.
 *
 * A browser plays every frame of an animated GIF, WebP or PNG (APNG), and a TIFF or HEIF viewer pages
 * through every page, so judging the first frame alone lets a harmless first frame carry explicit
 * ones. Here every frame is decoded (within the memory and time budgets), identical frames are merged
 * by a SHA-256 of their pixels, and frames that differ from a judged frame by no more than
 * NEAR_TOLERANCE in the mean colour of every cell of a GRID × GRID grid are covered by it (re-dithered
 * or re-compressed copies of one picture). When what remains fits `maxFrames` (the policy's
 * animation.maxFrames: one DetectModerationLabels call each), every frame is covered. When it does not,
 * a sample spread over the animation's duration is returned (always the first and the last distinct
 * frame) with `covered: false`: the verdict may then be REJECT, never APPROVE (frame-verdict.ts).
 *
 * Pure image work with sharp; no AWS clients.
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { ApngError, apngFrames, apngTimeline } from './apng.ts';
import {
  bytesPerSample,
  conversionFailure,
  decodeBudgetBytes,
  decodeBudgetProblem,
  describeSharpError,
  functionMemoryMb,
  inspectImage,
  MAX_DECODE_PIXELS,
  rawToJpeg,
  REKOGNITION_JPEG,
  REVIEW_JPEG,
  toJpeg,
  UnreadableImageError,
  type ConvertedImage,
  type ImageInfo,
  type JpegOptions,
} from './image.ts';

/**
 * Pixels decoded per file at most (re-decoding included), which bounds the time spent: GIF and WebP
 * decode at roughly 15-40 Mpx/s on one core, so this is seconds, well inside the Detect task's 60 s.
 */
export const DEFAULT_MAX_SCAN_PIXELS = 200_000_000;
/**
 * The scan budget for a function of this memory: Lambda's CPU share is proportional to memory (a full
 * vCPU at 1,769 MB), so a smaller function decodes fewer pixels in the same time. Below 885 MB the
 * budget shrinks with the share (116 Mpx at 512 MB: at most ~30 s of decoding, inside the Detect task's
 * 60 s with its Rekognition calls); from there on it is DEFAULT_MAX_SCAN_PIXELS.
 */
export function scanPixelsFor(memoryMb: number): number {
  return Math.round(DEFAULT_MAX_SCAN_PIXELS * Math.min(1, (2 * memoryMb) / 1769));
}
/**
 * Each frame costs at least this many pixels of the scan budget: a frame has a fixed cost (a load, a
 * hash, a grid) however small it is, so 100,000 one-pixel pages cannot outlast the task's timeout.
 */
export const MIN_FRAME_COST_PIXELS = 65_536;
/** Near-identical frames are compared on this grid (cells of 1/4096 of the frame's area). */
export const GRID = 64;
/** The largest difference (of 255) in a cell's mean colour for a frame to be covered by a judged one. */
export const NEAR_TOLERANCE = 8;
/** Browsers show a frame with a delay of 10 ms or less for 100 ms; so does the timeline here. */
const MIN_DELAY_MS = 11;
const CLAMPED_DELAY_MS = 100;
/** Formats whose frames libvips decodes from the first one on every load (a frame depends on the previous). */
const SEQUENTIAL = new Set(['gif', 'webp']);

export interface FrameBudget {
  /** DetectModerationLabels calls allowed for the file (the policy's animation.maxFrames). */
  maxFrames: number;
  /** The function's memory in MB; default functionMemoryMb() (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, else the detect function's). */
  memoryMb?: number;
  /** Pixels decoded at most; default scanPixelsFor(memoryMb). */
  maxScanPixels?: number;
}

export interface RekognitionFrame {
  /** 0-based position of the frame in the file. */
  index: number;
  /** Frames in the file. */
  total: number;
  /** A JPEG for DetectModerationLabels' Image.Bytes (under 5 MB, 80-4096 px a side). */
  bytes: Buffer;
  width: number;
  height: number;
  /** Frames this one stands for: itself and those with identical (or, when covered, near-identical) pixels. */
  covers: number;
  /** When the frame is first shown, in ms from the start (animations with frame delays). */
  atMs?: number;
}

export interface FrameSet {
  kind: 'frames';
  format: string;
  /** Frames in the file. */
  total: number;
  /** Frames decoded and compared (less than total only when the scan budget ran out). */
  examined: number;
  /** Frames with distinct pixels among those examined. */
  distinct: number;
  /** What to send to Rekognition, in frame order; never more than maxFrames. */
  frames: RekognitionFrame[];
  /** True when every frame of the file is one of `frames` or identical / near-identical to one. */
  covered: boolean;
  /** Why not every frame is covered (covered: false). */
  reason?: string;
}

export type FrameExtraction = FrameSet | { kind: 'unusable'; reason: string };

interface RawFrame {
  index: number;
  data: Buffer;
  width: number;
  height: number;
  channels: 4;
}

interface FrameSource {
  total: number;
  /** Display time of each frame (ms); absent for pages without timing (TIFF, HEIF). */
  delays?: number[];
  /** Frames 0 .. until-1 (those `wanted` says, when given), while the meter allows. */
  read(until: number, wanted: ((index: number) => boolean) | undefined, meter: Meter): AsyncGenerator<RawFrame>;
}

/** Thrown inside a source when a page needs more memory than the budget: the file is UNUSABLE. */
class BudgetError extends Error {}

class Meter {
  used = 0;
  constructor(readonly limit: number) {}
  get remaining(): number {
    return this.limit - this.used;
  }
  /** Reserves `pixels` of decoding; false (nothing reserved) when that would pass the limit. */
  take(pixels: number): boolean {
    if (this.used + pixels > this.limit) return false;
    this.used += pixels;
    return true;
  }
}

/**
 * The frames of a file to judge, as Rekognition-ready JPEGs: one for a still, every distinct frame
 * of an animation or multi-page file, or a spread sample (covered: false) when they exceed the budget.
 * Never throws for a bad file: what cannot be decoded, or would not fit the function's memory, is
 * `{ kind: 'unusable', reason }` (a thrown error would make the job FAILED, and every replay repeat it).
 */
export async function framesForRekognition(bytes: Buffer, budget: FrameBudget): Promise<FrameExtraction> {
  if (!Number.isInteger(budget.maxFrames) || budget.maxFrames < 1) throw new RangeError(`maxFrames must be a whole number ≥ 1, got ${budget.maxFrames}`);
  const memoryMb = budget.memoryMb ?? functionMemoryMb();
  let info: ImageInfo;
  try {
    info = await inspectImage(bytes);
  } catch (err) {
    if (err instanceof UnreadableImageError) return { kind: 'unusable', reason: err.message };
    throw err;
  }
  if (info.width * info.height > MAX_DECODE_PIXELS) {
    return { kind: 'unusable', reason: `image too large to decode safely: ${info.width}×${info.height} px (limit ${MAX_DECODE_PIXELS} px)` };
  }
  const tooBig = decodeBudgetProblem(info, memoryMb);
  if (tooBig) return { kind: 'unusable', reason: tooBig };

  try {
    if (info.pages <= 1 && !info.apng) {
      const still = await toJpeg(bytes, REKOGNITION_JPEG);
      return {
        kind: 'frames',
        format: info.format,
        total: 1,
        examined: 1,
        distinct: 1,
        covered: true,
        frames: [{ index: 0, total: 1, bytes: still.bytes, width: still.width, height: still.height, covers: 1 }],
      };
    }
    const source = await frameSource(bytes, info, memoryMb);
    // Up to maxFrames + 1 JPEGs are held at once: together they keep to a quarter of the decode budget.
    const jpeg = { ...REKOGNITION_JPEG, maxBytes: Math.max(256 * 1024, Math.min(REKOGNITION_JPEG.maxBytes, Math.floor(decodeBudgetBytes(memoryMb) / 4 / (budget.maxFrames + 1)))) };
    return await scan(source, info.format, budget.maxFrames, budget.maxScanPixels ?? scanPixelsFor(memoryMb), jpeg);
  } catch (err) {
    if (err instanceof BudgetError) return { kind: 'unusable', reason: err.message };
    if (err instanceof ApngError) return { kind: 'unusable', reason: `corrupt animated PNG (${err.message})` };
    const unreadable = err instanceof UnreadableImageError ? err : new UnreadableImageError(describeSharpError(err));
    return { kind: 'unusable', reason: conversionFailure(info, unreadable) };
  }
}

/**
 * Particular frames of a file as JPEGs (by default the reviewer's size, REVIEW_JPEG): what the
 * contextual review must see of an animation is the frames that were flagged (FrameSummary.flagged),
 * not its first frame. Frames the file does not have, or that the budgets do not reach, are absent
 * from the result; a file that cannot be decoded throws UnreadableImageError (it was decoded once
 * already by the detect step, so this is not an upload's fault).
 */
export async function framesAsJpeg(
  bytes: Buffer,
  indexes: readonly number[],
  options: { jpeg?: JpegOptions; memoryMb?: number; maxScanPixels?: number } = {},
): Promise<Map<number, ConvertedImage>> {
  const jpeg = options.jpeg ?? REVIEW_JPEG;
  const memoryMb = options.memoryMb ?? functionMemoryMb();
  const info = await inspectImage(bytes);
  const tooBig = decodeBudgetProblem(info, memoryMb);
  if (tooBig) throw new UnreadableImageError(tooBig);
  const out = new Map<number, ConvertedImage>();
  const wanted = new Set(indexes.filter((i) => Number.isInteger(i) && i >= 0 && i < Math.max(1, info.pages)));
  if (wanted.size === 0) return out;
  try {
    if (info.pages <= 1 && !info.apng) {
      out.set(0, await toJpeg(bytes, jpeg));
      return out;
    }
    const source = await frameSource(bytes, info, memoryMb);
    for await (const frame of source.read(Math.max(...wanted) + 1, (i) => wanted.has(i), new Meter(options.maxScanPixels ?? scanPixelsFor(memoryMb)))) {
      if (wanted.has(frame.index)) out.set(frame.index, await rawToJpeg(frame, jpeg));
    }
    return out;
  } catch (err) {
    if (err instanceof UnreadableImageError) throw err;
    throw new UnreadableImageError(err instanceof BudgetError || err instanceof ApngError ? err.message : describeSharpError(err));
  }
}

// ---------------------------------------------------------------------------------------------------
// The scan

interface Distinct {
  hash: string;
  first: number;
  count: number;
  /** The judged frame whose pixels cover this one (itself when it is judged). */
  representative?: Distinct;
  grid?: Float32Array;
  jpeg?: { bytes: Buffer; width: number; height: number };
}

async function scan(source: FrameSource, format: string, maxFrames: number, maxScanPixels: number, jpeg: JpegOptions): Promise<FrameSet> {
  const total = source.total;
  const byHash = new Map<string, Distinct>();
  const distincts: Distinct[] = [];
  const representatives: Distinct[] = [];
  /** Near-identical grouping stops once the representatives exceed maxFrames: the file cannot be covered. */
  let grouping = true;
  let examined = 0;

  const meter = new Meter(maxScanPixels);
  for await (const frame of source.read(total, undefined, meter)) {
    examined = frame.index + 1;
    const hash = pixelHash(frame);
    const known = byHash.get(hash);
    if (known) {
      known.count++;
      continue;
    }
    const distinct: Distinct = { hash, first: frame.index, count: 1 };
    byHash.set(hash, distinct);
    distincts.push(distinct);
    if (!grouping) continue;
    const grid = cellMeans(frame);
    const near = representatives.find((r) => nearIdentical(r.grid!, grid));
    if (near) {
      distinct.representative = near;
      continue;
    }
    distinct.representative = distinct;
    distinct.grid = grid;
    representatives.push(distinct);
    if (representatives.length > maxFrames) {
      grouping = false;
      for (const r of representatives) r.grid = undefined;
    } else {
      distinct.jpeg = await rawToJpeg(frame, jpeg);
    }
  }

  const starts = startTimes(source, total);
  const atMs = (index: number) => (source.delays ? starts[index] : undefined);
  const toFrame = (d: Distinct, covers: number): RekognitionFrame => ({
    index: d.first,
    total,
    bytes: d.jpeg!.bytes,
    width: d.jpeg!.width,
    height: d.jpeg!.height,
    covers,
    ...(atMs(d.first) !== undefined ? { atMs: atMs(d.first) } : {}),
  });

  const complete = examined === total;
  if (complete && grouping) {
    const covers = new Map<Distinct, number>();
    for (const d of distincts) covers.set(d.representative!, (covers.get(d.representative!) ?? 0) + d.count);
    return { kind: 'frames', format, total, examined, distinct: distincts.length, covered: true, frames: representatives.map((r) => toFrame(r, covers.get(r)!)) };
  }

  // Not coverable: a sample spread over the duration, always with the first and last distinct frames.
  // Frames known to be near-identical to an earlier one are not candidates: judging them adds nothing.
  const candidates = distincts.filter((d) => d.representative === undefined || d.representative === d);
  const byFirst = new Map(candidates.map((d) => [d.first, d]));
  const chosen = spreadSample(
    candidates.map((d) => d.first),
    starts,
    maxFrames,
  ).map((index) => byFirst.get(index)!);
  const missing = new Set(chosen.filter((d) => !d.jpeg).map((d) => d.first));
  if (missing.size > 0) {
    const until = Math.max(...missing) + 1;
    // A second pass over at most the frames the first one decoded: the two stay within twice the budget.
    for await (const frame of source.read(until, (index) => missing.has(index), new Meter(maxScanPixels))) {
      if (!missing.has(frame.index)) continue;
      byFirst.get(frame.index)!.jpeg = await rawToJpeg(frame, jpeg);
    }
  }
  const covers = (d: Distinct) => distincts.reduce((sum, other) => sum + (other === d || other.representative === d ? other.count : 0), 0);
  const frames = chosen.filter((d) => d.jpeg).map((d) => toFrame(d, covers(d)));
  const reason = complete
    ? `${distincts.length} distinct frames of ${total}${grouping ? '' : ` (more than ${maxFrames} visibly different)`} exceed the ${maxFrames} judged per file (policy animation.maxFrames); ${frames.length} spread over the animation were judged`
    : `only the first ${examined} of ${total} frames could be decoded within the ${Math.round(maxScanPixels / 1e6)} Mpx decoding budget; ${frames.length} of them were judged`;
  return { kind: 'frames', format, total, examined, distinct: distincts.length, covered: false, reason, frames };
}

/**
 * Which frames to judge when not all can be: `firsts` are the first indexes of the distinct frames
 * (ascending), `starts` each frame's start time (ms, or frame number without timing). Always the
 * first and the last distinct frame; the others are those first shown nearest to evenly spaced
 * points of the timeline. Returns at most `max` frame indexes, ascending.
 */
export function spreadSample(firsts: readonly number[], starts: readonly number[], max: number): number[] {
  if (firsts.length <= max) return [...firsts];
  if (max === 1) return [firsts[0]!];
  const chosen = new Set<number>([0, firsts.length - 1]);
  const time = (k: number) => starts[firsts[k]!] ?? firsts[k]!;
  const from = time(0);
  const to = time(firsts.length - 1);
  for (let j = 1; chosen.size < max && j < max - 1; j++) {
    const target = from + ((to - from) * j) / (max - 1);
    let best = -1;
    for (let k = 0; k < firsts.length; k++) {
      if (chosen.has(k)) continue;
      if (best < 0 || Math.abs(time(k) - target) < Math.abs(time(best) - target)) best = k;
    }
    if (best >= 0) chosen.add(best);
  }
  return [...chosen].sort((a, b) => a - b).map((k) => firsts[k]!);
}

function frameCost(width: number, height: number): number {
  return Math.max(width * height, MIN_FRAME_COST_PIXELS);
}

function startTimes(source: FrameSource, total: number): number[] {
  const starts: number[] = [];
  let at = 0;
  for (let i = 0; i < total; i++) {
    starts.push(at);
    const delay = source.delays?.[i];
    at += delay === undefined ? 1 : delay < MIN_DELAY_MS ? CLAMPED_DELAY_MS : delay;
  }
  return starts;
}

/** SHA-256 of the frame's size and pixels: a collision-resistant hash, so two frames cannot be made to merge. */
function pixelHash(frame: RawFrame): string {
  const shape = Buffer.alloc(12);
  shape.writeUInt32BE(frame.width, 0);
  shape.writeUInt32BE(frame.height, 4);
  shape.writeUInt32BE(frame.channels, 8);
  return createHash('sha256').update(shape).update(frame.data).digest('hex');
}

/** The mean RGB of each cell of a GRID × GRID grid, over white (as Rekognition's JPEG is flattened). */
function cellMeans(frame: RawFrame): Float32Array {
  const cols = Math.min(GRID, frame.width);
  const rows = Math.min(GRID, frame.height);
  const sums = new Float64Array(cols * rows * 3);
  const counts = new Float64Array(cols * rows);
  const { data, width, height } = frame;
  for (let y = 0; y < height; y++) {
    const cy = Math.floor((y * rows) / height);
    for (let x = 0; x < width; x++) {
      const cell = cy * cols + Math.floor((x * cols) / width);
      const p = (y * width + x) * 4;
      const alpha = data[p + 3]! / 255;
      const white = 255 * (1 - alpha);
      sums[cell * 3] += data[p]! * alpha + white;
      sums[cell * 3 + 1] += data[p + 1]! * alpha + white;
      sums[cell * 3 + 2] += data[p + 2]! * alpha + white;
      counts[cell]++;
    }
  }
  const means = new Float32Array(cols * rows * 3 + 2);
  for (let cell = 0; cell < cols * rows; cell++) {
    for (let c = 0; c < 3; c++) means[cell * 3 + c] = sums[cell * 3 + c]! / counts[cell]!;
  }
  // The grid's shape travels with it: frames of different sizes (TIFF pages) are never near-identical.
  means[cols * rows * 3] = width;
  means[cols * rows * 3 + 1] = height;
  return means;
}

function nearIdentical(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length || a[a.length - 1] !== b[b.length - 1] || a[a.length - 2] !== b[b.length - 2]) return false;
  for (let i = 0; i < a.length - 2; i++) if (Math.abs(a[i]! - b[i]!) > NEAR_TOLERANCE) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Frame sources: how each kind of file is decoded, one bounded piece at a time

async function frameSource(bytes: Buffer, info: ImageInfo, memoryMb: number): Promise<FrameSource> {
  if (info.apng) return apngSource(bytes, info);
  if (SEQUENTIAL.has(info.format)) return animationSource(bytes, info, memoryMb);
  return pageSource(bytes, info, memoryMb);
}

/**
 * GIF and WebP: all frames share the canvas size, and libvips decodes `pages` frames from `page` in
 * one load. As many frames as fit the memory budget are loaded at once; each load decodes from the
 * first frame again (a frame is drawn over the previous ones), which the meter counts.
 */
async function animationSource(bytes: Buffer, info: ImageInfo, memoryMb: number): Promise<FrameSource> {
  const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  const { width, height } = info;
  const frameBytes = width * height * 4;
  const perLoad = Math.max(1, Math.min(info.pages, Math.floor(decodeBudgetBytes(memoryMb) / frameBytes)));
  return {
    total: info.pages,
    delays: meta.delay,
    async *read(until, wanted, meter) {
      const cost = frameCost(width, height);
      for (let start = 0; start < until; start += perLoad) {
        let count = Math.min(perLoad, until - start);
        if (wanted && !Array.from({ length: count }, (_, i) => start + i).some(wanted)) continue;
        // A load of frames start .. start+count-1 decodes start+count frames: load what the meter allows.
        count = Math.min(count, Math.floor(meter.remaining / cost) - start);
        if (count < 1 || !meter.take((start + count) * cost)) return;
        const { data, info: out } = await sharp(bytes, { page: start, pages: count, failOn: 'error', limitInputPixels: width * height * count })
          .ensureAlpha()
          .raw()
          .toBuffer({ resolveWithObject: true });
        if (out.width !== width || out.height !== height * count || out.channels !== 4) {
          throw new UnreadableImageError(`frames decoded to ${out.width}×${out.height} px, expected ${count} of ${width}×${height}`);
        }
        for (let i = 0; i < count; i++) {
          yield { index: start + i, data: data.subarray(i * frameBytes, (i + 1) * frameBytes), width, height, channels: 4 };
        }
      }
    },
  };
}

/** TIFF and HEIF pages: each page has its own size and is loaded alone, after its header is checked. */
function pageSource(bytes: Buffer, info: ImageInfo, memoryMb: number): FrameSource {
  return {
    total: info.pages,
    async *read(until, wanted, meter) {
      for (let page = 0; page < until; page++) {
        if (wanted && !wanted(page)) continue;
        const header = await sharp(bytes, { page, limitInputPixels: false }).metadata();
        const pageInfo: ImageInfo = {
          format: info.format,
          width: header.width ?? 0,
          height: header.height ?? 0,
          pages: 1,
          channels: 4,
          bytesPerSample: bytesPerSample(header.depth),
        };
        const problem = decodeBudgetProblem(pageInfo, memoryMb);
        if (problem) throw new BudgetError(`page ${page + 1} of ${info.pages}: ${problem}`);
        if (!meter.take(frameCost(pageInfo.width, pageInfo.height))) return;
        // toColourspace('srgb'): CMYK and 16-bit pages become 8-bit RGB, so every frame hashes and encodes alike.
        const { data, info: out } = await sharp(bytes, { page, pages: 1, failOn: 'error', limitInputPixels: Math.max(1, pageInfo.width * pageInfo.height) })
          .toColourspace('srgb')
          .ensureAlpha()
          .raw()
          .toBuffer({ resolveWithObject: true });
        yield { index: page, data, width: out.width, height: out.height, channels: 4 };
      }
    },
  };
}

/** APNG: apng.ts composites the frames (libvips would show only the default image). */
function apngSource(bytes: Buffer, info: ImageInfo): FrameSource {
  return {
    total: info.pages,
    delays: apngTimeline(bytes),
    async *read(until, wanted, meter) {
      const frames = apngFrames(bytes, { until, limitInputPixels: info.width * info.height });
      try {
        // Every frame is composited in order (each is drawn over the previous): reserve before decoding it.
        while (meter.take(frameCost(info.width, info.height))) {
          const next = await frames.next();
          if (next.done) return;
          const frame = next.value;
          if (wanted && !wanted(frame.index)) continue;
          yield { index: frame.index, data: frame.rgba, width: frame.width, height: frame.height, channels: 4 };
        }
      } finally {
        await frames.return(undefined);
      }
    },
  };
}
