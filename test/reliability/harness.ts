/**
 * The reliability harness: drives the embedded local stack (local/stack.ts) the way an upload
 * platform and the world around it would (bursts, duplicate deliveries, bad files, a throttling
 * detector, a crash), then counts what the durable stores say happened to every object version.
 *
 * The count (countOutcomes) is the evidence for docs/architecture.md, invariant 1. For each object version
 * the scenario put in (key + ETag), the history is read with the byImage index (one Query per image)
 * and the dead-letter queue is read without consuming it:
 *
 *   decision      an automated decision (sk DECISION#auto) for that ETag: APPROVED, REJECTED, REVIEW, UNUSABLE
 *   FAILED        no decision, a FAILURE# record, and the job's message in the DLQ (replayable)
 *   decided twice more than one automated decision for the same key + ETag (the job id makes a
 *                 duplicate delivery write nothing, so this must stay 0)
 *   lost          neither a decision nor FAILED-and-in-the-DLQ
 *
 * A decision counts as terminal once it is in the table (that is what an auditor reads and what
 * the record step makes unique); whether the object was then tagged or quarantined (the apply step)
 * is checked separately (`unapplied`), because a crash can fall between the two.
 */
import '../../local/polyfills.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { arch, cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { localClientConfig, startLocalStack, type LocalStack, type LocalStackOptions } from '../../local/stack.ts';
import { startDetectorEndpoint, type DetectorEndpoint, type DetectorStats, type DetectRequest } from '../../local/detector/server.ts';
import { detectorError } from '../../local/detector/server.ts';
import { InvalidImageError, type ClassScores } from '../../local/detector/classifier.ts';
import { buildS3Notification } from '../../functions/lib/s3-event.ts';
import { DynamoDecisionStore } from '../../functions/store/decision-store.ts';
import { AUTO_DECISION_SK } from '../../functions/store/table-schema.ts';
import { STATUS_TAG } from '../../functions/lib/tags.ts';
import { createSequencer } from '../../local/s3.ts';
import { verdictFromRed, type Verdict } from './images.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// ---------------------------------------------------------------------------------------------------
// The fake classifier and the throttling detector

/** nsfwjs class probabilities that the standard policy turns into each verdict (see local/detector/mapping.ts). */
export const SCORES: Record<Verdict, ClassScores> = {
  // Explicit ≈ 0: no label.
  APPROVE: { Drawing: 0.01, Hentai: 0, Neutral: 0.98, Porn: 0.005, Sexy: 0.005 },
  // Porn 0.75 → Explicit 60%: at or above review (50), under reject (80).
  BORDERLINE: { Drawing: 0, Hentai: 0, Neutral: 0.25, Porn: 0.75, Sexy: 0 },
  // Porn 0.95 → Explicit 92.7%: reject.
  REJECT: { Drawing: 0, Hentai: 0, Neutral: 0.05, Porn: 0.95, Sexy: 0 },
};

export type Classify = (image: Buffer) => Promise<ClassScores>;

/**
 * A fast stand-in for the nsfwjs classifier: it decodes the image like the real one (sharp,
 * failOn 'error', so corrupt files still fail as InvalidImageFormatException) but reads the verdict
 * from the image's mean red channel instead of running a model. `delayMs` emulates the service's
 * latency (Rekognition answers in roughly 100-500 ms).
 */
export function fakeClassifier(options: { delayMs?: number; verdict?: Verdict } = {}): Classify {
  return async (image) => {
    let data: Buffer;
    try {
      ({ data } = await sharp(image, { failOn: 'error', limitInputPixels: 10_000 * 10_000, pages: 1 })
        .resize(1, 1, { fit: 'fill' })
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true }));
    } catch (err) {
      throw new InvalidImageError('Request has invalid image format', { cause: err });
    }
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    return SCORES[options.verdict ?? verdictFromRed(data[0]!)];
  };
}

export interface RateLimiter {
  fault: (request: DetectRequest) => Error | undefined;
  stats(): {
    admitted: number;
    throttled: number;
    byError: Record<string, number>;
    firstAdmittedAt?: number;
    lastAdmittedAt?: number;
    admittedAt: number[];
    /** The most times one image (S3 key) was throttled (Detect retries Throttled MaxAttempts times, then FAILED). */
    maxThrottledPerImage: number;
  };
}

