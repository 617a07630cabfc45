/**
 * What Rekognition and the reviewer can take, and how to make an upload fit. Pure image work with
 * sharp; no AWS clients.
 *
 * Rekognition DetectModerationLabels (official limits): JPEG or PNG, at most 15 MB as an S3 object
 * or 5 MB as request bytes, each side from 80 to 10,000 px.
 *
 * Decoding is bounded by the function's memory (decodeBudgetProblem): what a file will need decoded is
 * computed from its header and compared before any pixel is decoded, because running out of memory
 * kills the invocation, which the workflow records as FAILED and every replay repeats.
 */
import sharp from 'sharp';
import { apngInfo, pngReachesImageData } from './apng.ts';
import { FUNCTION_MEMORY_MB } from './pipeline-settings.ts';
// Type only: the policy module (zod, yaml, taxonomy) stays out of what loads sharp, and vice versa.
import type { SvgMode } from './policy.ts';

export type { SvgMode } from './policy.ts';

export const REKOGNITION_LIMITS = {
  maxS3ObjectBytes: 15 * 1024 * 1024,
  maxRequestBytes: 5 * 1024 * 1024,
  minSidePx: 80,
  maxSidePx: 10_000,
  formats: ['jpeg', 'png'] as readonly string[],
};

/** Beyond this many pixels we refuse to decode whatever the memory: a decompression bomb costs memory, not insight. */
export const MAX_DECODE_PIXELS = 16_384 * 16_384;
/**
 * Lambda's memory when AWS_LAMBDA_FUNCTION_MEMORY_SIZE is unset (locally): the detect function's
 * setting, so the local runtime refuses and converts exactly what the deployed function does.
 */
export const DEFAULT_FUNCTION_MEMORY_MB = FUNCTION_MEMORY_MB.detect;
/**
 * The share of the function's memory that decoded pixels may take. Measured with sharp 0.35 on an
 * interlaced PNG converted to JPEG: peak RSS ≈ the handler's ~145 MB (node, the AWS SDK, sharp) +
 * 1.5 × the decoded size. `npm run bench:detect-memory` (docs/performance.md, "Detect's memory"):
 * the largest interlaced PNG the budget lets through peaks at 455 MB in a 512 MB function (89 %),
 * 673 MB at 1,024 MB; at 256 MB even modest conversions (a 40-frame GIF, a WebP) pass 300 MB, so
 * 256 MB is too small for detect. A 16,000 × 16,000 interlaced PNG (768 MB decoded) reached 1.25 GB.
 */
export const DECODE_MEMORY_SHARE = 0.4;
/** Objects larger than this are not downloaded for conversion. */
export const MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024;
/** Formats sharp decodes here that we convert to JPEG for Rekognition. */
const CONVERTIBLE = new Set(['jpeg', 'png', 'webp', 'gif', 'avif', 'tiff', 'heif', 'svg']);

export interface ImageInfo {
  format: string;
  width: number;
  /** Of one frame (page) for animations and multi-page files. */
  height: number;
  /** Frames in an animation (GIF, WebP, APNG) or pages (TIFF, HEIF), 1 for stills. */
  pages: number;
  /** HEIF only: the coding inside the container ('hevc' is HEIC, 'av1' is AVIF). */
  compression?: string;
  /** Bands per pixel as decoded (1-2 grey, 3 RGB, 4 with alpha or CMYK); absent: assume 4. */
  channels?: number;
  /** Bytes per band: 2 for 16-bit PNG/TIFF; absent: 1. */
  bytesPerSample?: number;
  /** An animated PNG: libvips decodes only its default image, so frames.ts decodes the frames (apng.ts). */
  apng?: boolean;
}

export type Readiness =
  | { kind: 'direct' }
  /** `hold`: whatever Rekognition finds short of REJECT, a human decides (see svgHandling). */
  | { kind: 'convert'; why: string; hold?: string }
  | { kind: 'unusable'; reason: string };

export interface ReadinessOptions {
  /** The policy's `formats.svg`; default 'review'. */
  svg?: SvgMode;
  /** The function's memory in MB; default functionMemoryMb(). */
  memoryMb?: number;
}

export class UnreadableImageError extends Error {
  override name = 'UnreadableImage';
}

