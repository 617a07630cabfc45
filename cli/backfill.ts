/**
 * Backfill: moderating objects that were in the bucket before the pipeline existed. It walks the
 * bucket in key order (ListObjectsV2), skips every object version that already has a decision, and
 * sends the others to the intake queue as the notification S3 would have sent (the same
 * idempotent notification reconcile sends), at a steady rate kept under the Rekognition quota.
 *
 * Resumable: after every object the position (the last key handled) is saved in the data
 * directory, so an interrupted run (Ctrl-C, a lost laptop lid) continues with --resume where it
 * stopped, and an object enqueued twice is still one job, decided once.
 *
 * With `inventory` the objects come from an S3 Inventory report instead of a listing (cli/inventory.ts):
 * its CSV rows in manifest order, the position being the data file and line.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { ListedObject, ObjectStore } from '../functions/store/object-store.ts';
import { InventoryError, inventoryRows, parseInventoryLocation, readManifest } from './inventory.ts';
import { decisionState, enqueue, type ReconcileTarget } from './reconcile.ts';
import { rateLimiter } from './flags.ts';
import { UsageError } from './output.ts';
import { objectStoreOf } from './stores.ts';

export type BackfillTarget = ReconcileTarget;

export interface BackfillOptions {
  /** Key prefix to walk (default: the uploads prefix). */
  prefix?: string;
  /** Objects per second sent to the intake queue. */
  rate?: number;
  /** Continue after the last key a previous run saved (otherwise start at the beginning). */
  resume?: boolean;
  /** Where the position is saved (a file in the data directory). */
  checkpointFile: string;
  /** Stop after enqueueing this many. */
  max?: number;
  /** Look, do not send. */
  dryRun?: boolean;
  /** Walk an S3 Inventory report instead of listing: its manifest.json (s3://bucket/path/manifest.json or a local file). */
  inventory?: string;
  /** Checked between objects: true stops the run cleanly (Ctrl-C). */
  stopRequested?: () => boolean;
  onProgress?: (progress: BackfillProgress) => void;
}

export interface BackfillProgress {
  listed: number;
  alreadyDecided: number;
  enqueued: number;
  lastKey?: string;
}

export interface BackfillReport extends BackfillProgress {
  bucket: string;
  prefix: string;
  /** Objects with only FAILED records: left to the dead-letter queue (`moderation dlq replay`). */
  failed: number;
  /** Where it started: after this key (a resumed run), or at the beginning. */
  resumedAfter?: string;
  /** True when every object under the prefix was handled; false when stopped (resume with --resume). */
  complete: boolean;
  dryRun: boolean;
  /** The inventory manifest walked (absent: the bucket was listed). */
  inventory?: string;
  /** Inventory rows left out: delete markers and versions that are not the latest. */
  notCurrent?: number;
  /** Inventory rows whose object is gone since the report was made. */
  gone?: number;
}

interface Checkpoint {
  bucket: string;
  prefix: string;
  lastKey: string;
  savedAt: string;
  /** An inventory run: its manifest, and the data file and line of the last row handled. */
  inventory?: string;
  position?: { file: number; line: number };
}

/** One object to consider, and where it is (what a checkpoint saves). */
interface Walked {
  object: ListedObject;
  position?: { file: number; line: number };
}

/** The checkpoint file of a bucket and prefix, in the data directory. */
export function checkpointFileFor(home: string, bucket: string, prefix: string, inventory?: string): string {
  const id = createHash('sha256').update(`${bucket}\u0000${prefix}${inventory ? `\u0000${inventory.trim()}` : ''}`).digest('hex').slice(0, 16);
  return join(home, 'backfill', `${bucket}-${id}.json`);
}

