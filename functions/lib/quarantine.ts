/**
 * Where a rejected object goes in the quarantine bucket: `<source bucket>/<key>`, so two buckets'
 * rejects never collide and the key still starts with the uploads prefix (which the apply
 * function's grant is scoped to). S3 keys are at most 1,024 bytes: a key too long for the source
 * bucket's name in front is cut and made unique again with a hash of the whole key.
 */
import { createHash } from 'node:crypto';

const MAX_KEY_BYTES = 1024;

export function quarantineKeyFor(bucket: string, key: string): string {
  const full = `${bucket}/${key}`;
  if (Buffer.byteLength(full) <= MAX_KEY_BYTES) return full;
  const suffix = `~${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
  let head = '';
  for (const character of full) {
    if (Buffer.byteLength(head + character) + suffix.length > MAX_KEY_BYTES) break;
    head += character;
  }
  return head + suffix;
}
