/**
 * `moderation backfill --inventory` against the local stack (issue 11, section 5): the objects come
 * from an S3 Inventory report (a manifest.json and gzip CSV data files, generated here in S3's own
 * format) instead of a listing: the current version of each object under the prefix, keys URL-decoded
 * (a space written `+`), resumable by data file and line; what is decided is skipped. A local
 * manifest reads its data files from beside it. A bad manifest (ORC, not JSON, another bucket, no such
 * file) is one clear error, and nothing is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { decodeS3Key } from '../../functions/lib/s3-event.ts';
import { backfill, checkpointFileFor } from '../../cli/backfill.ts';
import { parseCsvLine } from '../../cli/inventory.ts';
import { queueDepth, waitForIntakeDrain } from '../../cli/dlq.ts';
import { decided, png, recordsOf, startTestStack, upload, type TestStack } from './helpers.ts';
import { moderation } from '../e2e/cli.ts';

const BEFORE = ['uploads/old/a.png', 'uploads/old/b c.png', 'uploads/old/d+e.png', 'uploads/old/f.png'];
const ALREADY = ['uploads/new/x.png'];
const OUTSIDE = 'elsewhere/z.png';
const INVENTORY_BUCKET = 'inventory-reports';
const SCHEMA = 'Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag';

/** A key as S3 Inventory's CSV writes it: URL-encoded, a space as `+`. */
const encodeKey = (key: string) => encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+');
const row = (fields: string[]) => fields.map((f) => `"${f.replace(/"/g, '""')}"`).join(',');

