/**
 * Animated PNG (APNG). libvips (inside sharp) reads an APNG as a still PNG: it decodes the default
 * image (the IDAT chunks) and ignores the animation (acTL, fcTL and fdAT chunks), so a harmless first
 * frame would hide every other frame. Browsers play the animation, so every frame must be judged.
 *
 * Each frame is turned into a standalone PNG (the file's IHDR with the frame's size, the chunks that
 * colour it, the frame's data as IDAT), decoded by sharp, and composited onto the canvas with the
 * frame's blend and dispose operations, as the APNG specification says a viewer does.
 * https://wiki.mozilla.org/APNG_Specification
 */
import { crc32 } from 'node:zlib';
import sharp from 'sharp';

const SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
/** Chunks before IDAT that change how the pixels of every frame decode. */
const COLOUR_CHUNKS = new Set(['PLTE', 'tRNS', 'gAMA', 'cHRM', 'sRGB', 'iCCP', 'sBIT']);

export interface ApngHeader {
  width: number;
  height: number;
  /** Frames a viewer shows: the animation's frames, plus the default image when it is not one of them. */
  frames: number;
  /** acTL num_frames. */
  animationFrames: number;
  /** False when the IDAT image is shown only by viewers without APNG support (it is still judged). */
  defaultImageIsFrame: boolean;
}

export interface ApngFrame {
  index: number;
  /** The composited canvas after this frame, 8-bit RGBA, width × height × 4 bytes (a copy: the caller may keep it). */
  rgba: Buffer;
  width: number;
  height: number;
  /** How long the frame is shown (0 for a default image that is not part of the animation). */
  delayMs: number;
}

export class ApngError extends Error {
  override name = 'ApngError';
}

interface Chunk {
  type: string;
  data: Buffer;
}

/**
 * The animation's header when the bytes are an APNG (an acTL chunk before the first IDAT), else
 * undefined. Works on the first bytes of the file: acTL must precede IDAT.
 */
export function apngInfo(bytes: Buffer): ApngHeader | undefined {
  if (bytes.length < 8 || !bytes.subarray(0, 8).equals(SIGNATURE)) return undefined;
  let width = 0;
  let height = 0;
  let animationFrames = 0;
  let fcTLBeforeIdat = false;
  for (const chunk of chunks(bytes, { lenient: true })) {
    if (chunk.type === 'IHDR' && chunk.data.length >= 8) {
      width = chunk.data.readUInt32BE(0);
      height = chunk.data.readUInt32BE(4);
    } else if (chunk.type === 'acTL' && chunk.data.length >= 8) {
      animationFrames = chunk.data.readUInt32BE(0);
    } else if (chunk.type === 'fcTL') {
      fcTLBeforeIdat = true;
    } else if (chunk.type === 'IDAT') {
      break;
    }
  }
  if (animationFrames < 1 || !width || !height) return undefined;
  return { width, height, animationFrames, defaultImageIsFrame: fcTLBeforeIdat, frames: animationFrames + (fcTLBeforeIdat ? 0 : 1) };
}

/**
 * Whether the bytes hold every chunk up to the first IDAT. Only then does the absence of acTL prove a
 * PNG is a still: acTL may sit after large metadata chunks, beyond a header read of the first bytes.
 */
export function pngReachesImageData(bytes: Buffer): boolean {
  if (bytes.length < 8 || !bytes.subarray(0, 8).equals(SIGNATURE)) return false;
  // Chunk headers only: the first IDAT's start is what counts, its data may well run past the bytes.
  for (let offset = 8; offset + 8 <= bytes.length; offset += 12 + bytes.readUInt32BE(offset)) {
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    if (type === 'IDAT') return true;
    if (type === 'IEND') return false;
  }
  return false;
}

/** How long each frame is shown (ms), in display order; 0 for a default image outside the animation. */
export function apngTimeline(bytes: Buffer): number[] {
  const header = apngInfo(bytes);
  if (!header) return [];
  const delays: number[] = header.defaultImageIsFrame ? [] : [0];
  for (const chunk of chunks(bytes, { lenient: true })) {
    if (chunk.type === 'fcTL' && chunk.data.length >= 26) {
      const numerator = chunk.data.readUInt16BE(20);
      const denominator = chunk.data.readUInt16BE(22) || 100;
      delays.push(Math.round((numerator * 1000) / denominator));
    }
  }
  return delays;
}

