/**
 * The object store: the uploads and quarantine buckets (S3) as handlers, CLI and console use them.
 * The only code that knows S3's error shapes: which errors mean "the object is gone" (NoSuchKey,
 * NoSuchVersion, a 404 HEAD in a bucket that exists) and which are an operator's problem (NoSuchBucket,
 * AccessDenied), and the only place ETags are normalised and versionId "null" means "no version".
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectTaggingCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { callAws } from '../errors.ts';
import { taggingHeader, type Tag } from '../lib/tags.ts';
import { ObjectUnreadableError } from './errors.ts';
import { normaliseETag, normaliseVersionId } from '../lib/object-identity.ts';

export { normaliseETag, normaliseVersionId } from '../lib/object-identity.ts';

/** One object version. */
export interface ObjectRef {
  bucket: string;
  key: string;
  versionId?: string;
}

export interface ObjectHead {
  size: number;
  /** Without quotes. */
  eTag?: string;
  versionId?: string;
  lastModified?: Date;
  /** User metadata (x-amz-meta-*), keys in lower case. */
  metadata?: Record<string, string>;
}

/** What one GET of an object gives: its head, and its bytes when they were read. */
export interface FetchedObject extends ObjectHead {
  /** The whole object, when it is at most the `maxBytes` asked for (larger bodies are not read). */
  bytes?: Buffer;
}

export interface ListedObject {
  key: string;
  size: number;
  /** Without quotes. */
  eTag: string;
  lastModified: Date;
}

export interface QuarantineCopy {
  quarantineBucket: string;
  quarantineKey: string;
  /** Copy only if the source still has this ETag (unversioned buckets: the bytes that were judged). */
  ifMatch?: string;
  tags: Tag[];
}

/** Restoring a quarantined object to the uploads bucket (a granted appeal). */
export interface RestoreCopy {
  /** Where it goes back to: the uploads bucket and the key it was rejected under. */
  to: { bucket: string; key: string };
  /** The restored object's tags (set by the copy and then written to the new version). */
  tags: Tag[];
  /** Added to the user metadata the quarantine copy has (which is kept, with its content headers). */
  metadata: Record<string, string>;
}

export type RestoreOutcome = { outcome: 'done'; versionId?: string } | { outcome: 'missing' };

/** What happened to an object: done, or why not. */
export type ObjectOutcome = 'done' | 'missing' | 'superseded';

export interface ObjectStore {
  /** The object's size and identity, or 'missing' when that version is gone. */
  head(ref: ObjectRef): Promise<ObjectHead | 'missing'>;
  /** The object's bytes, or a byte range of them (inclusive, as HTTP ranges are). */
  read(ref: ObjectRef, range?: { start: number; end: number }): Promise<Buffer>;
  /**
   * The object's bytes as a stream, for objects too large to hold (an S3 Inventory's data files).
   * A missing object, bucket or permission fails here, before the first byte.
   */
  stream(ref: ObjectRef): Promise<Readable>;
  /**
   * One GET instead of a HEAD and a read: the object's size, identity and metadata, and its bytes when
   * it is at most `maxBytes` long (a larger body is not read); 'missing' when that version is gone.
   */
  fetch(ref: ObjectRef, options: { maxBytes: number }): Promise<FetchedObject | 'missing'>;
  /** The object's tags, or 'missing'. */
  readTags(ref: ObjectRef): Promise<Tag[] | 'missing'>;
  /** Replaces the object's tags. */
  writeTags(ref: ObjectRef, tags: Tag[]): Promise<ObjectOutcome>;
  /** Copies the object into the quarantine bucket with the given tags. */
  copyToQuarantine(ref: ObjectRef, copy: QuarantineCopy): Promise<ObjectOutcome>;
  /**
   * Copies a quarantined object back to the uploads bucket (a new object there: ObjectCreated:Copy),
   * with the given tags and metadata, then deletes the quarantine copy. 'missing' when the quarantine
   * copy is gone. Needs s3:PutObject on the uploads prefix, which only reviewers have (grantReview),
   * never a function (docs/architecture.md, invariant 4).
   */
  restoreFromQuarantine(copy: ObjectRef, restore: RestoreCopy): Promise<RestoreOutcome>;
  /** Deletes that version (or the key, unversioned). */
  delete(ref: ObjectRef): Promise<void>;
  /** Every object under a prefix in key order ("folder" placeholders left out), optionally after a key. */
  list(bucket: string, prefix?: string, options?: { startAfter?: string }): AsyncGenerator<ListedObject>;
}

function lowerCaseKeys(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([key, value]) => [key.toLowerCase(), value]));
}