/**
 * A detector quota of `perSecond` requests per second: a token bucket holding one second's worth
 * (as AWS quotas allow short bursts), refilled continuously. A request over the quota is answered
 * with Rekognition's own throttling errors, alternately ThrottlingException (HTTP 500 in its API
 * model) and ProvisionedThroughputExceededException (HTTP 400).
 */
export function rateLimiter(perSecond: number, errors = ['ThrottlingException', 'ProvisionedThroughputExceededException']): RateLimiter {
  const capacity = Math.max(1, perSecond);
  let tokens = capacity;
  let last = performance.now();
  let admitted = 0;
  let throttled = 0;
  let firstAdmittedAt: number | undefined;
  let lastAdmittedAt: number | undefined;
  const byError: Record<string, number> = {};
  const admittedAt: number[] = [];
  const perKey = new Map<string, number>();
  return {
    fault: (request) => {
      const now = performance.now();
      tokens = Math.min(capacity, tokens + ((now - last) / 1000) * perSecond);
      last = now;
      if (tokens >= 1) {
        tokens -= 1;
        admitted++;
        firstAdmittedAt ??= Date.now();
        lastAdmittedAt = Date.now();
        admittedAt.push(lastAdmittedAt);
        return undefined;
      }
      const key = request.Image?.S3Object?.Name ?? '(bytes)';
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      const name = errors[throttled++ % errors.length]!;
      byError[name] = (byError[name] ?? 0) + 1;
      return detectorError(name);
    },
    stats: () => ({ admitted, throttled, byError: { ...byError }, firstAdmittedAt, lastAdmittedAt, admittedAt: [...admittedAt], maxThrottledPerImage: Math.max(0, ...perKey.values()) }),
  };
}

// ---------------------------------------------------------------------------------------------------
// A stack per scenario

export interface HarnessOptions {
  /** Data directory; default a new temporary one (removed at stop unless keepHome). */
  home?: string;
  keepHome?: boolean;
  /** 'fake' (default): fakeClassifier(); 'nsfwjs': the real local detector (model in worker threads). */
  detector?: 'fake' | 'nsfwjs';
  classify?: Classify;
  classifyDelayMs?: number;
  fault?: (request: DetectRequest) => Error | undefined;
  contextualReview?: { modelId: string };
  pollerConcurrency?: number;
  batchSize?: number;
  visibilityTimeoutSeconds?: number;
  retryIntervalOverrides?: LocalStackOptions['retryIntervalOverrides'];
  policy?: string;
  quiet?: boolean;
}

