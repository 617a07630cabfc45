/**
 * Reading an S3 Inventory report for `moderation backfill --inventory` (docs/operating.md,
 * "Backfill from an S3 Inventory"): for millions of objects, the daily inventory lists them for a
 * fraction of the cost and time of ListObjectsV2.
 *
 * The report is a `manifest.json` (S3 Inventory's own format, version 2016-11-30):
 *
 *   { "sourceBucket": "uploads", "destinationBucket": "arn:aws:s3:::inventory", "version": "2016-11-30",
 *     "fileFormat": "CSV", "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag",
 *     "files": [{ "key": "uploads/daily/data/0b1c….csv.gz", "size": 2147, "MD5checksum": "…" }] }
 *
 * and data files in the destination bucket, gzip-compressed CSV without a header row, one object (or
 * object version) per line, the columns in `fileSchema` order, every field in double quotes, and the
 * key URL-encoded (a space as `+`). ORC and Parquet reports are refused with a clear error: only CSV
 * is read (it is S3 Inventory's default, and needs no columnar reader).
 *
 * The manifest may be given as an S3 URI (read through the object store, like every S3 access of the
 * CLI) or a local file (a downloaded report): then each data file is read from beside the manifest
 * (the same relative path, or the same file name) when it is there, else from the destination bucket.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import { decodeS3Key } from '../functions/lib/s3-event.ts';
import { normaliseETag } from '../functions/lib/object-identity.ts';
import { UserFacingError } from '../functions/lib/errors.ts';
import type { ObjectStore } from '../functions/store/object-store.ts';

/** A manifest that cannot be used, or a data file that cannot be read: one line, nothing enqueued. */
export class InventoryError extends UserFacingError {
  override name = 'InventoryError';
}

export type InventoryLocation = { kind: 's3'; bucket: string; key: string; text: string } | { kind: 'file'; path: string; text: string };

