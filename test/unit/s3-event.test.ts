import { describe, expect, it } from 'vitest';
import { jobIdFor } from '../../functions/lib/job-id.ts';
import {
  buildS3Notification,
  deadLetterBody,
  decodeS3Key,
  encodeS3Key,
  MalformedMessageError,
  parseIntakeMessage,
  type IntakeFilter,
} from '../../functions/lib/s3-event.ts';

const NOW = new Date('2026-11-25T10:00:00.000Z');
const filter: IntakeFilter = { uploadsBucket: 'uploads-bucket', uploadsPrefix: 'uploads/', uploaderPattern: 'uploads/{uploader}/', now: () => NOW };

/** A notification as S3 sends it (the documented example shape), key given already encoded. */
function s3Body(encodedKey: string, overrides: { bucket?: string; eventName?: string; versionId?: string } = {}): string {
  return JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-west-2',
        eventTime: '2026-11-25T09:59:58.123Z',
        eventName: overrides.eventName ?? 'ObjectCreated:Put',
        userIdentity: { principalId: 'AWS:AIDAJDPLRKLG7UEXAMPLE' },
        requestParameters: { sourceIPAddress: '172.16.0.1' },
        responseElements: { 'x-amz-request-id': 'C3D13FE58DE4C810', 'x-amz-id-2': 'FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD' },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: 'testConfigRule',
          bucket: { name: overrides.bucket ?? 'uploads-bucket', ownerIdentity: { principalId: 'A3NL1KOZZKExample' }, arn: 'arn:aws:s3:::uploads-bucket' },
          object: {
            key: encodedKey,
            size: 1024,
            eTag: 'd41d8cd98f00b204e9800998ecf8427e',
            ...(overrides.versionId ? { versionId: overrides.versionId } : {}),
            sequencer: '0055AED6DCD90281E5',
          },
        },
      },
    ],
  });
}

function malformed(body: string): MalformedMessageError {
  try {
    parseIntakeMessage(body, filter);
  } catch (error) {
    expect(error).toBeInstanceOf(MalformedMessageError);
    expect((error as Error).name).toBe('MalformedMessage');
    return error as MalformedMessageError;
  }
  throw new Error('expected a MalformedMessageError');
}

describe('S3 key encoding', () => {
  it('decodes + as a space and %2B as a plus', () => {
    expect(decodeS3Key('uploads/alice/my+cat.jpg')).toBe('uploads/alice/my cat.jpg');
    expect(decodeS3Key('uploads/alice/a%2Bb.jpg')).toBe('uploads/alice/a+b.jpg');
    expect(decodeS3Key('uploads/alice/caf%C3%A9+%281%29.jpg')).toBe('uploads/alice/café (1).jpg');
  });

  it('encodes like S3: spaces as +, a plus as %2B, slashes kept, UTF-8 percent-encoded', () => {
    expect(encodeS3Key('uploads/alice/my cat+dog (1).jpg')).toBe('uploads/alice/my+cat%2Bdog+%281%29.jpg');
    expect(encodeS3Key('ünï/ç😀.png')).toBe('%C3%BCn%C3%AF/%C3%A7%F0%9F%98%80.png');
  });

  it('round-trips awkward keys', () => {
    for (const key of ['a b', 'a+b', 'a%2Bb', '100% real!.jpg', "it's ~(*)~.png", 'x/y/z/', 'ünï code 😀/名前.jpg', ' lead and trail ', 'q?a=1&b=2#frag']) {
      expect(decodeS3Key(encodeS3Key(key))).toBe(key);
    }
  });

  it('rejects a malformed percent sequence clearly', () => {
    expect(() => decodeS3Key('bad%ZZkey')).toThrow(MalformedMessageError);
    expect(() => decodeS3Key('bad%ZZkey')).toThrow(/"bad%ZZkey" is not valid URL encoding/);
  });
});

