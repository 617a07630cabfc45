/**
 * The intake queue's messages: S3 event notifications (what the bucket sends), S3's test event (sent
 * once when a notification is configured), and the pipeline's own dead-letter body (what the fail path
 * writes, so an operator can replay it by sending it back to the intake queue).
 *
 * Keys in S3 notifications are URL-encoded form-style: a space is '+', a literal '+' is '%2B'.
 */
import { z } from 'zod';
import type { Job } from './types.ts';
import { MalformedMessageError } from './errors.ts';
import { jobIdFor, uploaderFromKey } from './job-id.ts';
import { asDeadLetterEnvelope } from './dead-letter.ts';
import { normaliseETag, normaliseVersionId } from './object-identity.ts';

export { MalformedMessageError } from './errors.ts';
export { deadLetterBody } from './dead-letter.ts';

/**
 * Every way new content lands in the bucket. Copy is included: a platform that renames by copying
 * must not publish an unmoderated object. Applying a decision cannot loop: it writes only tags (no
 * event) and copies into the quarantine bucket, whose events never reach the intake queue.
 */
export const MODERATED_EVENT_NAMES: readonly string[] = [
  'ObjectCreated:Put',
  'ObjectCreated:Post',
  'ObjectCreated:Copy',
  'ObjectCreated:CompleteMultipartUpload',
];

export interface IntakeFilter {
  /** Only this bucket's records become jobs (unset: any bucket). */
  uploadsBucket?: string;
  /** Only keys under this prefix become jobs (unset or '': any key). */
  uploadsPrefix?: string;
  /** e.g. 'uploads/{uploader}/', see uploaderFromKey. */
  uploaderPattern?: string;
  /** The clock for receivedAt (tests pin it). */
  now?: () => Date;
}

export interface IntakeMessage {
  jobs: Job[];
  /** Records deliberately not moderated, with why: logged, never silently dropped. */
  skipped: Array<{ reason: string; bucket?: string; key?: string }>;
}

// ---------------------------------------------------------------------------------------------------
// Keys

/** An S3 notification key to the object key: '+' is a space, then percent-decoding ('%2B' is '+'). */
export function decodeS3Key(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '));
  } catch {
    throw new MalformedMessageError(`object key ${JSON.stringify(encoded)} is not valid URL encoding (a stray '%'?)`);
  }
}

/**
 * An object key as S3 writes it into a notification: form-style URL encoding (like Java's URLEncoder:
 * letters, digits and '.-*_' kept, space as '+', everything else UTF-8 percent-encoded), except that
 * '/' is kept. decodeS3Key(encodeS3Key(key)) === key for every key.
 */
export function encodeS3Key(key: string): string {
  return encodeURIComponent(key)
    .replace(/[!'()~]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+')
    .replace(/%2F/g, '/');
}

// ---------------------------------------------------------------------------------------------------
// The S3 notification shape (event structure version 2.1)

export interface S3EventRecord {
  eventVersion: string;
  eventSource: 'aws:s3';
  awsRegion: string;
  eventTime: string;
  eventName: string;
  userIdentity: { principalId: string };
  requestParameters: { sourceIPAddress: string };
  responseElements: { 'x-amz-request-id': string; 'x-amz-id-2': string };
  s3: {
    s3SchemaVersion: '1.0';
    configurationId: string;
    bucket: { name: string; ownerIdentity: { principalId: string }; arn: string };
    object: { key: string; size: number; eTag: string; versionId?: string; sequencer: string };
  };
}

export interface S3EventNotification {
  Records: S3EventRecord[];
}

export interface NotificationObject {
  bucket: string;
  key: string;
  size: number;
  eTag: string;
  sequencer: string;
  versionId?: string;
  eventName?: string;
  eventTime?: string;
  region?: string;
  configurationId?: string;
}

/**
 * A notification exactly as S3 would send it for these objects (keys URL-encoded). The local runtime
 * forwards its emulator's events through this, so the ingest handler only ever sees the real shape.
 */
export function buildS3Notification(objects: readonly NotificationObject[]): S3EventNotification {
  return {
    Records: objects.map((object) => {
      const record: S3EventRecord = {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: object.region ?? 'us-east-1',
        eventTime: object.eventTime ?? new Date().toISOString(),
        eventName: object.eventName ?? 'ObjectCreated:Put',
        userIdentity: { principalId: 'AWS:LOCAL' },
        requestParameters: { sourceIPAddress: '127.0.0.1' },
        responseElements: { 'x-amz-request-id': object.sequencer, 'x-amz-id-2': object.sequencer },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: object.configurationId ?? 'moderation-intake',
          bucket: { name: object.bucket, ownerIdentity: { principalId: 'LOCAL' }, arn: `arn:aws:s3:::${object.bucket}` },
          object: { key: encodeS3Key(object.key), size: object.size, eTag: object.eTag, sequencer: object.sequencer },
        },
      };
      // S3 only includes versionId for versioned buckets: absent, not null or ''.
      if (object.versionId) record.s3.object.versionId = object.versionId;
      return record;
    }),
  };
}