export interface Harness {
  stack: LocalStack;
  home: string;
  s3: S3Client;
  sqs: SQSClient;
  db: DynamoDBDocumentClient;
  detector(): DetectorStats;
  /** Stops the stack gracefully and removes a temporary home. */
  stop(): Promise<void>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const home = options.home ?? mkdtempSync(join(tmpdir(), 'moderation-reliability-'));
  const temporary = !options.home && !options.keepHome;
  let detector: DetectorEndpoint | undefined;
  const classify = options.detector === 'nsfwjs' ? undefined : (options.classify ?? fakeClassifier({ delayMs: options.classifyDelayMs }));
  // The handlers log every job at INFO; the scenarios print tables, not logs.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  const stack = await startLocalStack({
    home,
    quiet: options.quiet ?? true,
    policy: options.policy ?? 'standard',
    contextualReview: options.contextualReview,
    pollerConcurrency: options.pollerConcurrency,
    batchSize: options.batchSize,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
    retryIntervalOverrides: options.retryIntervalOverrides,
    // The harness stages objects with CopyObject and plays S3's part itself (stageObject): the
    // bucket must not also announce those copies, as it does for a platform's renames.
    notifiedEvents: ['ObjectCreated:Put', 'ObjectCreated:Post', 'ObjectCreated:CompleteMultipartUpload'],
    detector: {
      start: async (o) => {
        detector = await startDetectorEndpoint({ ...o, classify, fault: options.fault });
        return detector;
      },
    },
  });
  const config = localClientConfig(stack);
  const s3 = new S3Client(config.s3);
  const sqs = new SQSClient(config.sqs);
  const db = DynamoDBDocumentClient.from(new DynamoDBClient(config.dynamodb), { marshallOptions: { removeUndefinedValues: true } });
  return {
    stack,
    home,
    s3,
    sqs,
    db,
    detector: () => detector!.stats(),
    stop: async () => {
      s3.destroy();
      sqs.destroy();
      db.destroy();
      await stack.stop();
      if (temporary) rmSync(home, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Putting objects in

export interface ObjectIn {
  key: string;
  eTag: string;
  size: number;
  /** ms since the epoch, when the PUT (or the notification, for staged objects) went out. */
  sentAt: number;
  /** What the scenario expects, for its own assertions (not used by the count). */
  expect?: string;
  /** The object was removed again before it was moderated (its decision is about a missing object). */
  deleted?: boolean;
}

export interface Upload {
  key: string;
  body: Buffer;
  contentType?: string;
  expect?: string;
}

export const stripQuotes = (eTag?: string) => (eTag ?? '').replace(/"/g, '');

/** PutObject each upload (the bucket's notification starts moderation), `concurrency` at a time, at most `perSecond`. */
export async function putObjects(h: Harness, uploads: Upload[], options: { concurrency?: number; perSecond?: number } = {}): Promise<ObjectIn[]> {
  const out: ObjectIn[] = new Array(uploads.length);
  const started = Date.now();
  let next = 0;
  const workers = Array.from({ length: Math.min(options.concurrency ?? 16, uploads.length) }, async () => {
    while (next < uploads.length) {
      const index = next++;
      if (options.perSecond) {
        const due = started + (index * 1000) / options.perSecond;
        if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
      }
      const u = uploads[index]!;
      const sentAt = Date.now();
      const put = await h.s3.send(
        new PutObjectCommand({ Bucket: h.stack.names.uploadsBucket, Key: u.key, Body: u.body, ContentType: u.contentType ?? 'image/jpeg' }),
      );
      out[index] = { key: u.key, eTag: stripQuotes(put.ETag), size: u.body.length, sentAt, expect: u.expect };
    }
  });
  await Promise.all(workers);
  return out;
}

/**
 * Stores an object under `key` without the bucket notifying the queue (PutObject outside the
 * uploads prefix, then CopyObject, which the notification excludes), and returns the S3 event
 * notification the bucket would have sent for a Put of it: the scenario delivers that itself
 * (several times, late, or after deleting the object).
 */
export async function stageObject(h: Harness, upload: Upload, sequencer: () => string): Promise<{ object: ObjectIn; notification: string }> {
  const bucket = h.stack.names.uploadsBucket;
  const staging = `staging/${randomUUID()}`;
  await h.s3.send(new PutObjectCommand({ Bucket: bucket, Key: staging, Body: upload.body, ContentType: upload.contentType ?? 'image/jpeg' }));
  const copySource = `${bucket}/${staging}`;
  await h.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: upload.key, CopySource: copySource, MetadataDirective: 'COPY' }));
  await h.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: staging }));
  const head = await h.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: upload.key }));
  const eTag = stripQuotes(head.ETag);
  const notification = buildS3Notification([
    { bucket, key: upload.key, size: head.ContentLength ?? upload.body.length, eTag, sequencer: sequencer(), eventName: 'ObjectCreated:Put', region: h.stack.region },
  ]);
  return {
    object: { key: upload.key, eTag, size: head.ContentLength ?? upload.body.length, sentAt: Date.now(), expect: upload.expect },
    notification: JSON.stringify(notification),
  };
}

/**
 * Many objects stored without notifications (PutObject outside the prefix, CopyObject in), with the
 * S3 event notification of each: `deliverNotifications` then plays the part of S3 delivering them.
 */
