/**
 * Object tags in the local S3 as S3 keeps them. s3rver stores a tag set beside the object and leaves
 * it there when the object is replaced, and ignores tags sent with the object (`x-amz-tagging` on
 * PutObject, CopyObject's TaggingDirective). Locally that meant an overwritten upload kept the last
 * upload's `moderation-status=APPROVED`, so the serving gate served bytes nobody had judged yet, and
 * the uploader's own tags and a quarantine copy's tags were lost. Here:
 *
 * - every object written (PUT, form POST, copy, completed multipart upload) starts with no tags, as a
 *   new object in S3 does (resetTagsOnWrite, at the store: the one place objects are written). The
 *   old tags go before the first byte is written: s3rver writes over the object's file in place, so
 *   an upload cut short leaves part of the new bytes, which must not be served under the old status;
 * - PutObject keeps the tags of its `x-amz-tagging`, CopyObject those of its `x-amz-tagging` with
 *   `x-amz-tagging-directive: REPLACE`, else the source's (tagsMiddleware), before the response is sent;
 * - a tag set S3 would refuse (more than 10 tags, a key over 128 or a value over 256 characters, a
 *   character outside S3's set, an `aws:` key, a key twice) is refused with S3's InvalidTag before
 *   anything is written (invalidTaggingHeader).
 *
 * Not done: tags given to CreateMultipartUpload are not kept (the completed object has none), and
 * `x-amz-tagging` in a presigned URL's query string is ignored (S3 has long been reported to need it
 * as a signed header).
 */
import type { IncomingMessage } from 'node:http';
import { escapeXml } from './net.ts';

export interface Tag {
  Key: string;
  Value: string;
}

/** What of s3rver's store this needs (its FilesystemStore, confined to the data directory). */
export interface TaggableStore {
  putObject(object: { bucket: string; key: string }): Promise<unknown>;
  copyObject(srcBucket: string, srcKey: string, destBucket: string, destKey: string, replacementMetadata?: unknown): Promise<unknown>;
  getSubresource(bucket: string, key: string, type: string): Promise<TaggingResource | null>;
  putSubresource(bucket: string, key: string, resource: TaggingResource): Promise<void>;
  deleteSubresource(bucket: string, key: string, type: string): Promise<void>;
}

const MAX_TAGS = 10;
const MAX_KEY_CHARS = 128;
const MAX_VALUE_CHARS = 256;
/** What S3 allows in a tag: letters and digits (any script), spaces, and + - = . _ : / @. */
const TAG_CHARACTERS = /^[\p{L}\p{N}\p{Zs}+\-=._:/@]*$/u;

/** Parses `x-amz-tagging` (URL query encoding); throws InvalidTaggingError for what S3 refuses. */
export function parseTaggingHeader(header: string): Tag[] {
  const tags: Tag[] = [];
  for (const [Key, Value] of new URLSearchParams(header)) {
    // S3 counts characters (code points), not UTF-16 units.
    const keyChars = [...Key].length;
    if (!keyChars || keyChars > MAX_KEY_CHARS || !TAG_CHARACTERS.test(Key)) throw new InvalidTaggingError(`The TagKey you have provided is invalid: ${JSON.stringify(Key.slice(0, 40))}`);
    if (Key.toLowerCase().startsWith('aws:')) throw new InvalidTaggingError(`Your TagKey cannot be prefixed with aws: ${JSON.stringify(Key.slice(0, 40))}`);
    if ([...Value].length > MAX_VALUE_CHARS) throw new InvalidTaggingError(`The TagValue you have provided is too long (${[...Value].length} characters, at most ${MAX_VALUE_CHARS})`);
    if (!TAG_CHARACTERS.test(Value)) throw new InvalidTaggingError(`The TagValue you have provided is invalid: ${JSON.stringify(Value.slice(0, 40))}`);
    if (tags.some((tag) => tag.Key === Key)) throw new InvalidTaggingError(`Cannot provide multiple Tags with the same key: ${JSON.stringify(Key)}`);
    tags.push({ Key, Value });
  }
  if (tags.length > MAX_TAGS) throw new InvalidTaggingError(`Object tags cannot be greater than ${MAX_TAGS}`);
  return tags;
}

export class InvalidTaggingError extends Error {
  override name = 'InvalidTag';
}