// ---------------------------------------------------------------------------------------------------
// Parsing

const S3RecordSchema = z.looseObject({
  eventSource: z.literal('aws:s3'),
  eventName: z.string().min(1),
  eventTime: z.string().min(1),
  s3: z.looseObject({
    bucket: z.looseObject({ name: z.string().min(1) }),
    object: z.looseObject({
      key: z.string().min(1),
      size: z.number().nonnegative().optional(),
      eTag: z.string().optional(),
      versionId: z.string().optional(),
      sequencer: z.string().optional(),
    }),
  }),
});

const JobSchema = z.object({
  jobId: z.string().regex(/^[0-9a-f]{40}$/, 'must be 40 lowercase hex characters').optional(),
  bucket: z.string().min(1),
  key: z.string().min(1),
  versionId: z.string().min(1).optional(),
  eTag: z.string().min(1).optional(),
  sequencer: z.string().optional(),
  size: z.number().nonnegative().optional(),
  uploader: z.string().min(1).optional(),
  eventTime: z.string().min(1),
  receivedAt: z.string().optional(),
});

/**
 * The jobs in one intake message. Throws MalformedMessageError for a body that is not JSON or not a
 * known shape (retrying cannot fix it); records that are valid but not for this pipeline (another
 * bucket, outside the prefix, not an upload) are returned in `skipped` with the reason.
 */
export function parseIntakeMessage(body: string, filter: IntakeFilter = {}): IntakeMessage {
  let message: unknown;
  try {
    message = JSON.parse(body);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new MalformedMessageError(`message body is not JSON (${detail}): ${preview(body)}`);
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw new MalformedMessageError(`message body is JSON but not an object: ${preview(body)}`);
  }
  const receivedAt = (filter.now ?? (() => new Date()))().toISOString();
  const envelope = message as Record<string, unknown>;

  if (envelope.Event === 's3:TestEvent') {
    const bucket = typeof envelope.Bucket === 'string' ? envelope.Bucket : undefined;
    return { jobs: [], skipped: [{ reason: 's3:TestEvent', ...(bucket ? { bucket } : {}) }] };
  }
  const replay = asDeadLetterEnvelope(envelope);
  if (replay) return parseReplay(replay.moderationJob, filter, receivedAt);
  if (Array.isArray(envelope.Records)) {
    const result: IntakeMessage = { jobs: [], skipped: [] };
    envelope.Records.forEach((record, index) => addRecord(result, record, index, filter, receivedAt));
    return result;
  }

  throw new MalformedMessageError(unknownShape(envelope));
}

function addRecord(result: IntakeMessage, record: unknown, index: number, filter: IntakeFilter, receivedAt: string): void {
  const where = `Records[${index}]`;
  const wrapped = record as { EventSource?: unknown; Sns?: unknown } | null;
  if (wrapped && (wrapped.EventSource === 'aws:sns' || wrapped.Sns !== undefined)) {
    throw new MalformedMessageError(
      `${where} is an SNS-wrapped notification, which is not supported: subscribe the queue with raw message delivery or notify the queue from the bucket directly`,
    );
  }
  const parsed = S3RecordSchema.safeParse(record);
  if (!parsed.success) throw new MalformedMessageError(`${where} is not an S3 event record: ${zodSummary(parsed.error)}`);

  const { eventName, eventTime, s3 } = parsed.data;
  const bucket = s3.bucket.name;
  const key = decodeS3Key(s3.object.key);

  if (!MODERATED_EVENT_NAMES.includes(eventName)) {
    result.skipped.push({ reason: `event ${eventName} is not moderated (only ${MODERATED_EVENT_NAMES.join(', ')})`, bucket, key });
    return;
  }
  const outside = outsideReason(bucket, key, filter);
  if (outside) {
    result.skipped.push({ reason: outside, bucket, key });
    return;
  }
  const { sequencer, size } = s3.object;
  const versionId = normaliseVersionId(s3.object.versionId);
  const eTag = normaliseETag(s3.object.eTag);
  if (!versionId && !eTag) {
    throw new MalformedMessageError(`${where}.s3.object has neither versionId nor eTag, so the upload cannot be identified`);
  }
  result.jobs.push(
    makeJob({ bucket, key, versionId, eTag, sequencer, size, eventTime, receivedAt }, filter.uploaderPattern),
  );
}