export async function backfill(target: BackfillTarget, options: BackfillOptions): Promise<BackfillReport> {
  const bucket = target.names.uploadsBucket;
  const prefix = options.prefix ?? target.names.uploadsPrefix;
  const saved = options.resume ? readCheckpoint(options.checkpointFile, bucket, prefix, options.inventory) : undefined;
  const report: BackfillReport = {
    bucket,
    prefix,
    listed: 0,
    alreadyDecided: 0,
    enqueued: 0,
    failed: 0,
    resumedAfter: saved?.lastKey,
    complete: false,
    dryRun: Boolean(options.dryRun),
    ...(options.inventory ? { inventory: options.inventory.trim(), notCurrent: 0, gone: 0 } : {}),
  };
  const pace = rateLimiter(options.rate);
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const store = objectStoreOf(target);
  // An inventory's manifest is read and checked before anything is sent: a bad one is one clear error.
  const objects = options.inventory
    ? await fromInventory(store, options.inventory, bucket, prefix, report, saved?.position)
    : fromListing(store, bucket, prefix, saved?.lastKey);
  for (;;) {
    if (options.stopRequested?.() || report.enqueued >= max) return report;
    let next: IteratorResult<Walked>;
    try {
      next = await objects.next();
    } catch (err) {
      // Nothing was sent yet when the first page fails: one clear error, nothing enqueued.
      if (report.listed === 0 && !(err instanceof InventoryError)) throw new UsageError(`cannot list s3://${bucket}/${prefix}: ${(err as Error).message}`);
      throw err;
    }
    if (next.done) break;
    const { object, position } = next.value;
    report.listed += 1;
    const state = await decisionState(target, bucket, object);
    if (state.decided) report.alreadyDecided += 1;
    else if (state.state === 'failed') report.failed += 1;
    else if (!options.dryRun) {
      await pace();
      await enqueue(target, bucket, { key: object.key, size: object.size, eTag: object.eTag, lastModified: object.lastModified.toISOString() });
      report.enqueued += 1;
    } else report.enqueued += 1;
    report.lastKey = object.key;
    if (!options.dryRun) {
      const checkpoint: Checkpoint = { bucket, prefix, lastKey: object.key, savedAt: new Date().toISOString() };
      if (report.inventory && position) Object.assign(checkpoint, { inventory: report.inventory, position });
      saveCheckpoint(options.checkpointFile, checkpoint);
    }
    options.onProgress?.({ listed: report.listed, alreadyDecided: report.alreadyDecided, enqueued: report.enqueued, lastKey: object.key });
  }
  report.complete = true;
  // Done: the next run starts from the beginning again (it skips what is decided by then).
  if (!options.dryRun) rmSync(options.checkpointFile, { force: true });
  return report;
}

/** The bucket's objects under the prefix, in key order (ListObjectsV2), after `startAfter`. */
async function* fromListing(store: ObjectStore, bucket: string, prefix: string, startAfter?: string): AsyncGenerator<Walked> {
  for await (const object of store.list(bucket, prefix, { startAfter })) yield { object };
}

/**
 * The objects an S3 Inventory report lists under the prefix (cli/inventory.ts): the current version
 * of each (delete markers and older versions are left out), with what the report says of its size,
 * ETag and time, or, when its schema leaves those out, what a HEAD says now (an object gone since
 * the report is counted and skipped).
 */
async function fromInventory(
  store: ObjectStore,
  spec: string,
  bucket: string,
  prefix: string,
  report: BackfillReport,
  after?: { file: number; line: number },
): Promise<AsyncGenerator<Walked>> {
  const location = parseInventoryLocation(spec);
  const manifest = await readManifest(location, store);
  if (manifest.sourceBucket !== bucket) {
    throw new InventoryError(`--inventory: ${location.text} is an inventory of bucket ${manifest.sourceBucket}; this pipeline moderates ${bucket}`);
  }
  return (async function* () {
    for await (const row of inventoryRows(location, manifest, store, after)) {
      if (row.bucket !== bucket || !row.key.startsWith(prefix) || row.key.endsWith('/')) continue;
      if (row.isDeleteMarker || row.isLatest === false) {
        report.notCurrent! += 1;
        continue;
      }
      if (row.size !== undefined && row.eTag && row.lastModified) {
        yield { object: { key: row.key, size: row.size, eTag: row.eTag, lastModified: row.lastModified }, position: row.position };
        continue;
      }
      const head = await store.head({ bucket, key: row.key });
      if (head === 'missing') {
        report.gone! += 1;
        continue;
      }
      yield { object: { key: row.key, size: head.size, eTag: head.eTag ?? '', lastModified: head.lastModified ?? new Date(0) }, position: row.position };
    }
  })();
}

function readCheckpoint(file: string, bucket: string, prefix: string, inventory?: string): Pick<Checkpoint, 'lastKey' | 'position'> {
  const where = `s3://${bucket}/${prefix}${inventory ? ` from the inventory ${inventory.trim()}` : ''}`;
  if (!existsSync(file)) throw new UsageError(`--resume: no interrupted backfill of ${where} to resume (run without --resume to start one)`);
  let checkpoint: Checkpoint;
  try {
    checkpoint = JSON.parse(readFileSync(file, 'utf8')) as Checkpoint;
  } catch {
    throw new UsageError(`--resume: the saved position ${file} cannot be read; delete it to start over`);
  }
  if (checkpoint.bucket !== bucket || checkpoint.prefix !== prefix || typeof checkpoint.lastKey !== 'string') {
    throw new UsageError(`--resume: ${file} is not a position in s3://${bucket}/${prefix}`);
  }
  if (inventory && (checkpoint.inventory !== inventory.trim() || !checkpoint.position)) {
    throw new UsageError(`--resume: ${file} is not a position in the inventory ${inventory.trim()}`);
  }
  return { lastKey: checkpoint.lastKey, ...(inventory ? { position: checkpoint.position } : {}) };
}

/** Written whole, then renamed: a crash mid-write leaves the previous position, never half a file. */
function saveCheckpoint(file: string, checkpoint: Checkpoint): void {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, JSON.stringify(checkpoint));
  renameSync(temporary, file);
}
