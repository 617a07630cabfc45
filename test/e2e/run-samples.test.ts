/**
 * The main job, as a user runs it: `moderation run samples` through the whole embedded pipeline
 * (s3rver, local SQS, dynalite, the ASL on aws-local-stepfunctions, the nsfwjs detector), no mocks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { moderation } from './cli.ts';

const home = mkdtempSync(join(tmpdir(), 'moderation-e2e-run-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('moderation run samples', () => {
  it('decides every sample through the local pipeline and exits 0', async () => {
    const result = await moderation(['run', 'samples', '--json', '--home', home]);
    expect(result.code, result.stderr).toBe(0);
    const lines = jsonLines(result.stdout);
    // stdout is for machines: one object per image and the summary, nothing else (no handler logs).
    expect(lines.slice(0, -1).every((l) => typeof l.key === 'string' && typeof l.status === 'string')).toBe(true);
    const summary = lines.pop()!.summary as Record<string, number>;
    const byFile = Object.fromEntries(lines.map((l) => [String(l.key).split('/').pop(), l]));
    expect(byFile['approve-landscape.jpg']).toMatchObject({ status: 'APPROVED', decidedBy: 'rekognition', cached: false });
    expect(byFile['approve-shapes.png']).toMatchObject({ status: 'APPROVED' });
    expect(byFile['borderline-skin-bands.jpg']).toMatchObject({ status: 'REVIEW', decidedBy: 'policy' });
    expect(byFile['reject-skin-blobs.jpg']).toMatchObject({ status: 'REJECTED', decidedBy: 'rekognition' });
    expect(byFile['reject-skin-blobs.jpg']!.topLabel).toBe('Explicit Nudity');
    expect(byFile['broken.jpg']).toMatchObject({ status: 'UNUSABLE' });
    expect(String(byFile['broken.jpg']!.reason).length).toBeGreaterThan(10);
    expect(summary.images).toBe(lines.length);
    expect(summary.cached).toBe(0);
  });

  it('does not decide unchanged files again on a second run with the same data directory', async () => {
    const result = await moderation(['run', 'samples', '--json', '--home', home]);
    expect(result.code, result.stderr).toBe(0);
    const lines = jsonLines(result.stdout);
    const summary = lines.pop()!.summary as Record<string, number>;
    expect(lines.every((l) => l.cached === true)).toBe(true);
    expect(summary.cached).toBe(lines.length);
    expect(lines.find((l) => String(l.key).endsWith('reject-skin-blobs.jpg'))).toMatchObject({ status: 'REJECTED' });
  });

  it('prints a table for people and exits 1 on a usage error', async () => {
    const table = await moderation(['run', 'samples/approve-shapes.png', '--home', home]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^KEY\s+STATUS\s+TOP LABEL\s+CONFIDENCE\s+DECIDED BY/m);
    expect(table.stdout).toMatch(/uploads\/local\/approve-shapes\.png\s+APPROVED/);
    const bad = await moderation(['run', 'samples', '--policy', 'no-such-policy', '--home', home]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/policy file not found: no-such-policy/);
  });
});