export async function stageObjects(h: Harness, uploads: Upload[], options: { concurrency?: number } = {}): Promise<Array<{ object: ObjectIn; notification: string }>> {
  const bucket = h.stack.names.uploadsBucket;
  const sequencer = createSequencer();
  const out: Array<{ object: ObjectIn; notification: string }> = new Array(uploads.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(options.concurrency ?? 16, uploads.length) }, async () => {
      while (next < uploads.length) {
        const index = next++;
        const u = uploads[index]!;
        const staging = `staging/${index}-${randomUUID()}`;
        const put = await h.s3.send(new PutObjectCommand({ Bucket: bucket, Key: staging, Body: u.body, ContentType: u.contentType ?? 'image/jpeg' }));
        await h.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: u.key, CopySource: `${bucket}/${staging}`, MetadataDirective: 'COPY' }));
        const eTag = stripQuotes(put.ETag);
        const notification = buildS3Notification([
          { bucket, key: u.key, size: u.body.length, eTag, sequencer: sequencer(), eventName: 'ObjectCreated:Put', region: h.stack.region },
        ]);
        out[index] = { object: { key: u.key, eTag, size: u.body.length, sentAt: 0, expect: u.expect }, notification: JSON.stringify(notification) };
      }
    }),
  );
  return out;
}

/** Sends the notifications to the intake queue at `perSecond` (in batches of up to 10), stamping each object's sentAt. */
export async function deliverNotifications(h: Harness, staged: Array<{ object: ObjectIn; notification: string }>, perSecond: number): Promise<ObjectIn[]> {
  const started = Date.now();
  const batch = Math.max(1, Math.min(10, Math.round(perSecond / 10)));
  for (let i = 0; i < staged.length; i += batch) {
    const due = started + (i * 1000) / perSecond;
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    const chunk = staged.slice(i, i + batch);
    const sentAt = Date.now();
    await sendToIntake(h, chunk.map((s) => s.notification));
    for (const s of chunk) s.object.sentAt = sentAt;
  }
  return staged.map((s) => s.object);
}

export { createSequencer };

/** Sends message bodies to the intake queue (10 per request), in the order given. */
export async function sendToIntake(h: Harness, bodies: string[]): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    const chunk = bodies.slice(i, i + 10);
    const out = await h.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: h.stack.names.intakeQueueUrl, Entries: chunk.map((body, j) => ({ Id: String(j), MessageBody: body })) }),
    );
    if (out.Failed?.length) throw new Error(`could not send to the intake queue: ${out.Failed[0]!.Message}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Waiting

async function queueDepth(h: Harness, queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const { Attributes = {} } = await h.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return { visible: Number(Attributes.ApproximateNumberOfMessages ?? 0), inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

/**
 * Resolves when the pipeline has nothing left to do: every notification delivered, the intake
 * queue empty (nothing visible, nothing in flight or waiting for a retry), no batch or execution
 * running, for `quietMs` in a row. Late duplicates are therefore processed before anything is counted.
 */
export async function settle(h: Harness, options: { timeoutMs?: number; quietMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const quietMs = options.quietMs ?? 400;
  let quietSince: number | undefined;
  for (;;) {
    await h.stack.services.s3.flush();
    const depth = await queueDepth(h, h.stack.names.intakeQueueUrl);
    const busy = depth.visible + depth.inFlight > 0 || h.stack.services.poller.stats().inFlightBatches > 0 || h.stack.services.stepFunctions.running() > 0;
    if (busy) quietSince = undefined;
    else {
      quietSince ??= Date.now();
      if (Date.now() - quietSince >= quietMs) return;
    }
    if (Date.now() > deadline) throw new Error(`the pipeline did not settle within ${options.timeoutMs ?? 120_000} ms (intake ${JSON.stringify(depth)})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// ---------------------------------------------------------------------------------------------------
// Counting

export const DECISION_STATUSES = ['APPROVED', 'REJECTED', 'REVIEW', 'UNUSABLE'] as const;
export type TerminalStatus = (typeof DECISION_STATUSES)[number] | 'FAILED';

export interface DeadLetter {
  body: string;
  errorName?: string;
  job?: { bucket: string; key: string; eTag?: string; jobId?: string };
}

/** Everything in the dead-letter queue, read without consuming it (made visible again afterwards). */
export async function readDeadLetters(h: Harness): Promise<DeadLetter[]> {
  const url = h.stack.names.deadLetterQueueUrl;
  const seen: Message[] = [];
  for (;;) {
    const { Messages = [] } = await h.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60, MessageAttributeNames: ['All'] }),
    );
    if (!Messages.length) break;
    seen.push(...Messages);
  }
  for (let i = 0; i < seen.length; i += 10) {
    const chunk = seen.slice(i, i + 10);
    await h.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: url,
        Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })),
      }),
    );
  }
  return seen.map((m) => {
    let job: DeadLetter['job'];
    try {
      const parsed = JSON.parse(m.Body ?? '') as { moderationJob?: DeadLetter['job'] };
      job = parsed.moderationJob;
    } catch {
      // A malformed intake message parked by ingest: not about an object.
    }
    return { body: m.Body ?? '', errorName: m.MessageAttributes?.errorName?.StringValue, job };
  });
}

