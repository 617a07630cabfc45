/** `moderation cost` counts a DetectModerationLabels call per judged frame of the animated share. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { estimateMonthlyCost, type CostEstimate } from '../../functions/lib/cost-model.ts';
import { cost, definition } from './cost-helpers.ts';

const base = { images: 1_000_000, borderlineRate: 0.05, workflow: 'EXPRESS' as const, reviewModelId: null };
const rekognitionCalls = (estimate: CostEstimate) => estimate.services.find((s) => s.service === 'Rekognition')!.items.reduce((sum, i) => sum + i.quantity, 0);
const detectGbSeconds = (estimate: CostEstimate) => estimate.services.find((s) => s.service === 'Lambda')!.items.find((i) => i.what.startsWith('detect: compute'))!.quantity;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('cost of judging every frame', () => {
  it('adds a Rekognition call per further judged frame of each animation (default: the policy default, 10)', () => {
    const stills = estimateMonthlyCost(base, definition);
    expect(rekognitionCalls(stills)).toBe(1_000_000);
    expect(stills.input).toMatchObject({ animatedShare: 0, framesPerAnimation: 10 });

    const animated = estimateMonthlyCost({ ...base, animatedShare: 0.1 }, definition);
    expect(rekognitionCalls(animated)).toBeCloseTo(900_000 + 100_000 * 10);
    // Past 1M calls the second tier's price applies.
    expect(animated.services.find((s) => s.service === 'Rekognition')!.items.map((i) => i.quantity)).toEqual([1_000_000, expect.closeTo(900_000)]);
    expect(detectGbSeconds(animated)).toBeGreaterThan(detectGbSeconds(stills));
    expect(animated.monthlyUsd).toBeGreaterThan(stills.monthlyUsd);
    expect(animated.assumptions.join('\n')).toMatch(/each animation \(10\.0% of images\) 10 times, once per judged frame/);

    const fewer = estimateMonthlyCost({ ...base, animatedShare: 0.1, framesPerAnimation: 4 }, definition);
    expect(rekognitionCalls(fewer)).toBeCloseTo(900_000 + 100_000 * 4);
  });

  it('refuses impossible shares and frame counts', () => {
    expect(() => estimateMonthlyCost({ ...base, animatedShare: 1.5 }, definition)).toThrow(/animatedShare must be from 0 to 1, got 1.5/);
    expect(() => estimateMonthlyCost({ ...base, framesPerAnimation: 0 }, definition)).toThrow(/framesPerAnimation must be 1-100, got 0/);
    expect(() => estimateMonthlyCost({ ...base, framesPerAnimation: 2.5 }, definition)).toThrow(/framesPerAnimation/);
  });

  it('moderation cost --animated-share --frames-per-animation', async () => {
    const estimate = JSON.parse(await cost(['--images', '1000000', '--borderline-rate', '0.05', '--animated-share', '5%', '--frames-per-animation', '6', '--json'])) as CostEstimate;
    expect(estimate.input).toMatchObject({ animatedShare: 0.05, framesPerAnimation: 6 });
    expect(rekognitionCalls(estimate)).toBeCloseTo(950_000 + 50_000 * 6);

    expect(await cost(['--images', '1000000', '--borderline-rate', '0.05', '--animated-share', '0.05'])).toMatch(/5\.0% animations, 10 frames judged each/);
  });
});