interface S3LikeError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The object (or that version of it) is gone. A missing bucket is not this. */
export function isObjectGone(err: unknown): boolean {
  const e = (err ?? {}) as S3LikeError;
  const code = e.name ?? e.Code;
  return code === 'NoSuchKey' || code === 'NoSuchVersion';
}

function isPreconditionFailed(err: unknown): boolean {
  const e = (err ?? {}) as S3LikeError;
  return e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412;
}

function statusOf(err: unknown): number | undefined {
  return ((err ?? {}) as S3LikeError).$metadata?.httpStatusCode;
}

/** The S3 request for one object version: versionId "null" left out. */
function target(ref: ObjectRef) {
  const versionId = normaliseVersionId(ref.versionId);
  return { Bucket: ref.bucket, Key: ref.key, ...(versionId ? { VersionId: versionId } : {}) };
}

export class S3ObjectStore implements ObjectStore {
  constructor(private readonly client: S3Client) {}

  async head(ref: ObjectRef): Promise<ObjectHead | 'missing'> {
    try {
      const head = await callAws('S3', () => this.client.send(new HeadObjectCommand(target(ref))));
      return {
        size: head.ContentLength ?? 0,
        eTag: normaliseETag(head.ETag),
        versionId: normaliseVersionId(head.VersionId),
        lastModified: head.LastModified,
        ...(head.Metadata && Object.keys(head.Metadata).length ? { metadata: lowerCaseKeys(head.Metadata) } : {}),
      };
    } catch (err) {
      return this.missingOr(ref, err);
    }
  }

  async read(ref: ObjectRef, range?: { start: number; end: number }): Promise<Buffer> {
    try {
      return await callAws('S3', async () => {
        const out = await this.client.send(new GetObjectCommand({ ...target(ref), Range: range ? `bytes=${range.start}-${range.end}` : undefined }));
        return Buffer.from(await out.Body!.transformToByteArray());
      });
    } catch (err) {
      throw this.unreadable(ref, err);
    }
  }

  async stream(ref: ObjectRef): Promise<Readable> {
    try {
      const out = await callAws('S3', () => this.client.send(new GetObjectCommand(target(ref))));
      // In Node the SDK's body is an http.IncomingMessage (a Readable).
      return out.Body as Readable;
    } catch (err) {
      throw this.unreadable(ref, err);
    }
  }

  async fetch(ref: ObjectRef, options: { maxBytes: number }): Promise<FetchedObject | 'missing'> {
    try {
      return await callAws('S3', async () => {
        const out = await this.client.send(new GetObjectCommand(target(ref)));
        const head: FetchedObject = {
          size: out.ContentLength ?? 0,
          eTag: normaliseETag(out.ETag),
          versionId: normaliseVersionId(out.VersionId),
          lastModified: out.LastModified,
          ...(out.Metadata && Object.keys(out.Metadata).length ? { metadata: lowerCaseKeys(out.Metadata) } : {}),
        };
        if (head.size > options.maxBytes) {
          // Not read: close the connection instead of downloading what nobody will use.
          (out.Body as { destroy?: () => void } | undefined)?.destroy?.();
          return head;
        }
        return { ...head, bytes: Buffer.from(await out.Body!.transformToByteArray()) };
      });
    } catch (err) {
      return this.missingOr(ref, err);
    }
  }

  async readTags(ref: ObjectRef): Promise<Tag[] | 'missing'> {
    try {
      const out = await callAws('S3', () => this.client.send(new GetObjectTaggingCommand(target(ref))));
      return (out.TagSet ?? []).map((tag) => ({ Key: tag.Key ?? '', Value: tag.Value ?? '' }));
    } catch (err) {
      if (isObjectGone(err)) return 'missing';
      throw this.unreadable(ref, err);
    }
  }

  async writeTags(ref: ObjectRef, tags: Tag[]): Promise<ObjectOutcome> {
    try {
      await callAws('S3', () => this.client.send(new PutObjectTaggingCommand({ ...target(ref), Tagging: { TagSet: tags } })));
      return 'done';
    } catch (err) {
      if (isObjectGone(err)) return 'missing';
      throw this.unreadable(ref, err);
    }
  }

  async copyToQuarantine(ref: ObjectRef, copy: QuarantineCopy): Promise<ObjectOutcome> {
    const versionId = normaliseVersionId(ref.versionId);
    const source = `${ref.bucket}/${encodeURIComponent(ref.key).replace(/%2F/g, '/')}${versionId ? `?versionId=${encodeURIComponent(versionId)}` : ''}`;
    try {
      await callAws('S3', () =>
        this.client.send(
          new CopyObjectCommand({
            Bucket: copy.quarantineBucket,
            Key: copy.quarantineKey,
            CopySource: source,
            CopySourceIfMatch: copy.ifMatch,
            TaggingDirective: 'REPLACE',
            Tagging: taggingHeader(copy.tags),
            MetadataDirective: 'COPY',
          }),
        ),
      );
      return 'done';
    } catch (err) {
      if (isPreconditionFailed(err)) return 'superseded';
      if (isObjectGone(err)) return 'missing';
      throw this.unreadable(ref, err);
    }
  }