export interface DecisionItem {
  pk: string;
  sk: string;
  jobId: string;
  key: string;
  eTag?: string;
  status: string;
  decidedAt: string;
  decidedBy: string;
  reason: string;
  error?: { Error?: string };
  executionId?: string;
}

export interface ObjectOutcome extends ObjectIn {
  terminal?: TerminalStatus;
  /** Automated decisions for this key + ETag (must be at most 1). */
  decisions: DecisionItem[];
  failures: DecisionItem[];
  inDeadLetterQueue: boolean;
  lost: boolean;
  /** The decision (or failure) record that made it terminal. */
  record?: DecisionItem;
  /** The decision is in the table but not enforced on the object (no status tag / not quarantined). */
  unapplied?: string;
}

export interface Counts {
  objectsIn: number;
  decisions: Record<(typeof DECISION_STATUSES)[number], number>;
  failed: number;
  inDlq: number;
  decidedTwice: number;
  lost: number;
  unapplied?: number;
}

export interface ScenarioResult {
  scenario: string;
  counts: Counts;
  /** Scenario-specific figures (throughput, retries, ...), printed beside the table. */
  figures: Record<string, string | number>;
  /** The same as numbers, for assertions. */
  metrics?: Record<string, number>;
  /** Individual checks that passed or failed, with what was seen. */
  checks: Array<{ name: string; ok: boolean; detail: string }>;
  outcomes?: ObjectOutcome[];
  seconds: number;
}

/** Every record of one image, through the decision store (the byImage index holds keys only). */
async function historyOf(h: Pick<Harness, 'db' | 'stack'>, key: string): Promise<DecisionItem[]> {
  const store = new DynamoDecisionStore({ client: h.db, tableName: h.stack.names.decisionTable, statusShards: h.stack.names.statusShards });
  return (await store.imageHistory(h.stack.names.uploadsBucket, key)) as unknown as DecisionItem[];
}

/**
 * The count: one byImage Query per object, the DLQ read once. `checkApplied` also looks at each
 * decided object in S3 (tag, or moved to quarantine).
 */
export async function countOutcomes(
  h: Harness,
  objects: ObjectIn[],
  options: { checkApplied?: boolean; concurrency?: number } = {},
): Promise<{ counts: Counts; outcomes: ObjectOutcome[]; deadLetters: DeadLetter[] }> {
  const deadLetters = await readDeadLetters(h);
  const dlqJobs = new Set(deadLetters.filter((d) => d.job).map((d) => `${d.job!.key}\u0000${stripQuotes(d.job!.eTag)}`));
  const outcomes: ObjectOutcome[] = new Array(objects.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency ?? 8 }, async () => {
      while (next < objects.length) {
        const index = next++;
        const object = objects[index]!;
        const history = (await historyOf(h, object.key)).filter((item) => stripQuotes(item.eTag) === object.eTag);
        const decisions = history.filter((item) => item.sk === AUTO_DECISION_SK);
        const failures = history.filter((item) => item.sk.startsWith('FAILURE#'));
        const inDeadLetterQueue = dlqJobs.has(`${object.key}\u0000${object.eTag}`);
        const outcome: ObjectOutcome = { ...object, decisions, failures, inDeadLetterQueue, lost: false };
        if (decisions.length) {
          outcome.terminal = decisions[0]!.status as TerminalStatus;
          outcome.record = decisions[0];
        } else if (failures.length && inDeadLetterQueue) {
          outcome.terminal = 'FAILED';
          outcome.record = failures[0];
        } else {
          outcome.lost = true;
        }
        if (options.checkApplied && outcome.terminal && outcome.terminal !== 'FAILED' && !object.deleted) {
          outcome.unapplied = await notApplied(h, object, outcome.terminal);
        }
        outcomes[index] = outcome;
      }
    }),
  );
  const decisions = Object.fromEntries(DECISION_STATUSES.map((s) => [s, outcomes.filter((o) => o.terminal === s).length])) as Counts['decisions'];
  const counts: Counts = {
    objectsIn: objects.length,
    decisions,
    failed: outcomes.filter((o) => o.terminal === 'FAILED').length,
    inDlq: deadLetters.length,
    decidedTwice: outcomes.filter((o) => o.decisions.length > 1).length,
    lost: outcomes.filter((o) => o.lost).length,
  };
  if (options.checkApplied) counts.unapplied = outcomes.filter((o) => o.unapplied).length;
  return { counts, outcomes, deadLetters };
}