/** Reads the header only (works on the first bytes of most files). */
export async function inspectImage(bytes: Buffer): Promise<ImageInfo> {
  if (bytes.length === 0) throw new UnreadableImageError('empty file (0 bytes)');
  try {
    const meta = await sharp(bytes, { limitInputPixels: false, failOn: 'none' }).metadata();
    if (!meta.format || !meta.width || !meta.height) throw new UnreadableImageError('no image dimensions in the file header');
    const info: ImageInfo = {
      format: meta.format,
      width: meta.width,
      height: meta.height,
      pages: meta.pages ?? 1,
      channels: meta.channels,
      bytesPerSample: bytesPerSample(meta.depth),
      ...(meta.compression ? { compression: meta.compression } : {}),
    };
    // libvips sees an APNG as a still PNG (its default image): the acTL chunk before IDAT says otherwise.
    const apng = meta.format === 'png' ? apngInfo(bytes) : undefined;
    if (apng) Object.assign(info, { apng: true, pages: apng.frames, channels: 4 });
    else if (meta.format === 'png' && !pngReachesImageData(bytes)) {
      // libvips itself needs these chunks, so this is a backstop: without them, "no acTL" proves nothing.
      throw new UnreadableImageError('the PNG chunks before the image data run past the bytes read (an animation control chunk may follow)');
    }
    return info;
  } catch (err) {
    if (err instanceof UnreadableImageError) throw err;
    throw new UnreadableImageError(describeSharpError(err));
  }
}

/**
 * Decides whether Rekognition can read the object by reference, needs converted bytes (every frame of
 * an animation: frames.ts), or cannot be helped. Only what must be decoded here is held to the memory
 * budget: Rekognition reads a JPEG or PNG within its limits itself.
 */
export function readiness(info: ImageInfo, objectBytes: number, options: ReadinessOptions = {}): Readiness {
  if (!CONVERTIBLE.has(info.format)) return { kind: 'unusable', reason: `unsupported image format: ${info.format}` };
  if (info.width * info.height > MAX_DECODE_PIXELS) {
    return { kind: 'unusable', reason: `image too large to decode safely: ${info.width}×${info.height} px (limit ${MAX_DECODE_PIXELS} px)` };
  }
  const smallest = Math.min(info.width, info.height);
  if (smallest < 1) return { kind: 'unusable', reason: 'image has no pixels' };
  let hold: string | undefined;
  if (info.format === 'svg') {
    const svg = svgHandling(options.svg ?? 'review');
    if (svg.kind === 'unusable') return svg;
    hold = svg.hold;
  }
  const why = conversionReason(info, objectBytes);
  if (!why) return { kind: 'direct' };
  const tooBig = decodeBudgetProblem(info, options.memoryMb);
  if (tooBig) return { kind: 'unusable', reason: tooBig };
  return hold ? { kind: 'convert', why, hold } : { kind: 'convert', why };
}

function conversionReason(info: ImageInfo, objectBytes: number): string | undefined {
  const smallest = Math.min(info.width, info.height);
  if (info.apng) return `animated PNG (${info.pages} frames)`;
  if (!REKOGNITION_LIMITS.formats.includes(info.format)) {
    return info.pages > 1 ? `${info.format} with ${info.pages} frames` : `${info.format} is not JPEG or PNG`;
  }
  if (info.pages > 1) return `animated ${info.format} (${info.pages} frames)`;
  if (objectBytes > REKOGNITION_LIMITS.maxS3ObjectBytes) return `${mb(objectBytes)} MB is over Rekognition's 15 MB limit`;
  if (Math.max(info.width, info.height) > REKOGNITION_LIMITS.maxSidePx) return `${info.width}×${info.height} px is over 10,000 px`;
  if (smallest < REKOGNITION_LIMITS.minSidePx) return `${info.width}×${info.height} px is under 80 px`;
  return undefined;
}

/**
 * SVG is a document, not a picture: a browser runs its scripts, fetches its remote references and
 * applies CSS (media queries, :hover, animations) that the rasteriser (librsvg) ignores, so what
 * Rekognition is shown need not be what viewers see. 'review' (the default) still lets Rekognition
 * reject what the raster shows, but nothing short of that is decided without a human.
 */