/** The reason S3 would refuse a write's `x-amz-tagging`; undefined when there is none, it is fine, or the request writes nothing. */
export function invalidTaggingHeader(req: Pick<IncomingMessage, 'headers' | 'method'>): string | undefined {
  const header = req.headers['x-amz-tagging'];
  const method = (req.method ?? '').toUpperCase();
  if (typeof header !== 'string' || (method !== 'PUT' && method !== 'POST')) return undefined;
  try {
    parseTaggingHeader(header);
    return undefined;
  } catch (error) {
    if (error instanceof InvalidTaggingError) return error.message;
    throw error;
  }
}

/** A tag set as s3rver's store keeps it (its TaggingConfiguration has this shape). */
interface TaggingResource {
  type: string;
  toXML(): string;
}

function taggingResource(tags: Tag[]): TaggingResource {
  const xml = `<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>${tags
    .map((tag) => `<Tag><Key>${escapeXml(tag.Key)}</Key><Value>${escapeXml(tag.Value)}</Value></Tag>`)
    .join('')}</TagSet></Tagging>`;
  return { type: 'tagging', toXML: () => xml };
}

/**
 * Every object the store writes starts without tags: a new object in S3 has only the tags its request
 * gives. (s3rver writes form uploads and completed multipart uploads through putObject too.)
 */
export function resetTagsOnWrite(store: TaggableStore): void {
  const putObject = store.putObject.bind(store);
  const copyObject = store.copyObject.bind(store);
  const clear = (bucket: string, key: string) => store.deleteSubresource(bucket, key, 'tagging');
  store.putObject = async (object) => {
    await clear(object.bucket, object.key);
    return putObject(object);
  };
  store.copyObject = async (srcBucket, srcKey, destBucket, destKey, replacementMetadata) => {
    await clear(destBucket, destKey);
    return copyObject(srcBucket, srcKey, destBucket, destKey, replacementMetadata);
  };
}

interface KoaContext {
  req: IncomingMessage;
  status: number;
}

/**
 * The object an `x-amz-copy-source` names, read as s3rver reads it (decodeURI of the whole header,
 * after local/s3.ts has re-encoded it): a '?' in a key is part of the key.
 */
export function copySourceObject(header: string): { bucket: string; key: string } | undefined {
  return objectOf(header, decodeURI);
}

/** The bucket and key of a path-style object URL (`/bucket/key`); undefined for a bucket or the service. */
function objectOf(path: string, decode: (text: string) => string): { bucket: string; key: string } | undefined {
  let text: string;
  try {
    text = decode(path.replace(/^\/+/, ''));
  } catch {
    return undefined;
  }
  const slash = text.indexOf('/');
  if (slash <= 0 || slash === text.length - 1) return undefined;
  return { bucket: text.slice(0, slash), key: text.slice(slash + 1) };
}

/** Query parameters that make a PUT to an object something other than writing the object. */
const NOT_AN_OBJECT_WRITE = ['tagging', 'acl', 'uploadId', 'partNumber', 'retention', 'legal-hold'];

/**
 * The koa middleware (outermost in s3rver's chain) that writes the tags a PutObject or CopyObject
 * asks for once s3rver has written the object, before the response leaves: a client that reads the
 * tags right after its upload sees them.
 */
export function tagsMiddleware(store: TaggableStore) {
  return async (ctx: KoaContext, next: () => Promise<void>): Promise<void> => {
    const { req } = ctx;
    const [path = '', query = ''] = (req.url ?? '/').split('?', 2);
    const params = new URLSearchParams(query);
    const target = (req.method ?? '').toUpperCase() === 'PUT' && !NOT_AN_OBJECT_WRITE.some((name) => params.has(name)) ? objectOf(path, decodeURIComponent) : undefined;
    if (!target) return next();
    const header = req.headers['x-amz-tagging'];
    const copySource = req.headers['x-amz-copy-source'];
    const given = typeof header === 'string' ? parseTaggingHeader(header) : [];
    let tagging: TaggingResource | null = given.length ? taggingResource(given) : null;
    if (typeof copySource === 'string' && String(req.headers['x-amz-tagging-directive'] ?? 'COPY').toUpperCase() !== 'REPLACE') {
      // Read before the copy: copying an object onto itself resets its tags.
      const source = copySourceObject(copySource);
      tagging = source ? await store.getSubresource(source.bucket, source.key, 'tagging').catch(() => null) : null;
    }
    await next();
    if (ctx.status >= 200 && ctx.status < 300 && tagging) await store.putSubresource(target.bucket, target.key, tagging);
  };
}
