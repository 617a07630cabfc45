/**
 * Reconcile: every object under the uploads prefix should have a decision. After an outage or a lost
 * notification some may not; this finds them (ListObjectsV2, then the byImage index for a record of
 * the same ETag) and, with --enqueue, sends each to the intake queue as the S3 notification the
 * bucket would have sent, so the pipeline moderates it like any upload.
 *
 * Idempotence: the notification's sequencer is derived from the object's LastModified, so running
 * reconcile twice enqueues the same job id twice and the pipeline decides it once. In a versioned
 * bucket the job id is the object version's, the same as the original notification's.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { buildS3Notification } from '../functions/lib/s3-event.ts';
import { jobIdFor } from '../functions/lib/job-id.ts';
import { normaliseETag } from '../functions/lib/object-identity.ts';
import type { Target } from './target.ts';
import { rateLimiter } from './flags.ts';
import { decisionStoreOf, objectStoreOf } from './stores.ts';
import type { ListedObject } from '../functions/store/object-store.ts';

export type ReconcileTarget = Pick<Target, 's3' | 'sqs' | 'dynamodb' | 'region'> & {
  names: Pick<Target['names'], 'uploadsBucket' | 'uploadsPrefix' | 'intakeQueueUrl' | 'decisionTable' | 'statusShards'>;
};

export interface ReconcileOptions {
  /** Default: the target's uploads prefix. */
  prefix?: string;
  /** Objects modified more recently than this are still in the pipeline: counted, not listed. */
  minAgeMs?: number;
  /** Send the undecided objects to the intake queue. */
  enqueue?: boolean;
  /** Also enqueue objects whose only records are FAILED (normally their job waits in the DLQ). */
  includeFailed?: boolean;
  /** Enqueue at most this many. */
  max?: number;
  /** Messages per second when enqueueing. */
  rate?: number;
  /** Parallel index queries while checking. */
  concurrency?: number;
  now?: Date;
  onProgress?: (checked: number, total: number) => void;
}

export type UndecidedState = 'undecided' | 'failed';

export interface UndecidedObject {
  key: string;
  size: number;
  eTag: string;
  lastModified: string;
  /** undecided: no record at all; failed: only FAILED records (its job should be in the DLQ). */
  state: UndecidedState;
  lastError?: string;
  enqueued?: boolean;
  jobId?: string;
}

export interface ReconcileReport {
  bucket: string;
  prefix: string;
  /** Objects listed under the prefix. */
  objects: number;
  decided: number;
  /** Too recent to judge (--min-age). */
  inFlight: number;
  undecided: UndecidedObject[];
  enqueued: number;
}

type Listed = ListedObject;

export async function reconcile(target: ReconcileTarget, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const bucket = target.names.uploadsBucket;
  const prefix = options.prefix ?? target.names.uploadsPrefix;
  const now = (options.now ?? new Date()).getTime();
  const minAge = options.minAgeMs ?? 0;
  const report: ReconcileReport = { bucket, prefix, objects: 0, decided: 0, inFlight: 0, undecided: [], enqueued: 0 };

  const toCheck: Listed[] = [];
  for await (const object of objectStoreOf(target).list(bucket, prefix)) {
    report.objects += 1;
    if (now - object.lastModified.getTime() < minAge) {
      report.inFlight += 1;
      continue;
    }
    toCheck.push(object);
  }

  const found: Array<UndecidedObject | undefined> = new Array(toCheck.length);
  let next = 0;
  let checked = 0;
  const workers = Array.from({ length: Math.max(1, options.concurrency ?? 8) }, async () => {
    while (next < toCheck.length) {
      const index = next++;
      const object = toCheck[index]!;
      const state = await decisionState(target, bucket, object);
      if (state.decided) report.decided += 1;
      else found[index] = { key: object.key, size: object.size, eTag: object.eTag, lastModified: object.lastModified.toISOString(), state: state.state, lastError: state.lastError };
      options.onProgress?.(++checked, toCheck.length);
    }
  });
  await Promise.all(workers);
  report.undecided = found.filter((o): o is UndecidedObject => o !== undefined).sort((a, b) => a.key.localeCompare(b.key));

  if (options.enqueue) {
    const pace = rateLimiter(options.rate);
    const max = options.max ?? Number.POSITIVE_INFINITY;
    for (const object of report.undecided) {
      if (report.enqueued >= max) break;
      if (object.state === 'failed' && !options.includeFailed) continue;
      await pace();
      await enqueue(target, bucket, object);
      report.enqueued += 1;
    }
  }
  return report;
}

/** Whether an object version (key + ETag) has a decision, only failures, or nothing yet. */
export async function decisionState(
  target: ReconcileTarget,
  bucket: string,
  object: Listed,
): Promise<{ decided: true } | { decided: false; state: UndecidedState; lastError?: string }> {
  const records = (await decisionStoreOf(target).imageHistory(bucket, object.key)).filter((r) => normaliseETag(r.eTag) === object.eTag);
  if (records.some((r) => r.kind !== 'failure')) return { decided: true };
  const failure = records[0];
  return failure ? { decided: false, state: 'failed', lastError: failure.error?.Error ?? failure.reason } : { decided: false, state: 'undecided' };
}

/** S3's sequencer form (hex, grows with time), derived from LastModified so that a re-run gives the same job id. */
export function reconcileSequencer(lastModified: Date): string {
  return (BigInt(lastModified.getTime()) << 16n).toString(16).toUpperCase().padStart(16, '0');
}

/**
 * Sends one object to the intake queue as the notification S3 would have sent for it. Idempotent:
 * the notification is derived from the object, so the same object gives the same job.
 */
export async function enqueue(target: Pick<ReconcileTarget, 's3' | 'sqs' | 'region' | 'names'>, bucket: string, object: Pick<UndecidedObject, 'key' | 'size' | 'eTag' | 'lastModified' | 'enqueued' | 'jobId'>): Promise<void> {
  // In a versioned bucket the job is the version's: the same job id as the lost notification's.
  // Gone since the listing: the pipeline records it as UNUSABLE (object missing) if it is enqueued anyway.
  const head = await objectStoreOf(target).head({ bucket, key: object.key });
  const versionId = head === 'missing' ? undefined : head.versionId;
  const lastModified = new Date(object.lastModified);
  const sequencer = reconcileSequencer(lastModified);
  const notification = buildS3Notification([
    {
      bucket,
      key: object.key,
      size: object.size,
      eTag: object.eTag,
      sequencer,
      ...(versionId ? { versionId } : {}),
      eventName: 'ObjectCreated:Put',
      eventTime: object.lastModified,
      region: target.region,
      configurationId: 'moderation-reconcile',
    },
  ]);
  await target.sqs.send(new SendMessageCommand({ QueueUrl: target.names.intakeQueueUrl, MessageBody: JSON.stringify(notification) }));
  object.enqueued = true;
  object.jobId = jobIdFor({ bucket, key: object.key, versionId, eTag: object.eTag, sequencer });
}
