/**
 * Test images for the reliability scenarios, all generated in code (no binary fixtures).
 *
 * Ordinary images carry the verdict they should get in their colour: the harness's fake classifier
 * (harness.ts) reads the mean red channel back, so a scenario decides what each upload should be
 * without depending on a model. The bad inputs are what upload platforms actually receive: empty,
 * truncated, mislabelled, decompression bombs, oversized, animated, other formats, odd keys.
 */
import sharp from 'sharp';

export type Verdict = 'APPROVE' | 'BORDERLINE' | 'REJECT';

/** Mean red channel of each verdict's images; the fake classifier maps red back to the verdict. */
export const VERDICT_RED: Record<Verdict, number> = { APPROVE: 30, BORDERLINE: 140, REJECT: 230 };

export function verdictFromRed(red: number): Verdict {
  if (red < 85) return 'APPROVE';
  if (red < 185) return 'BORDERLINE';
  return 'REJECT';
}

/** A deterministic pseudo-random generator (the same seed gives the same bytes, hence the same ETag). */
import { prng } from '../../bench/scenes.ts';

export { prng };

export interface ImageSpec {
  verdict?: Verdict;
  /** Makes the bytes (and the ETag) unique. */
  seed?: number;
  width?: number;
  height?: number;
  /** Green channel (0-255): the fake Bedrock endpoint reads its script index from it. */
  green?: number;
  format?: 'jpeg' | 'png' | 'webp';
}

/** A small noisy image whose mean red channel encodes the verdict. */
export async function makeImage(spec: ImageSpec = {}): Promise<Buffer> {
  const width = spec.width ?? 128;
  const height = spec.height ?? 128;
  const red = VERDICT_RED[spec.verdict ?? 'APPROVE'];
  const green = spec.green ?? 120;
  const random = prng(spec.seed ?? 1);
  const raw = Buffer.alloc(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    // ±6 of noise: unique bytes per seed, the same mean colour after any re-encoding.
    raw[p * 3] = red + Math.floor(random() * 13) - 6;
    raw[p * 3 + 1] = green + Math.floor(random() * 5) - 2;
    raw[p * 3 + 2] = 90 + Math.floor(random() * 13) - 6;
  }
  const image = sharp(raw, { raw: { width, height, channels: 3 } });
  if (spec.format === 'png') return image.png().toBuffer();
  if (spec.format === 'webp') return image.webp({ quality: 80 }).toBuffer();
  return image.jpeg({ quality: 85 }).toBuffer();
}

// ---------------------------------------------------------------------------------------------------
// Hand-built containers

const u8 = (n: number) => Buffer.from([n & 0xff]);
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  return Buffer.concat([u32(data.length), typeAndData, u32(crc32(typeAndData))]);
}

/**
 * A decompression bomb's header: a valid PNG signature and IHDR (with its CRC) declaring
 * width × height RGB pixels, a tiny IDAT (one deflated row of zeros) and IEND. 50,000 × 50,000
 * would be 7.5 GB decoded.
 */
export function pngBombHeader(width = 50_000, height = 50_000): Buffer {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const ihdr = Buffer.concat([u32(width), u32(height), u8(8), u8(2), u8(0), u8(0), u8(0)]);
  // zlib stream of a few zero bytes (a stored block would do as well): 78 9c, deflate, adler32.
  const idat = Buffer.from([0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}

const isoBox = (type: string, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(8 + body.length), Buffer.from(type, 'latin1'), body]);
};
const isoFullBox = (type: string, version: number, flags: number, ...parts: Buffer[]) =>
  isoBox(type, u8(version), u8(flags >> 16), u16(flags & 0xffff), ...parts);

/**
 * A HEIC as a phone writes it, minus the picture: ftyp `heic`, a meta box whose primary item is an
 * `hvc1` (HEVC) image with its hvcC decoder configuration and ispe size, and an mdat holding the
 * (here meaningless) coded data. Parsers read its size and codec; only a decoder with HEVC support
 * could draw it, and sharp's prebuilt libvips has none (HEVC is patent-encumbered).
 */