  async restoreFromQuarantine(copy: ObjectRef, restore: RestoreCopy): Promise<RestoreOutcome> {
    let head;
    try {
      head = await callAws('S3', () => this.client.send(new HeadObjectCommand(target(copy))));
    } catch (err) {
      await this.missingOr(copy, err);
      return { outcome: 'missing' };
    }
    const versionId = normaliseVersionId(copy.versionId);
    const source = `${copy.bucket}/${encodeURIComponent(copy.key).replace(/%2F/g, '/')}${versionId ? `?versionId=${encodeURIComponent(versionId)}` : ''}`;
    let copied;
    try {
      copied = await callAws('S3', () =>
        this.client.send(
          new CopyObjectCommand({
            Bucket: restore.to.bucket,
            Key: restore.to.key,
            CopySource: source,
            TaggingDirective: 'REPLACE',
            Tagging: taggingHeader(restore.tags),
            // REPLACE so the restore mark can be added: the quarantine copy's metadata and content headers carry over.
            MetadataDirective: 'REPLACE',
            Metadata: { ...lowerCaseKeys(head.Metadata ?? {}), ...restore.metadata },
            ContentType: head.ContentType,
            CacheControl: head.CacheControl,
            ContentDisposition: head.ContentDisposition,
            ContentEncoding: head.ContentEncoding,
            ContentLanguage: head.ContentLanguage,
          }),
        ),
      );
    } catch (err) {
      if (isObjectGone(err)) return { outcome: 'missing' };
      throw this.unreadable(copy, err);
    }
    const restored = { bucket: restore.to.bucket, key: restore.to.key, versionId: normaliseVersionId(copied.VersionId) };
    // The copy's Tagging is not honoured by every S3 implementation: write the tags to the new version too.
    await callAws('S3', () => this.client.send(new PutObjectTaggingCommand({ ...target(restored), Tagging: { TagSet: restore.tags } })));
    await this.delete(copy);
    return { outcome: 'done', ...(restored.versionId ? { versionId: restored.versionId } : {}) };
  }

  async delete(ref: ObjectRef): Promise<void> {
    await callAws('S3', () => this.client.send(new DeleteObjectCommand(target(ref))));
  }

  async *list(bucket: string, prefix?: string, options: { startAfter?: string } = {}): AsyncGenerator<ListedObject> {
    let token: string | undefined;
    do {
      const page = await callAws('S3', () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token, StartAfter: token ? undefined : options.startAfter }),
        ),
      ).catch((err: unknown) => {
        throw this.unreadable({ bucket, key: prefix ?? '' }, err);
      });
      for (const object of page.Contents ?? []) {
        if (!object.Key || object.Key.endsWith('/')) continue;
        yield { key: object.Key, size: object.Size ?? 0, eTag: normaliseETag(object.ETag) ?? '', lastModified: object.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * A HEAD has no error body, so a 404 may be a missing key or a missing bucket: ask the bucket. Only
   * a missing object is 'missing'; a missing or forbidden bucket is an operator's problem.
   */
  private async missingOr(ref: ObjectRef, err: unknown): Promise<'missing'> {
    if (isObjectGone(err)) return 'missing';
    const name = ((err ?? {}) as S3LikeError).name;
    if (name === 'NotFound' || statusOf(err) === 404) {
      try {
        await callAws('S3', () => this.client.send(new HeadBucketCommand({ Bucket: ref.bucket })));
      } catch (bucketErr) {
        throw this.unreadable(ref, bucketErr);
      }
      return 'missing';
    }
    throw this.unreadable(ref, err);
  }

  /** NoSuchBucket and AccessDenied become ObjectUnreadable (recorded FAILED, dead-lettered); others pass through. */
  private unreadable(ref: ObjectRef, err: unknown): unknown {
    if (isObjectGone(err)) return err;
    const e = (err ?? {}) as S3LikeError;
    const name = e.name ?? e.Code ?? '';
    const status = statusOf(err);
    if (name === 'NoSuchBucket' || name === 'NotFound' || status === 404) {
      return new ObjectUnreadableError(`bucket ${ref.bucket} does not exist (s3://${ref.bucket}/${ref.key})`, { cause: err });
    }
    if (name === 'AccessDenied' || name === 'Forbidden' || status === 403) {
      return new ObjectUnreadableError(`access denied to s3://${ref.bucket}/${ref.key}: check the function's role and the bucket's key policy`, { cause: err });
    }
    return err;
  }
}