describe('parseIntakeMessage: S3 notifications', () => {
  it('turns an upload into a job', () => {
    const { jobs, skipped } = parseIntakeMessage(s3Body('uploads/alice/my+holiday+photo.jpg'), filter);
    expect(skipped).toEqual([]);
    expect(jobs).toEqual([
      {
        jobId: jobIdFor({ bucket: 'uploads-bucket', key: 'uploads/alice/my holiday photo.jpg', eTag: 'd41d8cd98f00b204e9800998ecf8427e', sequencer: '0055AED6DCD90281E5' }),
        bucket: 'uploads-bucket',
        key: 'uploads/alice/my holiday photo.jpg',
        eTag: 'd41d8cd98f00b204e9800998ecf8427e',
        sequencer: '0055AED6DCD90281E5',
        size: 1024,
        uploader: 'alice',
        eventTime: '2026-11-25T09:59:58.123Z',
        receivedAt: '2026-11-25T10:00:00.000Z',
      },
    ]);
  });

  it('keeps a literal + and unicode in keys', () => {
    const [job] = parseIntakeMessage(s3Body('uploads/b%C3%B8b/1%2B1%3D2+%F0%9F%98%80.jpg'), filter).jobs;
    expect(job.key).toBe('uploads/bøb/1+1=2 😀.jpg');
    expect(job.uploader).toBe('bøb');
  });

  it('uses the versionId when there is one', () => {
    const [job] = parseIntakeMessage(s3Body('uploads/alice/a.jpg', { versionId: '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY' }), filter).jobs;
    expect(job.versionId).toBe('3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY');
    expect(job.jobId).toBe(jobIdFor({ bucket: 'uploads-bucket', key: 'uploads/alice/a.jpg', versionId: '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY' }));
  });

  it('handles 1,000-byte keys through a built notification', () => {
    const key = `uploads/carol/${'é'.repeat(331)}${' +'.repeat(160)}.jpg`; // 2-byte chars, spaces and pluses
    expect(Buffer.byteLength(key)).toBeGreaterThanOrEqual(1000);
    expect(Buffer.byteLength(key)).toBeLessThanOrEqual(1024);
    const body = JSON.stringify(buildS3Notification([{ bucket: 'uploads-bucket', key, size: 1, eTag: 'e', sequencer: 's' }]));
    const [job] = parseIntakeMessage(body, filter).jobs;
    expect(job.key).toBe(key);
    expect(job.uploader).toBe('carol');
  });

  it('skips the test event S3 sends when the notification is set up', () => {
    const body = JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: '2026-11-25T10:00:00.000Z', Bucket: 'uploads-bucket', RequestId: 'X', HostId: 'Y' });
    expect(parseIntakeMessage(body, filter)).toEqual({ jobs: [], skipped: [{ reason: 's3:TestEvent', bucket: 'uploads-bucket' }] });
  });

  it('skips another bucket, keys outside the prefix, and events that are not uploads', () => {
    expect(parseIntakeMessage(s3Body('uploads/a.jpg', { bucket: 'someone-else' }), filter)).toEqual({
      jobs: [],
      skipped: [{ reason: 'bucket someone-else is not the uploads bucket uploads-bucket', bucket: 'someone-else', key: 'uploads/a.jpg' }],
    });
    expect(parseIntakeMessage(s3Body('avatars/a.jpg'), filter).skipped[0]).toMatchObject({ reason: expect.stringContaining('outside the uploads prefix'), key: 'avatars/a.jpg' });
    for (const eventName of ['ObjectRemoved:Delete', 'ObjectTagging:Put', 'ObjectRestore:Completed']) {
      const result = parseIntakeMessage(s3Body('uploads/alice/a.jpg', { eventName }), filter);
      expect(result.jobs).toEqual([]);
      expect(result.skipped[0].reason).toContain(`event ${eventName} is not moderated`);
    }
    // Copy too: a platform that renames by copying must not publish an unmoderated object.
    for (const eventName of ['ObjectCreated:Post', 'ObjectCreated:Copy', 'ObjectCreated:CompleteMultipartUpload']) {
      expect(parseIntakeMessage(s3Body('uploads/alice/a.jpg', { eventName }), filter).jobs).toHaveLength(1);
    }
  });

  it('reads versionId "null" (versioning suspended) as no version: the same job as an unversioned upload', () => {
    const unversioned = parseIntakeMessage(s3Body('uploads/alice/a.jpg'), filter).jobs[0]!;
    const suspended = parseIntakeMessage(s3Body('uploads/alice/a.jpg', { versionId: 'null' }), filter).jobs[0]!;
    expect(suspended.versionId).toBeUndefined();
    expect(suspended.jobId).toBe(unversioned.jobId);
  });

  it('accepts any bucket and key when no filter is set', () => {
    const [job] = parseIntakeMessage(s3Body('x.jpg', { bucket: 'any' }), {}).jobs;
    expect(job).toMatchObject({ bucket: 'any', key: 'x.jpg' });
    expect(job.uploader).toBeUndefined();
  });

  it('handles several records, keeping jobs and skips apart', () => {
    const body = JSON.stringify(
      buildS3Notification([
        { bucket: 'uploads-bucket', key: 'uploads/a/1.jpg', size: 1, eTag: 'e1', sequencer: 's1' },
        { bucket: 'uploads-bucket', key: 'uploads/a/2.jpg', size: 1, eTag: 'e2', sequencer: 's2', eventName: 'ObjectRemoved:Delete' },
        { bucket: 'uploads-bucket', key: 'uploads/a/3.jpg', size: 1, eTag: 'e3', sequencer: 's3', versionId: 'v3' },
      ]),
    );
    const { jobs, skipped } = parseIntakeMessage(body, filter);
    expect(jobs.map((j) => j.key)).toEqual(['uploads/a/1.jpg', 'uploads/a/3.jpg']);
    expect(skipped.map((s) => s.key)).toEqual(['uploads/a/2.jpg']);
  });
});