export function heicContainer(width = 4032, height = 3024, payloadBytes = 64 * 1024): Buffer {
  const ftyp = isoBox('ftyp', Buffer.from('heic'), u32(0), Buffer.from('mif1'), Buffer.from('heic'));
  // HEVCDecoderConfigurationRecord: version 1, Main profile, level 3.0, 4:2:0 8-bit, 4-byte NAL lengths, no arrays.
  const hvcC = isoBox('hvcC', Buffer.from([1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5a, 0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0]));
  const ispe = isoFullBox('ispe', 0, 0, u32(width), u32(height));
  const ipma = isoFullBox('ipma', 0, 0, u32(1), u16(1), u8(2), u8(0x81), u8(0x02));
  const iprp = isoBox('iprp', isoBox('ipco', hvcC, ispe), ipma);
  const hdlr = isoFullBox('hdlr', 0, 0, u32(0), Buffer.from('pict'), u32(0), u32(0), u32(0), u8(0));
  const pitm = isoFullBox('pitm', 0, 0, u16(1));
  const iinf = isoFullBox('iinf', 0, 0, u16(1), isoFullBox('infe', 2, 0, u16(1), u16(0), Buffer.from('hvc1'), u8(0)));
  const random = prng(7);
  const payload = Buffer.alloc(payloadBytes);
  for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(random() * 256);
  payload.writeUInt32BE(payloadBytes - 4, 0); // one length-prefixed NAL unit
  const iloc = (offset: number) => isoFullBox('iloc', 0, 0, u8(0x44), u8(0x00), u16(1), u16(1), u16(0), u16(1), u32(offset), u32(payload.length));
  const meta = (offset: number) => isoFullBox('meta', 0, 0, hdlr, pitm, iloc(offset), iinf, iprp);
  const dataOffset = ftyp.length + meta(0).length + 8;
  return Buffer.concat([ftyp, meta(dataOffset), isoBox('mdat', payload)]);
}

/** A real, decodable JPEG of more than `minBytes`: high-quality noise (noise does not compress). */
export async function hugeJpeg(minBytes = 16 * 1024 * 1024 + 1): Promise<Buffer> {
  let width = 2600;
  for (;;) {
    const height = Math.round(width * 0.85);
    const random = prng(width);
    const raw = Buffer.alloc(width * height * 3);
    for (let i = 0; i < raw.length; i += 3) {
      // Low red (the APPROVE colour band) with full-range green and blue noise.
      raw[i] = Math.floor(random() * 60);
      raw[i + 1] = Math.floor(random() * 256);
      raw[i + 2] = Math.floor(random() * 256);
    }
    const jpeg = await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
    if (jpeg.length >= minBytes) return jpeg;
    width = Math.ceil(width * Math.sqrt((minBytes * 1.05) / jpeg.length));
  }
}

export async function animatedGif(frames = 3): Promise<Buffer> {
  const pngs = await Promise.all(
    Array.from({ length: frames }, (_, i) =>
      sharp({ create: { width: 120, height: 120, channels: 3, background: { r: VERDICT_RED.APPROVE, g: 60 + i * 60, b: 90 } } })
        .png()
        .toBuffer(),
    ),
  );
  return sharp(pngs, { join: { animated: true } }).gif({ delay: pngs.map(() => 200), loop: 0 }).toBuffer();
}

/**
 * An SVG referencing a remote image (`href`), and optionally an external XML entity (`entityUrl`).
 * Neither may be fetched by the pipeline: point them at a canary server and count its requests.
 */
export function svgImage(options: { href: string; entityUrl?: string }): Buffer {
  const doctype = options.entityUrl ? `<!DOCTYPE svg [<!ENTITY secret SYSTEM "${options.entityUrl}">]>\n` : '';
  return Buffer.from(
    `<?xml version="1.0"?>
${doctype}<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="160" height="120">
  <rect width="160" height="120" fill="rgb(${VERDICT_RED.APPROVE},120,90)"/>
  <image href="${options.href}" xlink:href="${options.href}" width="40" height="40"/>
  <text x="10" y="60">${options.entityUrl ? '&secret;' : 'hello'}</text>
</svg>`,
  );
}

/** A key of exactly `bytes` UTF-8 bytes under `prefix`, in path segments short enough for s3rver's file names. */
export function longKey(prefix: string, bytes = 1000, suffix = '.jpg'): string {
  const budget = bytes - Buffer.byteLength(prefix) - Buffer.byteLength(suffix);
  const segments: string[] = [];
  let left = budget;
  let i = 0;
  while (left > 0) {
    // 200-byte segments ('/' included): s3rver stores each segment as a file or directory name.
    const take = Math.min(200, left);
    const last = left - take === 0;
    const letter = String.fromCharCode(97 + (i++ % 26));
    segments.push(last ? letter.repeat(take) : `${letter.repeat(take - 1)}/`);
    left -= take;
  }
  const key = `${prefix}${segments.join('')}${suffix}`;
  if (Buffer.byteLength(key) !== bytes) throw new Error(`long key is ${Buffer.byteLength(key)} bytes, expected ${bytes}`);
  return key;
}
