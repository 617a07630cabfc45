/**
 * `moderation policy validate|what-if`: a candidate policy replayed over the stored labels of recent
 * decisions (functions/lib/what-if.ts), through the real binary against a local stack.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../functions/lib/policy.ts';
import { policyStatusOf, whatIf } from '../../functions/lib/what-if.ts';
import type { Decision } from '../../functions/lib/types.ts';
import { decided, png, startTestStack, upload, type TestStack } from './helpers.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');

function decision(labels: Decision['labels'], status: Decision['status'], decidedBy = 'rekognition'): Decision {
  return { kind: 'automated', jobId: `j${Math.random()}`, bucket: 'b', key: `uploads/u/${status}.jpg`, status, decidedBy, decidedAt: '2026-11-30T00:00:00.000Z', labels, timings: {}, estimatedCostUsd: 0 };
}
const explicit = (confidence: number) => [{ name: 'Explicit', parentName: '', level: 1 as const, confidence }];
const swimwear = (confidence: number) => [{ name: 'Swimwear or Underwear', parentName: '', level: 1 as const, confidence }];

describe('what-if (pure)', () => {
  it('counts what a stricter policy changes, by transition and category; leaves out human and unusable records', () => {
    const records = [
      decision(explicit(60), 'REVIEW'),
      decision(explicit(95), 'REJECTED'),
      decision(swimwear(85), 'APPROVED'),
      decision([], 'APPROVED'),
      decision(explicit(60), 'APPROVED', 'bedrock:amazon.nova-lite-v1:0'),
      decision([], 'UNUSABLE', 'policy'),
      { ...decision(explicit(60), 'APPROVED', 'human:dana'), kind: 'human' as const },
    ];
    const report = whatIf(records, resolvePolicy('strict'));
    // strict: Explicit reject 50, Swimwear reject 80. The LLM-decided one was REVIEW on the policy's side.
    expect(report).toMatchObject({ examined: 5, skipped: 2, changed: 3, llmDecidedBefore: 0 });
    expect(report.transitions).toEqual({ 'REVIEW→REJECTED': 2, 'APPROVED→REJECTED': 1 });
    expect(report.byCategory).toEqual({
      Explicit: { changed: 2, toRejected: 2, toReview: 0, toApproved: 0 },
      'Swimwear or Underwear': { changed: 1, toRejected: 1, toReview: 0, toApproved: 0 },
    });
  });

  it('the policy part of a decision: an LLM decision on a borderline image is REVIEW', () => {
    expect(policyStatusOf({ status: 'APPROVED', decidedBy: 'bedrock:x' })).toBe('REVIEW');
    expect(policyStatusOf({ status: 'UNUSABLE', decidedBy: 'policy' })).toBeUndefined();
  });

  it('warns when the candidate looks below the labels that were stored', () => {
    const report = whatIf([decision(explicit(60), 'REVIEW')], resolvePolicy('strict'), { storedMinConfidence: 50 });
    expect(report.notes.join(' ')).toMatch(/never recorded/);
  });
});

describe('moderation policy (binary, local stack)', () => {
  let t: TestStack;
  beforeAll(async () => {
    t = await startTestStack();
    await upload(t.target, 'uploads/ann/borderline-1.png', await png(701));
    await upload(t.target, 'uploads/ann/fine-1.png', await png(702));
    await decided(t.target, ['uploads/ann/borderline-1.png', 'uploads/ann/fine-1.png']);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('what-if: the strict preset would reject what the standard one held for review', async () => {
    const { stdout } = await run(process.execPath, ['bin/moderation.js', 'policy', 'what-if', 'strict', '--home', t.home, '--since', '1h', '--json'], { cwd: ROOT });
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({ examined: 2, changed: 1, transitions: { 'REVIEW→REJECTED': 1 } });
    expect(report.changes[0]).toMatchObject({ key: 'uploads/ann/borderline-1.png', from: 'REVIEW', to: 'REJECTED' });
  });

  it('validate: a policy with a typo is refused on one line naming the field and value', async () => {
    const file = join(t.home, 'typo.yaml');
    writeFileSync(file, 'name: typo\nrules:\n  Explicit: { rejcet: 80 }\n');
    const failed = await run(process.execPath, ['bin/moderation.js', 'policy', 'validate', file], { cwd: ROOT }).catch((err: { code: number; stderr: string }) => err);
    expect(failed).toMatchObject({ code: 1 });
    const stderr = (failed as { stderr: string }).stderr;
    expect(stderr).toMatch(/^error: .*rejcet/);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    const { stdout } = await run(process.execPath, ['bin/moderation.js', 'policy', 'validate', 'standard', '--json'], { cwd: ROOT });
    expect(JSON.parse(stdout)).toMatchObject({ name: 'standard', minConfidence: 50 });
  });

  it('validate: a policy set (what push publishes) is checked as a set: its routes, default and policies', async () => {
    const file = join(t.home, 'tenants.yaml');
    const set = (route: string) =>
      `policies:\n  kids: strict\n  photos: { rules: { Explicit: { reject: 80, review: 50 } } }\nroutes:\n  - { prefix: uploads/kids/, policy: ${route} }\ndefault: photos\n`;
    writeFileSync(file, set('kids'));
    const { stdout } = await run(process.execPath, ['bin/moderation.js', 'policy', 'validate', file], { cwd: ROOT });
    expect(stdout).toMatch(/^policy set sha256:[0-9a-f]{16} is valid: 2 policies, 1 route and a default/);
    expect(stdout).toMatch(/1: key prefix "uploads\/kids\/"\s+kids\s+sha256:/);
    expect(stdout).toMatch(/default \(no route matches\)\s+photos\s+sha256:/);
    const json = JSON.parse((await run(process.execPath, ['bin/moderation.js', 'policy', 'validate', file, '--json'], { cwd: ROOT })).stdout);
    expect(json.policySet).toMatchObject({ kind: 'set', default: 'photos', routes: [{ prefix: 'uploads/kids/', policy: 'kids' }] });
    expect(Object.keys(json.policySet.policies).sort()).toEqual(['kids', 'photos']);

    writeFileSync(file, set('kdis'));
    const failed = await run(process.execPath, ['bin/moderation.js', 'policy', 'validate', file], { cwd: ROOT }).catch((err: { code: number; stderr: string }) => err);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr.trim()).toMatch(/^error: .*routes\[0\]\.policy: unknown policy "kdis" \(did you mean "kids"\?\)$/);
  });
});