function parseReplay(value: unknown, filter: IntakeFilter, receivedAt: string): IntakeMessage {
  const parsed = JobSchema.safeParse(value);
  if (!parsed.success) throw new MalformedMessageError(`moderationJob is not a valid job: ${zodSummary(parsed.error, 'moderationJob')}`);
  const job = { ...parsed.data, versionId: normaliseVersionId(parsed.data.versionId) };
  const eTag = normaliseETag(job.eTag);
  if (!job.versionId && !eTag) {
    throw new MalformedMessageError('moderationJob has neither versionId nor eTag, so the upload cannot be identified');
  }
  // The id is derived, never trusted: a body edited to point at another object must not be recorded
  // under the original object's job id (or vice versa).
  const expected = jobIdFor({ bucket: job.bucket, key: job.key, versionId: job.versionId, eTag, sequencer: job.sequencer });
  if (job.jobId !== undefined && job.jobId !== expected) {
    throw new MalformedMessageError(
      `moderationJob.jobId ${job.jobId} does not match s3://${job.bucket}/${job.key} at that version (expected ${expected})`,
    );
  }
  const outside = outsideReason(job.bucket, job.key, filter);
  if (outside) return { jobs: [], skipped: [{ reason: outside, bucket: job.bucket, key: job.key }] };

  const replayed = makeJob(
    { bucket: job.bucket, key: job.key, versionId: job.versionId, eTag, sequencer: job.sequencer, size: job.size, eventTime: job.eventTime, receivedAt },
    filter.uploaderPattern,
  );
  // Keep the uploader the job was accepted with, even if the pattern has changed since.
  if (job.uploader) replayed.uploader = job.uploader;
  return { jobs: [replayed], skipped: [] };
}

interface JobFields {
  bucket: string;
  key: string;
  versionId?: string;
  eTag?: string;
  sequencer?: string;
  size?: number;
  eventTime: string;
  receivedAt: string;
}

/** A Job with absent fields left out (not undefined), so it marshals cleanly to JSON and DynamoDB. */
function makeJob(fields: JobFields, uploaderPattern: string | undefined): Job {
  const uploader = uploaderPattern ? uploaderFromKey(fields.key, uploaderPattern) : undefined;
  return {
    jobId: jobIdFor(fields),
    bucket: fields.bucket,
    key: fields.key,
    ...(fields.versionId ? { versionId: fields.versionId } : {}),
    ...(fields.eTag ? { eTag: fields.eTag } : {}),
    ...(fields.sequencer ? { sequencer: fields.sequencer } : {}),
    ...(fields.size !== undefined ? { size: fields.size } : {}),
    ...(uploader ? { uploader } : {}),
    eventTime: fields.eventTime,
    receivedAt: fields.receivedAt,
  };
}

function outsideReason(bucket: string, key: string, filter: IntakeFilter): string | undefined {
  if (filter.uploadsBucket && bucket !== filter.uploadsBucket) {
    return `bucket ${bucket} is not the uploads bucket ${filter.uploadsBucket}`;
  }
  if (filter.uploadsPrefix && !key.startsWith(filter.uploadsPrefix)) {
    return `key is outside the uploads prefix ${JSON.stringify(filter.uploadsPrefix)}`;
  }
  return undefined;
}

/** Says what the body looks like instead, for the shapes people most often wire up by mistake. */
function unknownShape(envelope: Record<string, unknown>): string {
  if (envelope.Type === 'Notification' && 'TopicArn' in envelope) {
    return 'message body is an SNS envelope, which is not supported: enable raw message delivery on the subscription or notify the queue from the bucket directly';
  }
  if ('detail-type' in envelope && 'detail' in envelope) {
    return `message body is an EventBridge event (${String(envelope['detail-type'])}), which is not supported: send the bucket's notifications to the queue directly`;
  }
  const keys = Object.keys(envelope).slice(0, 8).join(', ') || 'none';
  return `message body is not an S3 event notification (Records), an s3:TestEvent or a moderationJob replay; top-level keys: ${keys}`;
}

function zodSummary(error: z.ZodError, root?: string): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => {
      const path = [root, ...issue.path.map(String)].filter(Boolean).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

function preview(body: string): string {
  const oneLine = body.replace(/\s+/g, ' ').trim();
  if (!oneLine) return '(empty body)';
  return oneLine.length > 80 ? `${JSON.stringify(oneLine.slice(0, 80))}...` : JSON.stringify(oneLine);
}
