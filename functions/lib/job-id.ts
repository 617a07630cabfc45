/**
 * Job identity. S3 and SQS deliver at least once, so the same upload can arrive several times; the job
 * id is derived from the object version alone, which makes every step downstream idempotent (the
 * record step writes one decision per job id, a Standard execution is named by it).
 */
import { createHash } from 'node:crypto';

export interface ObjectRef {
  bucket: string;
  key: string;
  versionId?: string;
  eTag?: string;
  sequencer?: string;
}

/** Bumped only if the derivation changes; part of the hashed input so old and new ids never collide. */
const SCHEME = 'job/v1';

/**
 * 40 lowercase hex chars of sha256 over the object version: bucket, key and versionId in a versioned
 * bucket; else the ETag (quotes stripped: S3 events omit them, HeadObject includes them) and the event
 * sequencer, which tells apart two uploads of identical bytes to the same key. Fits a Step Functions
 * execution name (80 chars max).
 *
 * versionId 'null' is S3's id for objects written while versioning was off or suspended; every
 * overwrite has it, so it does not identify a version and the ETag + sequencer are used instead.
 */
export function jobIdFor(ref: ObjectRef): string {
  if (!ref.bucket || !ref.key) throw new TypeError('jobIdFor needs a bucket and a key');
  const versionId = ref.versionId && ref.versionId !== 'null' ? ref.versionId : undefined;
  const eTag = ref.eTag?.replace(/^"+|"+$/g, '') || undefined;
  // A JSON array is an unambiguous encoding of the fields: ('a', 'bc') and ('ab', 'c') differ.
  let fields: string[];
  if (versionId) fields = [SCHEME, 'version', ref.bucket, ref.key, versionId];
  else if (eTag) fields = [SCHEME, 'etag', ref.bucket, ref.key, eTag, ref.sequencer ?? ''];
  // Without either, the id would stand for every upload ever made to the key: later uploads would
  // be taken for duplicates and never moderated. Refuse rather than lose them.
  else throw new TypeError(`jobIdFor needs a versionId or an eTag to identify a version of s3://${ref.bucket}/${ref.key}`);
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 40);
}

/**
 * The uploader from a key, given a pattern such as 'uploads/{uploader}/': the pattern must match the
 * start of the key, `{uploader}` matches one non-empty path segment (no '/'), and any other `{name}`
 * placeholder (e.g. 'uploads/{year}/{uploader}/') matches a segment without being captured.
 * Undefined when the key does not match or the pattern has no `{uploader}`.
 */
export function uploaderFromKey(key: string, pattern: string): string | undefined {
  const matcher = compilePattern(pattern);
  return matcher ? (matcher.exec(key)?.groups?.uploader ?? undefined) || undefined : undefined;
}

const compiled = new Map<string, RegExp | undefined>();

function compilePattern(pattern: string): RegExp | undefined {
  if (compiled.has(pattern)) return compiled.get(pattern);
  let regex: RegExp | undefined;
  if (pattern.includes('{uploader}')) {
    let captured = false;
    const source = pattern
      .split(/(\{[A-Za-z0-9_]+\})/)
      .map((part) => {
        if (!/^\{[A-Za-z0-9_]+\}$/.test(part)) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        // Only the first {uploader} is captured; named groups cannot repeat.
        if (part === '{uploader}' && !captured) {
          captured = true;
          return '(?<uploader>[^/]+)';
        }
        return '[^/]+';
      })
      .join('');
    regex = new RegExp(`^${source}`, 'u');
  }
  compiled.set(pattern, regex);
  return regex;
}
