/**
 * The uploads bucket's serving gate, as the local S3 enforces it (the CDK construct's bucket policy
 * does it on AWS; docs/architecture.md, invariant 7): in the moderated prefix an object can be read
 * only by the pipeline until its tag says moderation-status=APPROVED, and only the pipeline may
 * write moderation-* tags. Who is "the pipeline" locally: requests signed with the local stack's own
 * access key (the handlers, the CLI, the console); anyone else (a platform's SDK with its own keys,
 * a presigned URL of theirs, a browser) is gated, so a platform developer sees the 403 before
 * deploying.
 */
import type { IncomingMessage } from 'node:http';
import { PIPELINE_TAG_PREFIX, STATUS_TAG } from '../functions/lib/tags.ts';

export interface ServingGateOptions {
  bucket: string;
  /** The moderated prefix ('' = every key). */
  prefix: string;
  /** Access key ids whose requests are the pipeline's own. */
  pipelineAccessKeys: readonly string[];
}

export type GateVerdict = { allowed: true } | { allowed: false; reason: string };

/** The access key id a request was signed with (header or presigned query), or undefined. */
export function accessKeyOf(req: Pick<IncomingMessage, 'headers' | 'url'>): string | undefined {
  const header = /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '');
  if (header) return header[1];
  const query = /[?&]X-Amz-Credential=([^%&/]+)(?:%2F|\/)/i.exec(req.url ?? '');
  return query ? decodeURIComponent(query[1]!) : undefined;
}

/** Bucket, key and sub-resources of a path-style request. */
export function targetOf(url: string): { bucket: string; key: string; query: URLSearchParams } | undefined {
  const parsed = new URL(url, 'http://local');
  const [, bucket, ...rest] = parsed.pathname.split('/');
  if (!bucket || rest.length === 0) return undefined;
  let key: string;
  try {
    key = decodeURIComponent(rest.join('/'));
  } catch {
    return undefined;
  }
  return key ? { bucket, key, query: parsed.searchParams } : undefined;
}

/** Tag keys a request writes: the x-amz-tagging header (PutObject, CopyObject) or a PutObjectTagging body. */
export function tagKeysWritten(req: Pick<IncomingMessage, 'headers'>, body?: string): string[] {
  const keys: string[] = [];
  const header = req.headers['x-amz-tagging'];
  if (typeof header === 'string') for (const pair of new URLSearchParams(header).keys()) keys.push(pair);
  if (body) for (const match of body.matchAll(/<Key>([^<]*)<\/Key>/g)) keys.push(decodeXml(match[1]!));
  return keys;
}

/** The status tag's value in a stored tagging document (s3rver's XML), if any. */
export function statusTagIn(taggingXml: string | undefined): string | undefined {
  if (!taggingXml) return undefined;
  for (const match of taggingXml.matchAll(/<Tag>\s*<Key>([^<]*)<\/Key>\s*<Value>([^<]*)<\/Value>\s*<\/Tag>/g)) {
    if (decodeXml(match[1]!) === STATUS_TAG) return decodeXml(match[2]!);
  }
  return undefined;
}

/**
 * Whether a request passes the gate. `readStatus` looks up the object's status tag (only called
 * for a read of a moderated object by someone else than the pipeline).
 */
export async function checkServingGate(
  req: Pick<IncomingMessage, 'headers' | 'url' | 'method'>,
  gate: ServingGateOptions,
  readStatus: (bucket: string, key: string) => Promise<string | undefined>,
  body?: string,
): Promise<GateVerdict> {
  const target = targetOf(req.url ?? '/');
  if (!target || target.bucket !== gate.bucket) return { allowed: true };
  const key = accessKeyOf(req);
  if (key !== undefined && gate.pipelineAccessKeys.includes(key)) return { allowed: true };
  const method = (req.method ?? 'GET').toUpperCase();
  // Pipeline tags anywhere in the bucket (as the construct's policy): one staged outside the prefix
  // would arrive with a copy into it.
  const moderated = target.key.startsWith(gate.prefix);
  const subresource = [...target.query.keys()].find((name) => ['tagging', 'acl', 'uploadId', 'uploads', 'versions'].includes(name));

  if (method === 'PUT' || method === 'POST') {
    const forged = tagKeysWritten(req, subresource === 'tagging' ? body : undefined).filter((tag) => tag.startsWith(PIPELINE_TAG_PREFIX));
    if (forged.length) return { allowed: false, reason: `only the moderation pipeline may write ${forged.join(', ')} (tags starting with ${PIPELINE_TAG_PREFIX})` };
    return { allowed: true };
  }
  if ((method === 'GET' || method === 'HEAD') && !subresource && moderated) {
    const status = await readStatus(target.bucket, target.key);
    if (status === 'APPROVED') return { allowed: true };
    return { allowed: false, reason: `not servable until moderated: ${STATUS_TAG} is ${status ?? 'not set yet'} (only APPROVED objects can be read)` };
  }
  return { allowed: true };
}

function decodeXml(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}
