import { describe, expect, it } from 'vitest';
import { quarantineKeyFor } from '../../functions/lib/quarantine.ts';

describe('quarantineKeyFor', () => {
  it('keeps the source bucket in front of the key', () => {
    expect(quarantineKeyFor('uploads-bucket', 'uploads/alice/a b+c.jpg')).toBe('uploads-bucket/uploads/alice/a b+c.jpg');
  });

  it('fits S3’s 1,024-byte key limit for the longest keys, keeps the prefix, and stays unique', () => {
    const bucket = 'a-bucket-name-of-some-length';
    const long = (tail: string) => `uploads/u/${'ü'.repeat(500)}${tail}`;
    const a = quarantineKeyFor(bucket, long('a.jpg'));
    const b = quarantineKeyFor(bucket, long('b.jpg'));
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(1024);
    expect(a.startsWith(`${bucket}/uploads/u/`)).toBe(true);
    expect(a).not.toBe(b);
    expect(a).not.toContain('\uFFFD');
  });
});