/** `s3://bucket/path/manifest.json`, or a path on this machine. */
export function parseInventoryLocation(spec: string): InventoryLocation {
  const text = spec.trim();
  if (!text) throw new InventoryError('--inventory needs the location of a manifest.json (s3://bucket/path/manifest.json or a local file)');
  if (/^s3:\/\//i.test(text)) {
    const match = /^s3:\/\/([^/]+)\/(.+)$/i.exec(text);
    if (!match) throw new InventoryError(`--inventory: ${text} is not an S3 object URI (s3://bucket/path/manifest.json)`);
    return { kind: 's3', bucket: match[1]!, key: match[2]!, text };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw new InventoryError(`--inventory: ${text}: only s3:// URIs and local files are read`);
  return { kind: 'file', path: text, text };
}

export interface InventoryFile {
  key: string;
  size?: number;
  MD5checksum?: string;
}

export interface InventoryManifest {
  sourceBucket: string;
  /** The bucket the data files are in (the manifest's `destinationBucket`, an ARN, as a name). */
  destinationBucket: string;
  fileFormat: 'CSV';
  /** Column names, in order. */
  columns: string[];
  files: InventoryFile[];
}

/** One row of the inventory: an object (or object version) of the source bucket. */
export interface InventoryRow {
  bucket: string;
  /** Decoded (the CSV's keys are URL-encoded). */
  key: string;
  versionId?: string;
  isLatest?: boolean;
  isDeleteMarker?: boolean;
  size?: number;
  eTag?: string;
  lastModified?: Date;
  /** Where it is: the data file (its index in `files`) and the line in it (1-based). */
  position: { file: number; line: number };
}

const ManifestSchema = z.object({
  sourceBucket: z.string().min(1),
  destinationBucket: z.string().min(1),
  fileFormat: z.string().min(1),
  fileSchema: z.string().min(1),
  files: z.array(z.object({ key: z.string().min(1), size: z.number().optional(), MD5checksum: z.string().optional() }).loose()),
}).loose();

/** Reads and checks the manifest. Throws InventoryError naming the problem. */
export async function readManifest(location: InventoryLocation, objects: ObjectStore): Promise<InventoryManifest> {
  let text: string;
  try {
    text =
      location.kind === 's3'
        ? (await objects.read({ bucket: location.bucket, key: location.key })).toString('utf8')
        : readFileSync(location.path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string; name?: string }).code ?? (err as { name?: string }).name;
    const reason = code === 'ENOENT' || code === 'NoSuchKey' ? 'no such file' : (err as Error).message;
    throw new InventoryError(`--inventory: cannot read the manifest ${location.text}: ${reason}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InventoryError(`--inventory: ${location.text} is not JSON: expected an S3 Inventory manifest.json`);
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || '(the document)';
    throw new InventoryError(`--inventory: ${location.text} is not an S3 Inventory manifest: ${field}: ${issue.message}`);
  }
  const manifest = parsed.data;
  const format = manifest.fileFormat.toUpperCase();
  if (format === 'ORC' || format === 'PARQUET') {
    throw new InventoryError(
      `--inventory: ${location.text} is ${format === 'ORC' ? 'an' : 'a'} ${manifest.fileFormat} inventory; only CSV inventories are read. Configure the inventory report with the CSV format (its default) and use the next report.`,
    );
  }
  if (format !== 'CSV') throw new InventoryError(`--inventory: ${location.text}: unknown fileFormat "${manifest.fileFormat}" (S3 Inventory writes CSV, ORC or Parquet; only CSV is read)`);
  const columns = manifest.fileSchema.split(',').map((c) => c.trim());
  for (const required of ['Bucket', 'Key']) {
    if (!columns.includes(required)) throw new InventoryError(`--inventory: ${location.text}: fileSchema has no ${required} column (got "${manifest.fileSchema}")`);
  }
  const destination = /^arn:[^:]+:s3:::([^/]+)$/.exec(manifest.destinationBucket)?.[1] ?? (manifest.destinationBucket.includes(':') ? undefined : manifest.destinationBucket);
  if (!destination) throw new InventoryError(`--inventory: ${location.text}: destinationBucket "${manifest.destinationBucket}" is not a bucket ARN (arn:aws:s3:::name)`);
  return { sourceBucket: manifest.sourceBucket, destinationBucket: destination, fileFormat: 'CSV', columns, files: manifest.files };
}

/**
 * Every row of the inventory's data files, in manifest order, from `after` on (a resumed run: the
 * rows up to and including that position are skipped). Data files are streamed: a report of millions
 * of objects is never held in memory.
 */
export async function* inventoryRows(
  location: InventoryLocation,
  manifest: InventoryManifest,
  objects: ObjectStore,
  after?: { file: number; line: number },
): AsyncGenerator<InventoryRow> {
  const column = (name: string) => manifest.columns.indexOf(name);
  const at = {
    bucket: column('Bucket'),
    key: column('Key'),
    versionId: column('VersionId'),
    isLatest: column('IsLatest'),
    isDeleteMarker: column('IsDeleteMarker'),
    size: column('Size'),
    lastModified: column('LastModifiedDate'),
    eTag: column('ETag'),
  };
  for (let file = after?.file ?? 0; file < manifest.files.length; file++) {
    const entry = manifest.files[file]!;
    const source = await openDataFile(location, manifest, entry, objects);
    const gunzip = source.pipe(createGunzip());
    source.on('error', (err) => gunzip.destroy(err));
    const lines = createInterface({ input: gunzip, crlfDelay: Number.POSITIVE_INFINITY });
    let line = 0;
    try {
      for await (const text of lines) {
        line += 1;
        if (after && file === after.file && line <= after.line) continue;
        if (!text.trim()) continue;
        const fields = parseCsvLine(text);
        const value = (index: number) => (index >= 0 ? fields[index] : undefined) || undefined;
        const key = value(at.key);
        const bucket = value(at.bucket);
        if (!key || !bucket) throw new InventoryError(`--inventory: ${entry.key}, line ${line}: no bucket or key (is fileSchema right?)`);
        const size = value(at.size);
        const modified = value(at.lastModified);
        yield {
          bucket,
          key: decodeS3Key(key),
          ...(value(at.versionId) ? { versionId: value(at.versionId) } : {}),
          ...(value(at.isLatest) ? { isLatest: value(at.isLatest)!.toLowerCase() === 'true' } : {}),
          ...(value(at.isDeleteMarker) ? { isDeleteMarker: value(at.isDeleteMarker)!.toLowerCase() === 'true' } : {}),
          ...(size && /^\d+$/.test(size) ? { size: Number(size) } : {}),
          ...(value(at.eTag) ? { eTag: normaliseETag(value(at.eTag)) } : {}),
          ...(modified && !Number.isNaN(Date.parse(modified)) ? { lastModified: new Date(modified) } : {}),
          position: { file, line },
        };
      }
    } catch (err) {
      if (err instanceof InventoryError) throw err;
      throw new InventoryError(`--inventory: cannot read the data file ${entry.key}: ${(err as Error).message}`);
    } finally {
      lines.close();
      source.destroy();
    }
  }
}

/** A data file: beside a local manifest if it is there, else from the destination bucket. */
async function openDataFile(location: InventoryLocation, manifest: InventoryManifest, entry: InventoryFile, objects: ObjectStore): Promise<Readable> {
  if (location.kind === 'file') {
    const here = dirname(location.path);
    for (const candidate of [join(here, entry.key), join(here, basename(entry.key))]) {
      if (existsSync(candidate)) return createReadStream(candidate);
    }
  }
  try {
    return await objects.stream({ bucket: manifest.destinationBucket, key: entry.key });
  } catch (err) {
    throw new InventoryError(`--inventory: cannot read the data file s3://${manifest.destinationBucket}/${entry.key}: ${(err as Error).message}`);
  }
}

/** One CSV line as S3 Inventory writes it: fields in double quotes (a quote inside doubled), comma-separated. */
export function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i += 1;
      for (;;) {
        const quote = line.indexOf('"', i);
        if (quote < 0) throw new InventoryError(`an unterminated quoted field in: ${line.slice(0, 80)}`);
        value += line.slice(i, quote);
        if (line[quote + 1] === '"') {
          value += '"';
          i = quote + 2;
          continue;
        }
        i = quote + 1;
        break;
      }
      fields.push(value);
    } else {
      const comma = line.indexOf(',', i);
      fields.push(line.slice(i, comma < 0 ? line.length : comma));
      i = comma < 0 ? line.length : comma;
    }
    if (i >= line.length) return fields;
    if (line[i] !== ',') throw new InventoryError(`a field does not end at a comma in: ${line.slice(0, 80)}`);
    i += 1;
  }
}
