/**
 * Never pay twice for the same bytes, as a user sees it: `moderation run --json` through the embedded
 * pipeline with the real local detector (nsfwjs). A second run with the same bytes under another name
 * and a re-encoded copy of a rejected sample repeats the earlier decision: the lines carry `reusedFrom`
 * (the earlier job), the summary counts them.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { moderation, ROOT } from './cli.ts';

const work = mkdtempSync(join(tmpdir(), 'moderation-e2e-reuse-'));
const home = join(work, 'home');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('moderation run: repeated bytes', () => {
  it('a second upload of the same bytes, and a re-encoded copy of a rejected image, repeat the decision with reusedFrom', async () => {
    const rejected = join(ROOT, 'samples', 'reject-skin-blobs.jpg');
    const first = join(work, 'first');
    mkdirSync(first);
    copyFileSync(rejected, join(first, 'upload-1.jpg'));
    const one = await moderation(['run', first, '--json', '--home', home]);
    expect(one.code, one.stderr).toBe(0);
    const [original] = jsonLines(one.stdout);
    expect(original).toMatchObject({ status: 'REJECTED', decidedBy: 'rekognition' });
    expect(original!.reusedFrom).toBeUndefined();

    const second = join(work, 'second');
    mkdirSync(second);
    copyFileSync(rejected, join(second, 'upload-2.jpg'));
    writeFileSync(join(second, 'upload-2-q60.jpg'), await sharp(readFileSync(rejected)).jpeg({ quality: 60 }).toBuffer());
    copyFileSync(join(ROOT, 'samples', 'approve-landscape.jpg'), join(second, 'landscape.jpg'));
    const two = await moderation(['run', second, '--json', '--home', home]);
    expect(two.code, two.stderr).toBe(0);
    const lines = jsonLines(two.stdout);
    const summary = lines.pop()!.summary as Record<string, number>;
    const byFile = Object.fromEntries(lines.map((l) => [String(l.key).split('/').pop(), l]));
    expect(byFile['upload-2.jpg']).toMatchObject({ status: 'REJECTED', decidedBy: 'policy', reusedFrom: original!.jobId });
    expect(String(byFile['upload-2.jpg']!.reason)).toMatch(/^the same bytes were decided before under this policy version/);
    expect(byFile['upload-2-q60.jpg']).toMatchObject({ status: 'REJECTED', decidedBy: 'policy', reusedFrom: original!.jobId });
    expect(String(byFile['upload-2-q60.jpg']!.reason)).toMatch(/^near-duplicate of a rejected image \(distance \d+\)/);
    expect(byFile['landscape.jpg']).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition' });
    expect(byFile['landscape.jpg']!.reusedFrom).toBeUndefined();
    expect(summary.reused).toBe(2);
  });
});