export function svgHandling(mode: SvgMode): { kind: 'unusable'; reason: string } | { kind: 'judge'; hold?: string } {
  switch (mode) {
    case 'unusable':
      return { kind: 'unusable', reason: 'SVG is not accepted by the policy (formats.svg: unusable): a browser may render it differently from any rasterisation' };
    case 'raster':
      return { kind: 'judge' };
    case 'review':
      return {
        kind: 'judge',
        hold: 'SVG: a browser may render it differently from the rasterised image that was judged (scripts, remote references, CSS); held for a human (policy formats.svg: review)',
      };
  }
}

/** The function's memory in MB, as Lambda states it; DEFAULT_FUNCTION_MEMORY_MB elsewhere. */
export function functionMemoryMb(env: Record<string, string | undefined> = process.env): number {
  const value = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  return Number.isFinite(value) && value > 0 ? value : DEFAULT_FUNCTION_MEMORY_MB;
}

/** The bytes of decoded pixels one decode may hold in a function of this memory. */
export function decodeBudgetBytes(memoryMb: number = functionMemoryMb()): number {
  return Math.floor(memoryMb * 1024 * 1024 * DECODE_MEMORY_SHARE);
}

/**
 * Bytes one decoded frame takes: width × height × bands × bytes per band. Animations are decoded
 * with alpha (4 bands); an APNG also needs its canvas and the previous canvas (3 copies).
 */
export function decodedFrameBytes(info: ImageInfo): number {
  const channels = info.apng || info.pages > 1 ? 4 : Math.max(1, info.channels ?? 4);
  const copies = info.apng ? 3 : 1;
  return info.width * info.height * channels * (info.bytesPerSample ?? 1) * copies;
}

/** Why decoding one frame of this image would not fit the function's memory, or undefined when it fits. */
export function decodeBudgetProblem(info: ImageInfo, memoryMb: number = functionMemoryMb()): string | undefined {
  const need = decodedFrameBytes(info);
  const budget = decodeBudgetBytes(memoryMb);
  if (need <= budget) return undefined;
  const bands = info.apng || info.pages > 1 ? 4 : Math.max(1, info.channels ?? 4);
  return (
    `image too large to decode within the function's memory: ${info.width}×${info.height} px × ${bands} bands` +
    `${(info.bytesPerSample ?? 1) > 1 ? ` × ${info.bytesPerSample} bytes` : ''} = ${mb(need)} MB decoded, ` +
    `over the ${mb(budget)} MB budget (${Math.round(DECODE_MEMORY_SHARE * 100)}% of ${memoryMb} MB)`
  );
}

/** sharp's limitInputPixels for a decode that must stay within the budget (a backstop to decodeBudgetProblem). */
export function pixelLimit(memoryMb: number = functionMemoryMb(), bandsBytes = 3): number {
  return Math.min(MAX_DECODE_PIXELS, Math.max(1, Math.floor(decodeBudgetBytes(memoryMb) / bandsBytes)));
}

export interface ConvertedImage {
  bytes: Buffer;
  width: number;
  height: number;
}

export interface JpegOptions {
  maxSidePx: number;
  minSidePx?: number;
  maxBytes: number;
}

/**
 * Re-encodes an image as a JPEG that fits a byte budget and a side range: downscaled when too big,
 * upscaled when under the minimum side, the first frame of an animation (frames.ts judges every
 * frame). Lowers quality, then size, until it fits. Decoding stops at the memory budget's pixel
 * limit (callers check decodeBudgetProblem from the header first).
 */
export function toJpeg(bytes: Buffer, options: JpegOptions): Promise<ConvertedImage> {
  return fitJpeg(() => sharp(bytes, { limitInputPixels: pixelLimit(), failOn: 'error', pages: 1 }).rotate(), options);
}

/** The same for decoded pixels (a frame of an animation): 8-bit, 1-4 interleaved bands. */
export function rawToJpeg(
  raw: { data: Buffer; width: number; height: number; channels: 1 | 2 | 3 | 4 },
  options: JpegOptions,
): Promise<ConvertedImage> {
  return fitJpeg(() => sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } }), options);
}

