import { describe, expect, it } from 'vitest';
import { jobIdFor, uploaderFromKey } from '../../functions/lib/job-id.ts';

describe('jobIdFor', () => {
  const base = { bucket: 'uploads', key: 'uploads/alice/cat.jpg' };

  it('is 40 lowercase hex chars and stable for the same object version', () => {
    const id = jobIdFor({ ...base, versionId: 'v1' });
    expect(id).toMatch(/^[0-9a-f]{40}$/);
    expect(jobIdFor({ ...base, versionId: 'v1', eTag: 'ignored-when-versioned' })).toBe(id);
  });

  it('differs per version, per key and per bucket', () => {
    const id = jobIdFor({ ...base, versionId: 'v1' });
    expect(jobIdFor({ ...base, versionId: 'v2' })).not.toBe(id);
    expect(jobIdFor({ ...base, key: 'uploads/alice/dog.jpg', versionId: 'v1' })).not.toBe(id);
    expect(jobIdFor({ ...base, bucket: 'other', versionId: 'v1' })).not.toBe(id);
  });

  it('uses eTag (quotes stripped) + sequencer when unversioned', () => {
    const id = jobIdFor({ ...base, eTag: 'abc123', sequencer: '0055AED6DCD90281E5' });
    expect(jobIdFor({ ...base, eTag: '"abc123"', sequencer: '0055AED6DCD90281E5' })).toBe(id);
    // The same bytes uploaded again to the same key: a new sequencer, a new job.
    expect(jobIdFor({ ...base, eTag: 'abc123', sequencer: '0055AED6DCD90281F0' })).not.toBe(id);
    expect(jobIdFor({ ...base, eTag: 'abc124', sequencer: '0055AED6DCD90281E5' })).not.toBe(id);
  });

  it("treats versionId 'null' (unversioned or suspended) as no version", () => {
    const unversioned = jobIdFor({ ...base, eTag: 'e1', sequencer: 's1' });
    expect(jobIdFor({ ...base, versionId: 'null', eTag: 'e1', sequencer: 's1' })).toBe(unversioned);
  });

  it('separates fields unambiguously', () => {
    expect(jobIdFor({ bucket: 'a', key: 'bc', versionId: 'v' })).not.toBe(jobIdFor({ bucket: 'ab', key: 'c', versionId: 'v' }));
    expect(jobIdFor({ bucket: 'b', key: 'k', eTag: 'e1', sequencer: '23' })).not.toBe(jobIdFor({ bucket: 'b', key: 'k', eTag: 'e12', sequencer: '3' }));
    // A versionId that looks like an eTag never collides with the eTag form.
    expect(jobIdFor({ bucket: 'b', key: 'k', versionId: 'e1' })).not.toBe(jobIdFor({ bucket: 'b', key: 'k', eTag: 'e1', sequencer: '' }));
  });

  it('refuses an object reference that identifies no version', () => {
    expect(() => jobIdFor({ bucket: 'b', key: 'k' })).toThrow(/versionId or an eTag/);
  });
});

describe('uploaderFromKey', () => {
  it('takes one path segment at the placeholder', () => {
    expect(uploaderFromKey('uploads/alice/2026/cat.jpg', 'uploads/{uploader}/')).toBe('alice');
    expect(uploaderFromKey('uploads/bob smith/x.png', 'uploads/{uploader}/')).toBe('bob smith');
    expect(uploaderFromKey('media/2026/carol/x.png', 'media/{year}/{uploader}/')).toBe('carol');
  });

  it('is undefined when the key does not match', () => {
    expect(uploaderFromKey('uploads/cat.jpg', 'uploads/{uploader}/')).toBeUndefined();
    expect(uploaderFromKey('uploads//cat.jpg', 'uploads/{uploader}/')).toBeUndefined();
    expect(uploaderFromKey('other/alice/cat.jpg', 'uploads/{uploader}/')).toBeUndefined();
    expect(uploaderFromKey('xuploads/alice/cat.jpg', 'uploads/{uploader}/')).toBeUndefined();
    expect(uploaderFromKey('uploads/alice/cat.jpg', 'uploads/')).toBeUndefined();
  });

  it('treats the rest of the pattern literally', () => {
    expect(uploaderFromKey('u.p/alice/x', 'u.p/{uploader}/')).toBe('alice');
    expect(uploaderFromKey('uXp/alice/x', 'u.p/{uploader}/')).toBeUndefined();
  });
});