describe('parseIntakeMessage: malformed bodies', () => {
  it('says the body is not JSON, not a generic SyntaxError', () => {
    const error = malformed('hello <xml>');
    expect(error.message).toMatch(/^message body is not JSON \(.*\): "hello <xml>"$/);
    expect(malformed('').message).toContain('(empty body)');
  });

  it('says what shape it got instead', () => {
    expect(malformed('[1,2]').message).toContain('JSON but not an object');
    expect(malformed('{"hello":"world"}').message).toContain('not an S3 event notification (Records), an s3:TestEvent or a moderationJob replay; top-level keys: hello');
    expect(malformed(JSON.stringify({ Type: 'Notification', TopicArn: 'arn:aws:sns:us-east-1:1:t', Message: s3Body('uploads/a.jpg') })).message).toContain('SNS envelope');
    expect(malformed(JSON.stringify({ version: '0', source: 'aws.s3', 'detail-type': 'Object Created', detail: {} })).message).toContain('EventBridge event (Object Created)');
    expect(malformed(JSON.stringify({ Records: [{ EventSource: 'aws:sns', Sns: { Message: '{}' } }] })).message).toContain('SNS-wrapped');
  });

  it('names the broken field of a record', () => {
    const body = JSON.parse(s3Body('uploads/a.jpg'));
    delete body.Records[0].s3.object.key;
    expect(malformed(JSON.stringify(body)).message).toMatch(/^Records\[0\] is not an S3 event record: s3\.object\.key: /);
    expect(malformed(s3Body('uploads/bad%E0%A4%A.jpg')).message).toContain('is not valid URL encoding');
  });
});

describe('dead-letter body and replay', () => {
  const [job] = parseIntakeMessage(s3Body('uploads/alice/my+cat%2B1.jpg', { versionId: 'v9' }), filter).jobs;
  const error = { Error: 'Rekognition.ThrottlingException', Cause: 'Rate exceeded' };

  it('carries the job, the error, when and where it failed', () => {
    const body = JSON.parse(deadLetterBody(job, error, { executionId: 'arn:aws:states:us-east-1:1:execution:m:x', failedAt: '2026-11-25T10:01:00.000Z' }));
    expect(body).toEqual({ moderationJob: job, error, failedAt: '2026-11-25T10:01:00.000Z', executionId: 'arn:aws:states:us-east-1:1:execution:m:x' });
  });

  it('parses back into the same job (same id, so a replay stays idempotent)', () => {
    const later = new Date('2026-11-26T08:00:00.000Z');
    const { jobs, skipped } = parseIntakeMessage(deadLetterBody(job, error), { ...filter, now: () => later });
    expect(skipped).toEqual([]);
    expect(jobs).toEqual([{ ...job, receivedAt: later.toISOString() }]);
  });

  it('re-validates the job it carries', () => {
    expect(malformed(JSON.stringify({ moderationJob: { ...job, key: 123 } })).message).toMatch(/^moderationJob is not a valid job: moderationJob\.key: /);
    expect(malformed(JSON.stringify({ moderationJob: { ...job, key: 'uploads/alice/other.jpg' } })).message).toMatch(/moderationJob\.jobId .* does not match/);
    const { versionId: _v, eTag: _e, ...unidentified } = job;
    expect(malformed(JSON.stringify({ moderationJob: { ...unidentified, jobId: undefined } })).message).toContain('neither versionId nor eTag');
  });

  it('truncates a huge Cause', () => {
    const body = JSON.parse(deadLetterBody(job, { Error: 'X', Cause: 'y'.repeat(100_000) }, { failedAt: 'now' }));
    expect(body.error.Cause.length).toBeLessThan(10_000);
  });
});