async function fitJpeg(source: () => ReturnType<typeof sharp>, options: JpegOptions): Promise<ConvertedImage> {
  let maxSide = options.maxSidePx;
  let quality = 85;
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      const pipeline = source()
        .flatten({ background: '#ffffff' })
        .resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true });
      let { data, info } = await pipeline.jpeg({ quality, mozjpeg: false }).toBuffer({ resolveWithObject: true });
      const minSide = options.minSidePx ?? 0;
      if (Math.min(info.width, info.height) < minSide) {
        // Rekognition refuses images under 80 px per side: enlarge the thumbnail so it can be judged at all.
        const scale = minSide / Math.min(info.width, info.height);
        ({ data, info } = await sharp(data)
          .resize({ width: Math.ceil(info.width * scale), height: Math.ceil(info.height * scale), fit: 'fill' })
          .jpeg({ quality })
          .toBuffer({ resolveWithObject: true }));
      }
      if (data.length <= options.maxBytes) return { bytes: data, width: info.width, height: info.height };
    } catch (err) {
      throw new UnreadableImageError(describeSharpError(err));
    }
    if (quality > 60) quality -= 15;
    else maxSide = Math.floor(maxSide * 0.75);
  }
  throw new UnreadableImageError(`could not re-encode the image under ${mb(options.maxBytes)} MB`);
}

/** The JPEG Rekognition gets as request bytes: at most 4096 px a side, at least 80, under 5 MB. */
export const REKOGNITION_JPEG: JpegOptions = { maxSidePx: 4096, minSidePx: REKOGNITION_LIMITS.minSidePx, maxBytes: REKOGNITION_LIMITS.maxRequestBytes };

/** What Rekognition gets when it cannot read the object itself (the first frame only: see frames.ts). */
export function toRekognitionBytes(bytes: Buffer): Promise<ConvertedImage> {
  return toJpeg(bytes, REKOGNITION_JPEG);
}

/** The JPEG the reviewer (a multimodal LLM) gets: 1568 px on the long edge is where Claude and Nova stop gaining detail. */
export const REVIEW_JPEG: JpegOptions = { maxSidePx: 1568, maxBytes: 3_750_000 };

/** What the reviewer gets of a still (the first frame only: frames.ts framesAsJpeg gives the others). */
export function toReviewBytes(bytes: Buffer): Promise<ConvertedImage> {
  return toJpeg(bytes, REVIEW_JPEG);
}

/**
 * Why an image that has a header could not be converted. HEIC (HEVC-coded HEIF, what phones save) is
 * named as such: the prebuilt libvips inside sharp has no HEVC decoder, and its own error is easily
 * lost (libvips' error buffer is shared by concurrent operations: "Unknown error").
 */
export function conversionFailure(info: ImageInfo, err: UnreadableImageError): string {
  if (info.format === 'heif' && info.compression === 'hevc') {
    const detail = /no decoder for this image's compression/.test(err.message) ? '' : ` (${err.message})`;
    return `HEIC image (HEVC-coded HEIF): cannot be decoded here, sharp's libvips has no HEVC decoder; JPEG, PNG, WebP, GIF or AVIF can be moderated${detail}`;
  }
  return err.message;
}

export function describeSharpError(err: unknown): string {
  const message = (err as Error)?.message ?? String(err);
  // libvips prefixes the real error with warnings (libheif's probing: "source: bad seek to N"): name the error.
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !/^source: bad seek/i.test(line));
  const detail = (lines.find((line) => /error|not been built in|corrupt|premature|invalid|unsupported/i.test(line)) ?? lines[0] ?? message).slice(0, 300);
  if (/unsupported image format/i.test(message)) return 'not an image (unrecognised file format)';
  if (/pixel limit/i.test(message)) return 'image too large to decode safely';
  if (/has not been built in|no decoding plugin|decoder plugin/i.test(message)) return `no decoder for this image's compression (${detail})`;
  if (/premature end|truncated|corrupt|bad (huffman|marker)|VipsJpeg|Invalid SOS|unexpected end/i.test(message)) {
    return `corrupt or truncated image data (${detail})`;
  }
  return `could not decode the image (${detail})`;
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

/** Bytes per band for sharp's `depth` (uchar 1, ushort 2, ...). */
export function bytesPerSample(depth: string | undefined): number {
  if (depth === 'ushort' || depth === 'short') return 2;
  if (depth === 'uint' || depth === 'int' || depth === 'float') return 4;
  if (depth === 'double' || depth === 'complex') return 8;
  return 1;
}
