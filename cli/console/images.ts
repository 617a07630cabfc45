/**
 * The image a reviewer looks at, read through the object store (never a URL to the bucket: the
 * console serves the bytes itself, behind its token). JPEG, PNG, GIF and WebP are served as they
 * are, with the type read from the bytes, never from the uploader's Content-Type; anything else sharp
 * can decode (TIFF, HEIF/AVIF, SVG) is rendered to PNG first, so an uploaded SVG's script can never
 * run in the console's origin. An image that cannot be shown gets a placeholder with the reason.
 */
import sharp from 'sharp';
import { inspectImage, UnreadableImageError } from '../../functions/lib/image.ts';
import { quarantineKeyFor } from '../../functions/lib/quarantine.ts';
import { normaliseETag } from '../../functions/lib/object-identity.ts';
import type { ObjectRef, ObjectStore } from '../../functions/store/object-store.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';

/** Larger objects are not shown (a placeholder says so). */
export const MAX_VIEW_BYTES = 25 * 1024 * 1024;
/** Larger images are not decoded for display. */
const MAX_VIEW_PIXELS = 100_000_000;
/** Served as stored: what every browser decodes in an <img>. */
const SERVED_AS_IS: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp' };
const RENDERED = new Set(['tiff', 'heif', 'avif', 'svg']);
const HEADER_BYTES = 64 * 1024;

export type Located = { ref: ObjectRef; size: number; where: 'uploads' | 'quarantine' } | { reason: string };

export type Viewable = { ok: true; format: string; where: 'uploads' | 'quarantine' } | { ok: false; reason: string };

export type LoadedImage = { ok: true; bytes: Buffer; contentType: string } | { ok: false; reason: string };

/**
 * Where the judged bytes are now: the object version in the uploads bucket, or its copy in the
 * quarantine bucket once it was rejected.
 */
export async function locateImage(objects: ObjectStore, record: DecisionRecord, quarantineBucket: string): Promise<Located> {
  const ref: ObjectRef = { bucket: record.bucket, key: record.key, ...(record.versionId ? { versionId: record.versionId } : {}) };
  try {
    const head = await objects.head(ref);
    if (head !== 'missing') {
      const judged = normaliseETag(record.eTag);
      if (!record.versionId && judged && head.eTag && head.eTag !== judged) {
        return { reason: 'The object was overwritten by a newer upload after it was judged (the newer upload has its own job): the bytes that were judged are gone.' };
      }
      return { ref, size: head.size, where: 'uploads' };
    }
    const copy: ObjectRef = { bucket: quarantineBucket, key: quarantineKeyFor(record.bucket, record.key) };
    const quarantined = await objects.head(copy);
    if (quarantined !== 'missing') return { ref: copy, size: quarantined.size, where: 'quarantine' };
    return { reason: `The object is no longer in the uploads bucket (s3://${record.bucket}/${record.key}) nor in quarantine: it was deleted.` };
  } catch (err) {
    return { reason: `The object cannot be read: ${(err as Error).message}` };
  }
}

/** Whether the image can be shown, from its header only (one range read). */
export async function probeImage(objects: ObjectStore, record: DecisionRecord, quarantineBucket: string): Promise<Viewable> {
  const located = await locateImage(objects, record, quarantineBucket);
  if ('reason' in located) return { ok: false, reason: located.reason };
  if (located.size === 0) return { ok: false, reason: 'The object is empty (0 bytes).' };
  if (located.size > MAX_VIEW_BYTES) return { ok: false, reason: `The object is too large to show here (${(located.size / 1024 / 1024).toFixed(1)} MB; the console shows up to ${MAX_VIEW_BYTES / 1024 / 1024} MB).` };
  try {
    const header = await objects.read(located.ref, { start: 0, end: Math.min(located.size, HEADER_BYTES) - 1 });
    const format = await viewableFormat(header);
    return 'reason' in format ? { ok: false, reason: format.reason } : { ok: true, format: format.format, where: located.where };
  } catch (err) {
    return { ok: false, reason: `The object cannot be read: ${(err as Error).message}` };
  }
}

/** The bytes to serve: as stored for the formats browsers decode, else rendered to PNG. */
export async function loadImage(objects: ObjectStore, record: DecisionRecord, quarantineBucket: string): Promise<LoadedImage> {
  const located = await locateImage(objects, record, quarantineBucket);
  if ('reason' in located) return { ok: false, reason: located.reason };
  if (located.size > MAX_VIEW_BYTES) return { ok: false, reason: 'The object is too large to show here.' };
  try {
    const bytes = await objects.read(located.ref);
    const format = await viewableFormat(bytes);
    if ('reason' in format) return { ok: false, reason: format.reason };
    const type = SERVED_AS_IS[format.format];
    if (type) return { ok: true, bytes, contentType: type };
    const png = await sharp(bytes, { limitInputPixels: MAX_VIEW_PIXELS, failOn: 'none', pages: 1 })
      .rotate()
      .resize({ width: 2048, height: 2048, fit: 'inside', withoutEnlargement: true })
      .png()
      .toBuffer();
    return { ok: true, bytes: png, contentType: 'image/png' };
  } catch (err) {
    return { ok: false, reason: `The image cannot be shown: ${(err as Error).message}` };
  }
}

async function viewableFormat(bytes: Buffer): Promise<{ format: string } | { reason: string }> {
  let format: string;
  let pixels: number;
  try {
    const info = await inspectImage(bytes);
    format = info.format === 'heif' && info.compression === 'av1' ? 'avif' : info.format;
    pixels = info.width * info.height;
  } catch (err) {
    if (err instanceof UnreadableImageError) return { reason: `The file is not an image the console can show: ${err.message}.` };
    throw err;
  }
  if (!SERVED_AS_IS[format] && !RENDERED.has(format)) return { reason: `The console cannot show ${format} images.` };
  if (pixels > MAX_VIEW_PIXELS) return { reason: `The image is too large to decode for display (${pixels.toLocaleString('en-US')} pixels).` };
  return { format };
}