describe('moderation backfill --inventory (local stack)', () => {
  let t: TestStack;
  let quiet = true;
  const home = mkdtempSync(join(tmpdir(), 'moderation-inventory-'));
  const bucket = () => t.target.names.uploadsBucket;
  const manifestKey = 'uploads-bucket/daily/2026-11-02T01-00Z/manifest.json';

  /** Two data files, as S3 Inventory splits a large report; rows the backfill must leave out among them. */
  function dataFiles(): Array<{ key: string; body: Buffer }> {
    const now = new Date().toISOString();
    const current = (key: string, size = '') => row([bucket(), encodeKey(key), '', 'true', 'false', size, size ? now : '', size ? 'f00' : '']);
    const first = [
      current(BEFORE[0]!),
      current(BEFORE[1]!),
      // An older version and a delete marker: not what is served, not moderated.
      row([bucket(), encodeKey('uploads/old/gone-before.png'), '3HL4kqtJlc', 'false', 'false', '10', now, 'abc']),
      row([bucket(), encodeKey('uploads/old/gone-before.png'), '3HL4kqtJld', 'true', 'true', '', '', '']),
      current(OUTSIDE),
    ];
    const second = [current(BEFORE[2]!), current(ALREADY[0]!), current(BEFORE[3]!), current('uploads/old/deleted-since.png')];
    return [
      { key: 'uploads-bucket/daily/data/0001.csv.gz', body: gzipSync(`${first.join('\n')}\n`) },
      { key: 'uploads-bucket/daily/data/0002.csv.gz', body: gzipSync(`${second.join('\n')}\n`) },
    ];
  }

  function manifest(overrides: Record<string, unknown> = {}, files = dataFiles()): string {
    return JSON.stringify({
      sourceBucket: bucket(),
      destinationBucket: `arn:aws:s3:::${INVENTORY_BUCKET}`,
      version: '2016-11-30',
      creationTimestamp: String(Date.now()),
      fileFormat: 'CSV',
      fileSchema: SCHEMA,
      files: files.map((f) => ({ key: f.key, size: f.body.length, MD5checksum: '0'.repeat(32) })),
      ...overrides,
    });
  }

  const put = (key: string, body: string | Buffer) => t.target.s3.send(new PutObjectCommand({ Bucket: INVENTORY_BUCKET, Key: key, Body: body }));

  beforeAll(async () => {
    // Until `quiet` is off, the bucket's notifications are dropped: these objects predate the pipeline.
    const ingest = async (event: SQSEvent) => {
      const { handler } = await import('../../functions/ingest.ts');
      const keep = event.Records.filter((r) => !(quiet && [...BEFORE, OUTSIDE].includes(decodeS3Key(JSON.parse(r.body).Records[0].s3.object.key))));
      return handler({ Records: keep });
    };
    t = await startTestStack({ functions: { ingest } });
    for (const [i, key] of BEFORE.entries()) await upload(t.target, key, await png(700 + i));
    await upload(t.target, OUTSIDE, await png(710));
    await upload(t.target, ALREADY[0]!, await png(720));
    await decided(t.target, ALREADY);
    expect(await waitForIntakeDrain(t.target, 30_000)).toBe(true);
    quiet = false;
    await t.target.s3.send(new CreateBucketCommand({ Bucket: INVENTORY_BUCKET }));
    for (const file of dataFiles()) await put(file.key, file.body);
    await put(manifestKey, manifest());
  }, 90_000);

  afterAll(async () => {
    await t?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('reads S3 Inventory CSV lines: quoted fields, doubled quotes, empty fields', () => {
    expect(parseCsvLine('"b","uploads/a+b%2Bc.png","","true"')).toEqual(['b', 'uploads/a+b%2Bc.png', '', 'true']);
    expect(parseCsvLine('"b","say ""hi""",')).toEqual(['b', 'say "hi"', '']);
  });

  it('an S3 manifest: the current objects under the prefix, decoded keys, stopped after 2 and resumed; each decided once', async () => {
    const inventory = `s3://${INVENTORY_BUCKET}/${manifestKey}`;
    const checkpointFile = checkpointFileFor(home, bucket(), 'uploads/', inventory);
    const first = await backfill(t.target, { prefix: 'uploads/', inventory, rate: 50, max: 2, checkpointFile });
    expect(first).toMatchObject({ inventory, enqueued: 2, complete: false, lastKey: BEFORE[1] });
    expect(existsSync(checkpointFile)).toBe(true);

    const rest = await backfill(t.target, { prefix: 'uploads/', inventory, rate: 50, resume: true, checkpointFile });
    expect(rest.resumedAfter).toBe(BEFORE[1]);
    // d+e.png and f.png sent; x.png decided; deleted-since.png gone (a HEAD found nothing); the older version and the delete marker left out.
    expect(rest).toMatchObject({ enqueued: 2, alreadyDecided: 1, gone: 1, notCurrent: 2, complete: true });
    expect(first.notCurrent! + rest.notCurrent!).toBe(2);
    expect(existsSync(checkpointFile)).toBe(false);

    const records = await decided(t.target, BEFORE);
    expect([...records.keys()].sort()).toEqual([...BEFORE].sort());
    expect(await waitForIntakeDrain(t.target, 30_000)).toBe(true);
    for (const key of BEFORE) expect((await recordsOf(t.target, key)).filter((r) => r.sk === 'DECISION#auto')).toHaveLength(1);
    // Outside the prefix: never sent.
    expect(await recordsOf(t.target, OUTSIDE)).toEqual([]);
  });

  it('a local manifest reads its data files from beside it; the command prints the summary (--json)', async () => {
    const dir = join(home, 'report');
    mkdirSync(join(dir, 'data'), { recursive: true });
    const files = dataFiles().map((f) => ({ ...f, key: `data/${f.key.split('/').at(-1)}` }));
    for (const file of files) writeFileSync(join(dir, file.key), file.body);
    writeFileSync(join(dir, 'manifest.json'), manifest({}, files));
    const out = await moderation(['backfill', '--inventory', join(dir, 'manifest.json'), '--json', '--home', t.home]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    // Everything is decided by now: nothing to send, every current object under the prefix counted.
    expect(JSON.parse(out.stdout)).toMatchObject({ inventory: join(dir, 'manifest.json'), listed: BEFORE.length + ALREADY.length, alreadyDecided: BEFORE.length + ALREADY.length, enqueued: 0, complete: true });
  });

  it.each([
    ['an ORC report', () => manifest({ fileFormat: 'ORC', fileSchema: 'struct<bucket:string,key:string>' }), /is an ORC inventory; only CSV inventories are read/],
    ['a Parquet report', () => manifest({ fileFormat: 'Parquet', fileSchema: 'message s3.inventory { required binary bucket (UTF8); }' }), /is a Parquet inventory; only CSV inventories are read/],
    ['not JSON', () => 'not json', /is not JSON: expected an S3 Inventory manifest\.json/],
    ['no files', () => JSON.stringify({ sourceBucket: bucket(), destinationBucket: 'arn:aws:s3:::x', fileFormat: 'CSV', fileSchema: SCHEMA }), /is not an S3 Inventory manifest: files:/],
    ['another bucket\'s inventory', () => manifest({ sourceBucket: 'someone-elses-bucket' }), /is an inventory of bucket someone-elses-bucket; this pipeline moderates/],
    ['a schema without Key', () => manifest({ fileSchema: 'Bucket, Size' }), /fileSchema has no Key column/],
    ['a data file that is not there', () => manifest({}, [{ key: 'uploads-bucket/daily/data/missing.csv.gz', body: Buffer.alloc(0) }]), /cannot read the data file s3:\/\/inventory-reports\/uploads-bucket\/daily\/data\/missing\.csv\.gz/],
  ])('%s: one clear error, nothing sent', async (what, body, message) => {
    const key = `bad/${Math.random().toString(36).slice(2)}/manifest.json`;
    await put(key, body());
    const before = await queueDepth(t.target, t.target.names.intakeQueueUrl);
    const inventory = `s3://${INVENTORY_BUCKET}/${key}`;
    if (what === 'an ORC report') {
      // Through the binary once: the user sees one line.
      const out = await moderation(['backfill', '--inventory', inventory, '--home', t.home]);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/^error: --inventory: /);
      expect(out.stderr).toMatch(message);
      expect(out.stderr.trim().split('\n')).toHaveLength(1);
    } else {
      await expect(backfill(t.target, { prefix: 'uploads/', inventory, checkpointFile: join(home, 'bad.json') })).rejects.toMatchObject({ name: 'InventoryError', userFacing: true, message: expect.stringMatching(message) });
    }
    expect(existsSync(join(home, 'bad.json'))).toBe(false);
    expect(await queueDepth(t.target, t.target.names.intakeQueueUrl)).toEqual(before);
  });

  it('a manifest that does not exist (in S3 or on disk), and a URI that is not s3://: one clear error', async () => {
    for (const [spec, message] of [
      [`s3://${INVENTORY_BUCKET}/nothing/manifest.json`, /cannot read the manifest s3:\/\/inventory-reports\/nothing\/manifest\.json: no such file/],
      [join(home, 'nowhere', 'manifest.json'), /cannot read the manifest .*nowhere\/manifest\.json: no such file/],
      ['https://example.com/manifest.json', /only s3:\/\/ URIs and local files are read/],
    ] as const) {
      await expect(backfill(t.target, { inventory: spec, checkpointFile: join(home, 'none.json') }), spec).rejects.toMatchObject({ name: 'InventoryError', message: expect.stringMatching(message) });
    }
  });
});