/** Why a decided object does not show its decision in S3, or undefined when it does. */
async function notApplied(h: Harness, object: ObjectIn, status: TerminalStatus): Promise<string | undefined> {
  const { uploadsBucket, quarantineBucket } = h.stack.names;
  const missing = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404;
  if (status === 'REJECTED') {
    try {
      const head = await h.s3.send(new HeadObjectCommand({ Bucket: uploadsBucket, Key: object.key }));
      if (stripQuotes(head.ETag) === object.eTag) return 'REJECTED but still in the uploads bucket';
    } catch (err) {
      if (!missing(err)) throw err;
    }
    try {
      await h.s3.send(new HeadObjectCommand({ Bucket: quarantineBucket, Key: `${uploadsBucket}/${object.key}` }));
    } catch (err) {
      if (missing(err)) return 'REJECTED but not in the quarantine bucket';
      throw err;
    }
    return undefined;
  }
  try {
    const { TagSet = [] } = await h.s3.send(new GetObjectTaggingCommand({ Bucket: uploadsBucket, Key: object.key }));
    const tag = TagSet.find((t) => t.Key === STATUS_TAG)?.Value;
    return tag === status ? undefined : `decided ${status}, tagged ${tag ?? '(no status tag)'}`;
  } catch (err) {
    if (missing(err)) return undefined; // deleted since: nothing left to tag
    throw err;
  }
}

/** Executions per job id (the local Step Functions endpoint's history: names are `<jobId>-<suffix>`). */
export function executionsPerJob(h: Harness): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of h.stack.services.stepFunctions.executions()) {
    const jobId = e.name.slice(0, 40);
    counts.set(jobId, (counts.get(jobId) ?? 0) + 1);
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------------
// Reporting

export function machine(): Record<string, string> {
  const list = cpus();
  return {
    cpu: `${list.length} × ${list[0]?.model?.trim() ?? 'unknown'}`,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
  };
}

const COLUMNS = ['scenario', 'objects in', 'APPROVED', 'REJECTED', 'REVIEW', 'UNUSABLE', 'FAILED', 'in DLQ', 'decided twice', 'lost'] as const;

export function tableRow(result: ScenarioResult): string[] {
  const c = result.counts;
  return [
    result.scenario,
    String(c.objectsIn),
    String(c.decisions.APPROVED),
    String(c.decisions.REJECTED),
    String(c.decisions.REVIEW),
    String(c.decisions.UNUSABLE),
    String(c.failed),
    String(c.inDlq),
    String(c.decidedTwice),
    String(c.lost),
  ];
}

/** A Markdown table (it reads as plain text too). */
export function renderTable(results: ScenarioResult[]): string {
  const rows = [COLUMNS as unknown as string[], ...results.map(tableRow)];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join('\n');
}

export function renderFigures(result: ScenarioResult): string {
  const lines = [`${result.scenario} (${result.seconds.toFixed(1)} s):`];
  for (const [name, value] of Object.entries(result.figures)) lines.push(`  ${name}: ${value}`);
  for (const check of result.checks) lines.push(`  [${check.ok ? 'ok' : 'FAIL'}] ${check.name}: ${check.detail}`);
  return lines.join('\n');
}

export function check(result: ScenarioResult, name: string, ok: boolean, detail: string): void {
  result.checks.push({ name, ok, detail });
}