interface FrameControl {
  width: number;
  height: number;
  x: number;
  y: number;
  delayMs: number;
  /** 0 none, 1 background (clear to transparent), 2 previous. */
  dispose: number;
  /** 0 source (replace), 1 over. */
  blend: number;
  data: Buffer[];
}

/**
 * Decodes the frames in display order, each composited onto the canvas. `from`/`until` bound the
 * frames yielded (compositing always starts from the first frame, as it must); `limitInputPixels`
 * is passed to sharp for each frame. Throws ApngError on a malformed animation.
 */
export async function* apngFrames(
  bytes: Buffer,
  options: { from?: number; until?: number; limitInputPixels?: number } = {},
): AsyncGenerator<ApngFrame> {
  const header = apngInfo(bytes);
  if (!header) throw new ApngError('not an animated PNG');
  const all = [...chunks(bytes, { lenient: false })];
  const ihdr = all.find((c) => c.type === 'IHDR');
  if (!ihdr || ihdr.data.length !== 13) throw new ApngError('APNG without a valid IHDR');
  const firstIdat = all.findIndex((c) => c.type === 'IDAT');
  const colour = all.filter((c, i) => COLOUR_CHUNKS.has(c.type) && i < firstIdat);
  const { width, height } = header;

  const controls: FrameControl[] = [];
  const defaultImage: Buffer[] = [];
  let current: FrameControl | undefined;
  for (const chunk of all) {
    if (chunk.type === 'fcTL') {
      current = frameControl(chunk.data, width, height);
      controls.push(current);
    } else if (chunk.type === 'IDAT') {
      defaultImage.push(chunk.data);
      if (current) current.data.push(chunk.data);
    } else if (chunk.type === 'fdAT') {
      if (!current) throw new ApngError('fdAT before any fcTL');
      if (chunk.data.length < 4) throw new ApngError('fdAT chunk too short');
      current.data.push(chunk.data.subarray(4));
    }
  }
  if (defaultImage.length === 0) throw new ApngError('APNG without image data (IDAT)');
  const from = options.from ?? 0;
  const until = Math.min(options.until ?? Number.POSITIVE_INFINITY, header.frames);
  let index = 0;

  // A default image outside the animation is what viewers without APNG support show: it is a frame too.
  if (!header.defaultImageIsFrame) {
    if (index >= from && index < until) {
      const rgba = await decodeFrame(ihdr.data, colour, defaultImage, width, height, options.limitInputPixels);
      yield { index, rgba, width, height, delayMs: 0 };
    }
    index++;
  }

  const canvas = Buffer.alloc(width * height * 4);
  for (let f = 0; f < controls.length && index < until; f++, index++) {
    const control = controls[f]!;
    if (control.data.length === 0) throw new ApngError(`APNG frame ${f} has no image data`);
    const pixels = await decodeFrame(ihdr.data, colour, control.data, control.width, control.height, options.limitInputPixels);
    // The first frame's "previous" disposal is "background" (the specification says so).
    const dispose = f === 0 && control.dispose === 2 ? 1 : control.dispose;
    const saved = dispose === 2 ? copyRegion(canvas, width, control) : undefined;
    paint(canvas, width, control, pixels);
    if (index >= from) yield { index, rgba: Buffer.from(canvas), width, height, delayMs: control.delayMs };
    if (dispose === 1) clearRegion(canvas, width, control);
    else if (saved) pasteRegion(canvas, width, control, saved);
  }
}

function frameControl(data: Buffer, canvasWidth: number, canvasHeight: number): FrameControl {
  if (data.length < 26) throw new ApngError('fcTL chunk too short');
  const control: FrameControl = {
    width: data.readUInt32BE(4),
    height: data.readUInt32BE(8),
    x: data.readUInt32BE(12),
    y: data.readUInt32BE(16),
    delayMs: 0,
    dispose: data[24]!,
    blend: data[25]!,
    data: [],
  };
  // delay_num / delay_den seconds; a zero denominator means 1/100 s (the specification says so).
  const numerator = data.readUInt16BE(20);
  const denominator = data.readUInt16BE(22) || 100;
  control.delayMs = Math.round((numerator * 1000) / denominator);
  if (!control.width || !control.height || control.x + control.width > canvasWidth || control.y + control.height > canvasHeight) {
    throw new ApngError(`APNG frame region ${control.width}×${control.height} at ${control.x},${control.y} is outside the ${canvasWidth}×${canvasHeight} canvas`);
  }
  if (control.dispose > 2 || control.blend > 1) throw new ApngError('APNG frame with an unknown dispose or blend operation');
  return control;
}

