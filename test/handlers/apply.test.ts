/** The apply step is idempotent, keeps the uploader's tags, and never touches a newer upload. */
import { beforeAll, describe, expect, it } from 'vitest';
import { fakeS3 } from '../statemachine/fakes.ts';
import type { ModerationState } from '../../functions/lib/types.ts';

Object.assign(process.env, {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  QUARANTINE_BUCKET: 'quarantine',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
});

const s3 = fakeS3();
let apply: (state: ModerationState) => Promise<ModerationState>;
beforeAll(async () => {
  apply = (await import('../../functions/apply.ts')).handler;
});

function state(key: string, eTag: string, status: 'APPROVED' | 'REJECTED'): ModerationState {
  const now = new Date().toISOString();
  return {
    job: { jobId: 'a'.repeat(40), bucket: 'uploads', key, eTag, eventTime: now, receivedAt: now },
    decision: { status, decidedBy: 'rekognition', decidedAt: now, duplicate: false },
  };
}

describe('apply', () => {
  it('quarantines a rejected object once; a second run finds it done', async () => {
    const stored = s3.put('uploads', 'uploads/u/a.jpg', Buffer.from('jpeg'));
    const first = await apply(state('uploads/u/a.jpg', stored.eTag, 'REJECTED'));
    expect(first.applied).toMatchObject({ action: 'quarantined', quarantineKey: 'uploads/uploads/u/a.jpg' });
    expect(s3.get('uploads', 'uploads/u/a.jpg')).toBeUndefined();
    expect(s3.get('quarantine', 'uploads/uploads/u/a.jpg')?.tags).toContainEqual({ Key: 'moderation-status', Value: 'REJECTED' });
    const second = await apply(state('uploads/u/a.jpg', stored.eTag, 'REJECTED'));
    expect(second.applied).toMatchObject({ action: 'quarantined', detail: 'already quarantined' });
  });

  it('tags an approved object and keeps the tags the uploader set', async () => {
    const stored = s3.put('uploads', 'uploads/u/b.jpg', Buffer.from('jpeg'));
    stored.tags = [{ Key: 'album', Value: 'holiday' }];
    await apply(state('uploads/u/b.jpg', stored.eTag, 'APPROVED'));
    await apply(state('uploads/u/b.jpg', stored.eTag, 'APPROVED'));
    expect(s3.get('uploads', 'uploads/u/b.jpg')?.tags).toEqual([
      { Key: 'album', Value: 'holiday' },
      { Key: 'moderation-status', Value: 'APPROVED' },
      { Key: 'moderation-job', Value: 'a'.repeat(40) },
    ]);
  });

  it('does not quarantine a newer upload that replaced the rejected one', async () => {
    s3.put('uploads', 'uploads/u/c.jpg', Buffer.from('newer content'));
    const result = await apply(state('uploads/u/c.jpg', '"etag-of-the-rejected-version"', 'REJECTED'));
    expect(result.applied?.action).toBe('skipped');
    expect(s3.get('uploads', 'uploads/u/c.jpg')).toBeDefined();
    expect(s3.get('quarantine', 'uploads/uploads/u/c.jpg')).toBeUndefined();
  });

  it('skips an object deleted before the decision was applied', async () => {
    const result = await apply(state('uploads/u/gone.jpg', '"x"', 'APPROVED'));
    expect(result.applied).toMatchObject({ action: 'skipped', detail: 'object deleted before the decision was applied' });
  });
});
