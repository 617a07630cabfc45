/**
 * What Rekognition and the reviewer can take, and how to make an upload fit. Pure image work with
 * sharp; no AWS clients.
 *
 * Rekognition DetectModerationLabels (official limits): JPEG or PNG, at most 15 MB as an S3 object
 * or 5 MB as request bytes, each side from 80 to 10,000 px.
 */
import sharp from 'sharp';

export const REKOGNITION_LIMITS = {
  maxS3ObjectBytes: 15 * 1024 * 1024,
  maxRequestBytes: 5 * 1024 * 1024,
  minSidePx: 80,
  maxSidePx: 10_000,
  formats: ['jpeg', 'png'] as readonly string[],
};

/** Beyond this many pixels we refuse to decode: a decompression bomb costs memory, not insight. */
export const MAX_DECODE_PIXELS = 16_384 * 16_384;
/** Objects larger than this are not downloaded for conversion. */
export const MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024;
/** Formats sharp decodes here that we convert to JPEG for Rekognition. */
const CONVERTIBLE = new Set(['jpeg', 'png', 'webp', 'gif', 'avif', 'tiff', 'heif', 'svg']);

export interface ImageInfo {
  format: string;
  width: number;
  height: number;
  /** Frames in an animation (GIF, WebP), 1 for stills. */
  pages: number;
  /** HEIF only: the coding inside the container ('hevc' is HEIC, 'av1' is AVIF). */
  compression?: string;
}

export type Readiness =
  | { kind: 'direct' }
  | { kind: 'convert'; why: string }
  | { kind: 'unusable'; reason: string };

export class UnreadableImageError extends Error {
  override name = 'UnreadableImage';
}

/** Reads the header only (works on the first bytes of most files). */
export async function inspectImage(bytes: Buffer): Promise<ImageInfo> {
  if (bytes.length === 0) throw new UnreadableImageError('empty file (0 bytes)');
  try {
    const meta = await sharp(bytes, { limitInputPixels: false, failOn: 'none' }).metadata();
    if (!meta.format || !meta.width || !meta.height) throw new UnreadableImageError('no image dimensions in the file header');
    return { format: meta.format, width: meta.width, height: meta.height, pages: meta.pages ?? 1, ...(meta.compression ? { compression: meta.compression } : {}) };
  } catch (err) {
    if (err instanceof UnreadableImageError) throw err;
    throw new UnreadableImageError(describeSharpError(err));
  }
}

/** Decides whether Rekognition can read the object by reference, needs converted bytes, or cannot be helped. */
export function readiness(info: ImageInfo, objectBytes: number): Readiness {
  if (!CONVERTIBLE.has(info.format)) return { kind: 'unusable', reason: `unsupported image format: ${info.format}` };
  if (info.width * info.height > MAX_DECODE_PIXELS) {
    return { kind: 'unusable', reason: `image too large to decode safely: ${info.width}×${info.height} px (limit ${MAX_DECODE_PIXELS} px)` };
  }
  const smallest = Math.min(info.width, info.height);
  if (smallest < 1) return { kind: 'unusable', reason: 'image has no pixels' };
  if (!REKOGNITION_LIMITS.formats.includes(info.format)) return { kind: 'convert', why: `${info.format} is not JPEG or PNG` };
  if (info.pages > 1) return { kind: 'convert', why: `animated ${info.format} (${info.pages} frames)` };
  if (objectBytes > REKOGNITION_LIMITS.maxS3ObjectBytes) return { kind: 'convert', why: `${mb(objectBytes)} MB is over Rekognition's 15 MB limit` };
  if (Math.max(info.width, info.height) > REKOGNITION_LIMITS.maxSidePx) return { kind: 'convert', why: `${info.width}×${info.height} px is over 10,000 px` };
  if (smallest < REKOGNITION_LIMITS.minSidePx) return { kind: 'convert', why: `${info.width}×${info.height} px is under 80 px` };
  return { kind: 'direct' };
}

export interface ConvertedImage {
  bytes: Buffer;
  width: number;
  height: number;
}

/**
 * Re-encodes an image as a JPEG that fits a byte budget and a side range: downscaled when too big,
 * upscaled when under the minimum side, the first frame of an animation. Lowers quality, then size,
 * until it fits.
 */
export async function toJpeg(
  bytes: Buffer,
  options: { maxSidePx: number; minSidePx?: number; maxBytes: number },
): Promise<ConvertedImage> {
  let maxSide = options.maxSidePx;
  let quality = 85;
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      const pipeline = sharp(bytes, { limitInputPixels: MAX_DECODE_PIXELS, failOn: 'error', pages: 1 })
        .rotate()
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

/** What Rekognition gets when it cannot read the object itself. */
export function toRekognitionBytes(bytes: Buffer): Promise<ConvertedImage> {
  return toJpeg(bytes, { maxSidePx: 4096, minSidePx: REKOGNITION_LIMITS.minSidePx, maxBytes: REKOGNITION_LIMITS.maxRequestBytes });
}

/** What the reviewer (a multimodal LLM) gets: 1568 px on the long edge is where Claude and Nova stop gaining detail. */
export function toReviewBytes(bytes: Buffer): Promise<ConvertedImage> {
  return toJpeg(bytes, { maxSidePx: 1568, maxBytes: 3_750_000 });
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

function describeSharpError(err: unknown): string {
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