/** A standalone PNG of one frame, decoded to 8-bit RGBA. */
async function decodeFrame(ihdr: Buffer, colour: Chunk[], data: Buffer[], width: number, height: number, limitInputPixels?: number): Promise<Buffer> {
  const frameHeader = Buffer.from(ihdr);
  frameHeader.writeUInt32BE(width, 0);
  frameHeader.writeUInt32BE(height, 4);
  const png = Buffer.concat([
    SIGNATURE,
    encodeChunk('IHDR', frameHeader),
    ...colour.map((c) => encodeChunk(c.type, c.data)),
    encodeChunk('IDAT', Buffer.concat(data)),
    encodeChunk('IEND', Buffer.alloc(0)),
  ]);
  // toColourspace('srgb') scales 16-bit samples to 8 bits (a raw cast would clip them).
  const { data: rgba, info } = await sharp(png, { failOn: 'error', limitInputPixels: limitInputPixels ?? false })
    .toColourspace('srgb')
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height || info.channels !== 4) throw new ApngError('APNG frame decoded to an unexpected shape');
  return rgba;
}

function paint(canvas: Buffer, canvasWidth: number, region: FrameControl, pixels: Buffer): void {
  for (let row = 0; row < region.height; row++) {
    const src = row * region.width * 4;
    const dst = ((region.y + row) * canvasWidth + region.x) * 4;
    if (region.blend === 0) {
      pixels.copy(canvas, dst, src, src + region.width * 4);
      continue;
    }
    for (let col = 0; col < region.width; col++) {
      const s = src + col * 4;
      const d = dst + col * 4;
      const alpha = pixels[s + 3]!;
      if (alpha === 255) pixels.copy(canvas, d, s, s + 4);
      else if (alpha > 0) blendOver(canvas, d, pixels, s, alpha);
    }
  }
}

/** Straight-alpha "over" (APNG_BLEND_OP_OVER). */
function blendOver(canvas: Buffer, d: number, pixels: Buffer, s: number, alpha: number): void {
  const under = canvas[d + 3]!;
  const outAlpha = alpha + (under * (255 - alpha)) / 255;
  for (let c = 0; c < 3; c++) {
    canvas[d + c] = Math.round((pixels[s + c]! * alpha + (canvas[d + c]! * under * (255 - alpha)) / 255) / outAlpha);
  }
  canvas[d + 3] = Math.round(outAlpha);
}

function copyRegion(canvas: Buffer, canvasWidth: number, region: FrameControl): Buffer {
  const out = Buffer.alloc(region.width * region.height * 4);
  for (let row = 0; row < region.height; row++) {
    const start = ((region.y + row) * canvasWidth + region.x) * 4;
    canvas.copy(out, row * region.width * 4, start, start + region.width * 4);
  }
  return out;
}

function pasteRegion(canvas: Buffer, canvasWidth: number, region: FrameControl, saved: Buffer): void {
  for (let row = 0; row < region.height; row++) {
    saved.copy(canvas, ((region.y + row) * canvasWidth + region.x) * 4, row * region.width * 4, (row + 1) * region.width * 4);
  }
}

function clearRegion(canvas: Buffer, canvasWidth: number, region: FrameControl): void {
  for (let row = 0; row < region.height; row++) {
    const start = ((region.y + row) * canvasWidth + region.x) * 4;
    canvas.fill(0, start, start + region.width * 4);
  }
}

function* chunks(bytes: Buffer, options: { lenient: boolean }): Generator<Chunk> {
  let offset = 8;
  while (offset + 8 <= bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    const end = offset + 12 + length;
    if (end > bytes.length) {
      // A header read (the first bytes of the file) ends mid-chunk; a whole file must not.
      if (options.lenient) return;
      throw new ApngError(`truncated PNG: chunk ${type} runs past the end of the file`);
    }
    yield { type, data: bytes.subarray(offset + 8, offset + 8 + length) };
    if (type === 'IEND') return;
    offset = end;
  }
  if (!options.lenient) throw new ApngError('truncated PNG: no IEND chunk');
}

/** One PNG chunk: length, type, data, CRC-32 of type and data. */
export function encodeChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0);
  return Buffer.concat([head, data, crc]);
}

export const PNG_SIGNATURE = SIGNATURE;
