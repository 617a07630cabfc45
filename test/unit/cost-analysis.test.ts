/**
 * `moderation cost` counts each analysis API per image (functions/lib/cost-model.ts): DetectLabels and
 * DetectText on every judged image, the child-safety DetectFaces on the share with nudity or swimwear,
 * in the Group 2 tiers shared with DetectModerationLabels; the label index's and the larger record's writes.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { estimateMonthlyCost, type AslDefinition } from '../../functions/lib/cost-model.ts';
import { DEFINITION_FILE } from '../../functions/lib/pipeline-settings.ts';

const definition = JSON.parse(readFileSync(DEFINITION_FILE, 'utf8')) as AslDefinition;
const base = { images: 500_000, borderlineRate: 0.05, workflow: 'EXPRESS' as const, reviewModelId: null };
const rekognition = (estimate: ReturnType<typeof estimateMonthlyCost>) => estimate.services.find((s) => s.service === 'Rekognition')!;
const calls = (estimate: ReturnType<typeof estimateMonthlyCost>, api: string) =>
  rekognition(estimate).items.filter((i) => i.what.startsWith(api)).reduce((sum, i) => sum + i.quantity, 0);

describe('cost of the analyses', () => {
  it('none by default: one DetectModerationLabels per image', () => {
    const estimate = estimateMonthlyCost(base, definition);
    expect(rekognition(estimate).items.reduce((sum, i) => sum + i.quantity, 0)).toBe(500_000);
    expect(estimate.assumptions.at(-1)).toMatch(/^No analysis beside moderation/);
  });

  it('counts each API per image, and the child-safety DetectFaces on its share only', () => {
    const estimate = estimateMonthlyCost({ ...base, analysis: { labels: true, text: true, faces: 'conditional', childSafetyShare: 0.1 } }, definition);
    expect(calls(estimate, 'DetectLabels')).toBe(500_000);
    expect(calls(estimate, 'DetectText')).toBe(500_000);
    expect(calls(estimate, 'DetectFaces (child safety)')).toBeCloseTo(50_000, 6);
    // 1.55M group 2 images: the first million at $0.001, the rest at $0.0008 (the tiers are shared).
    expect(rekognition(estimate).monthlyUsd).toBeCloseTo(1_000 + 550_000 * 0.0008, 6);
    const dynamo = estimate.services.find((s) => s.service === 'DynamoDB')!.items.map((i) => i.what);
    expect(dynamo).toEqual(expect.arrayContaining([expect.stringMatching(/^label index/), expect.stringMatching(/^analysis summary in the decision item/)]));
    expect(estimate.assumptions.at(-1)).toMatch(/^Analyses: DetectLabels on every judged image, DetectText on every judged image, DetectFaces \(child safety\) on 10\.0% of judged images/);
  });

  it('faces on every image when asked; repeats of earlier decisions are not analysed', () => {
    const estimate = estimateMonthlyCost({ ...base, duplicateRate: 0.2, analysis: { labels: false, text: false, faces: 'always', childSafetyShare: 0 } }, definition);
    expect(calls(estimate, 'DetectFaces')).toBeCloseTo(400_000, 6);
    expect(calls(estimate, 'DetectLabels')).toBe(0);
  });
});
