/**
 * Backfill: moderating objects that were in the bucket before the pipeline existed. It walks the
 * bucket in key order (ListObjectsV2), skips every object version that already has a decision, and
 * sends the others to the intake queue as the notification S3 would have sent (the same
 * idempotent notification reconcile sends), at a steady rate kept under the Rekognition quota.
 *
 * Resumable: after every object the position (the last key handled) is saved in the data
 * directory, so an interrupted run (Ctrl-C, a lost laptop lid) continues with --resume where it
 * stopped, and an object enqueued twice is still one job, decided once.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { ListedObject } from '../functions/store/object-store.ts';
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
}

interface Checkpoint {
  bucket: string;
  prefix: string;
  lastKey: string;
  savedAt: string;
}

/** The checkpoint file of a bucket and prefix, in the data directory. */
export function checkpointFileFor(home: string, bucket: string, prefix: string): string {
  const id = createHash('sha256').update(`${bucket}\u0000${prefix}`).digest('hex').slice(0, 16);
  return join(home, 'backfill', `${bucket}-${id}.json`);
}

export async function backfill(target: BackfillTarget, options: BackfillOptions): Promise<BackfillReport> {
  const bucket = target.names.uploadsBucket;
  const prefix = options.prefix ?? target.names.uploadsPrefix;
  const saved = options.resume ? readCheckpoint(options.checkpointFile, bucket, prefix) : undefined;
  const report: BackfillReport = {
    bucket,
    prefix,
    listed: 0,
    alreadyDecided: 0,
    enqueued: 0,
    failed: 0,
    resumedAfter: saved,
    complete: false,
    dryRun: Boolean(options.dryRun),
  };
  const pace = rateLimiter(options.rate);
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const objects = objectStoreOf(target).list(bucket, prefix, { startAfter: saved });
  for (;;) {
    if (options.stopRequested?.() || report.enqueued >= max) return report;
    let next: IteratorResult<ListedObject>;
    try {
      next = await objects.next();
    } catch (err) {
      // Nothing was sent yet when the first page fails: one clear error, nothing enqueued.
      if (report.listed === 0) throw new UsageError(`cannot list s3://${bucket}/${prefix}: ${(err as Error).message}`);
      throw err;
    }
    if (next.done) break;
    const object = next.value;
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
    if (!options.dryRun) saveCheckpoint(options.checkpointFile, { bucket, prefix, lastKey: object.key, savedAt: new Date().toISOString() });
    options.onProgress?.({ listed: report.listed, alreadyDecided: report.alreadyDecided, enqueued: report.enqueued, lastKey: object.key });
  }
  report.complete = true;
  // Done: the next run starts from the beginning again (it skips what is decided by then).
  if (!options.dryRun) rmSync(options.checkpointFile, { force: true });
  return report;
}

function readCheckpoint(file: string, bucket: string, prefix: string): string | undefined {
  if (!existsSync(file)) throw new UsageError(`--resume: no interrupted backfill of s3://${bucket}/${prefix} to resume (run without --resume to start one)`);
  let checkpoint: Checkpoint;
  try {
    checkpoint = JSON.parse(readFileSync(file, 'utf8')) as Checkpoint;
  } catch {
    throw new UsageError(`--resume: the saved position ${file} cannot be read; delete it to start over`);
  }
  if (checkpoint.bucket !== bucket || checkpoint.prefix !== prefix || typeof checkpoint.lastKey !== 'string') {
    throw new UsageError(`--resume: ${file} is not a position in s3://${bucket}/${prefix}`);
  }
  return checkpoint.lastKey;
}

/** Written whole, then renamed: a crash mid-write leaves the previous position, never half a file. */
function saveCheckpoint(file: string, checkpoint: Checkpoint): void {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, JSON.stringify(checkpoint));
  renameSync(temporary, file);
}
