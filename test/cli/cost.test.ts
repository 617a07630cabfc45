/** The cost model: paths counted from the ASL, tiers, Express vs Standard, every assumption and price stated. */
import { describe, expect, it } from 'vitest';
import {
  dynamoItemBytes,
  estimateMonthlyCost,
  pathThrough,
  rekognitionTiers,
  reviewInputTokens,
  sampleDecisionItems,
  type CostEstimate,
} from '../../functions/lib/cost-model.ts';
import { PRICES, PRICES_AS_OF } from '../../functions/lib/pricing.ts';
import { describeEstimate } from '../../cli/commands/cost.ts';
import { definition } from './cost-helpers.ts';

const service = (estimate: CostEstimate, name: string) => estimate.services.find((s) => s.service.startsWith(name));

describe('cost model', () => {
  it('counts the states of each path from the definition itself', () => {
    const on = { contextualReview: 'enabled' };
    expect(pathThrough(definition, { settings: on, detection: { verdict: 'APPROVE' } })).toEqual(['Configure', 'Detect', 'Route', 'Record', 'Apply', 'Done']);
    expect(pathThrough(definition, { settings: on, detection: { verdict: 'BORDERLINE' } })).toEqual(['Configure', 'Detect', 'Route', 'Review', 'Record', 'Apply', 'Done']);
    expect(pathThrough(definition, { settings: { contextualReview: 'disabled' }, detection: { verdict: 'BORDERLINE' } })).toHaveLength(6);
    // A job that already has a decision only re-applies it.
    expect(pathThrough(definition, { settings: on, decision: { status: 'APPROVED' } })).toEqual(['Configure', 'Detect', 'Route', 'Apply', 'Done']);
  });

  it('applies the Rekognition tiers to the monthly volume', () => {
    const total = (n: number) => rekognitionTiers(n).reduce((sum, i) => sum + i.monthlyUsd, 0);
    expect(total(1_000_000)).toBeCloseTo(1_000, 6);
    expect(total(6_000_000)).toBeCloseTo(1_000 + 4_000_000 * 0.0008 + 1_000_000 * 0.0006, 6);
    expect(total(40_000_000)).toBeCloseTo(1_000 + 3_200 + 30_000_000 * 0.0006 + 5_000_000 * 0.00025, 6);
  });

  it('adds up services into a monthly total and a cost per 1,000 images', () => {
    const estimate = estimateMonthlyCost({ images: 1_000_000, borderlineRate: 0.05, workflow: 'EXPRESS', reviewModelId: 'amazon.nova-lite-v1:0' }, definition);
    const sum = estimate.services.reduce((s, x) => s + x.monthlyUsd, 0);
    expect(estimate.monthlyUsd).toBeCloseTo(sum, 9);
    expect(estimate.per1000Usd).toBeCloseTo(estimate.monthlyUsd / 1000, 9);
    for (const s of estimate.services) expect(s.monthlyUsd).toBeCloseTo(s.items.reduce((a, i) => a + i.quantity * i.unitPriceUsd, 0), 9);
    expect(estimate.services.map((s) => s.service)).toEqual(['Rekognition', 'Lambda', 'Step Functions (Express)', 'SQS', 'DynamoDB', 'S3', 'Bedrock', 'CloudWatch Logs']);
    // Rekognition dominates at list prices.
    expect(service(estimate, 'Rekognition')!.monthlyUsd / estimate.monthlyUsd).toBeGreaterThan(0.8);
    // Lambda: one ingest invocation per batch of 10, review only for the borderline share.
    const lambda = service(estimate, 'Lambda')!.items;
    expect(lambda.find((i) => i.what === 'ingest: invocations')!.quantity).toBe(100_000);
    expect(lambda.find((i) => i.what === 'review: invocations')!.quantity).toBeCloseTo(50_000);
    // Express: one request per image; duration at 64 MB, rounded up to 100 ms.
    const sfn = service(estimate, 'Step Functions')!.items;
    expect(sfn[0]!.quantity).toBe(1_000_000);
    for (const path of estimate.paths) expect(path.billedMs % 100).toBe(0);
    expect(sfn[1]!.quantity).toBeCloseTo(estimate.paths.reduce((s, p) => s + 1_000_000 * p.share * (64 / 1024) * (p.billedMs / 1000), 0), 6);
    // Bedrock tokens only for the borderline share.
    const tokens = reviewInputTokens({ width: 1568, height: 1045 });
    expect(tokens.image).toBe(2185); // 1568 × 1045 / 750
    expect(service(estimate, 'Bedrock')!.items[0]!.quantity).toBeCloseTo(50_000 * (tokens.image + tokens.prompt));
  });

  it('Standard is billed per state transition along each path', () => {
    const estimate = estimateMonthlyCost({ images: 2_000_000, borderlineRate: 0.1, workflow: 'STANDARD', reviewModelId: 'amazon.nova-lite-v1:0' }, definition);
    const sfn = service(estimate, 'Step Functions (Standard)')!;
    expect(sfn.items[0]!.quantity).toBeCloseTo(2_000_000 * (0.9 * 6 + 0.1 * 7));
    expect(sfn.monthlyUsd).toBeCloseTo(2_000_000 * (0.9 * 6 + 0.1 * 7) * PRICES.stepFunctionsStandardPerTransition);
    const express = estimateMonthlyCost({ images: 2_000_000, borderlineRate: 0.1, workflow: 'EXPRESS', reviewModelId: 'amazon.nova-lite-v1:0' }, definition);
    expect(service(express, 'Step Functions')!.monthlyUsd).toBeLessThan(sfn.monthlyUsd);
  });

  it('without contextual review there is no Bedrock and no review step', () => {
    const estimate = estimateMonthlyCost({ images: 100_000, borderlineRate: 0.2, workflow: 'EXPRESS', reviewModelId: null }, definition);
    expect(service(estimate, 'Bedrock')).toBeUndefined();
    expect(service(estimate, 'Lambda')!.items.some((i) => i.what.startsWith('review'))).toBe(false);
    expect(estimate.paths).toHaveLength(1);
    expect(estimate.assumptions.join('\n')).toMatch(/Contextual review off/);
  });

  it('counts the decision in the table at its size, and one write unit per index copy (keys and three attributes)', () => {
    const sizes = sampleDecisionItems('amazon.nova-lite-v1:0');
    expect(sizes.clean).toBeGreaterThan(500);
    // A clean approval fits one write unit; three labels and a rule do not.
    expect(sizes.clean).toBeLessThanOrEqual(1024);
    expect(sizes.plain).toBeGreaterThan(sizes.clean);
    expect(sizes.reviewed).toBeGreaterThan(sizes.plain);
    // An index copy (INCLUDE: keys + status, uploader, category) is one write unit even for a labelled record.
    expect(sizes.indexCopy).toBeLessThan(512);
    expect(dynamoItemBytes({ pk: 'abc', n: 12345 })).toBe(2 + 3 + 1 + 4);
    const writes = (e: ReturnType<typeof estimateMonthlyCost>) => service(e, 'DynamoDB')!.items.filter((i) => i.what.startsWith('decision writes'));
    const approvals = writes(estimateMonthlyCost({ images: 1_000, borderlineRate: 0, rejectRate: 0, workflow: 'EXPRESS', reviewModelId: null }, definition));
    // Every approval: the table + byImage + byStatus; not byUploader (sparse: no APPROVED record), not byCategory.
    expect(approvals[0]!.quantity).toBe(1_000 * Math.ceil(sizes.clean / 1024));
    expect(approvals[1]!.quantity).toBe(1_000 * 2);
    const rejections = writes(estimateMonthlyCost({ images: 1_000, borderlineRate: 0, rejectRate: 1, workflow: 'EXPRESS', reviewModelId: null }, definition));
    // Every rejection: the table at its size (2 WRU), and four one-unit index copies (byUploader and byCategory too).
    expect(rejections[0]!.quantity).toBe(1_000 * Math.ceil(sizes.plain / 1024));
    expect(rejections[1]!.quantity).toBe(1_000 * 4);
  });

  it('counts the content index: one entry per judged image, a rejected still under 68 band keys, and detect\'s lookups', () => {
    const estimate = estimateMonthlyCost({ images: 1_000_000, borderlineRate: 0.05, rejectRate: 0.02, workflow: 'EXPRESS', reviewModelId: null }, definition);
    const items = service(estimate, 'DynamoDB')!.items;
    const find = (prefix: string) => items.find((i) => i.what.startsWith(prefix))!;
    // REVIEW is never repeated, so held images are not indexed.
    expect(find('content index').quantity).toBeCloseTo(950_000);
    expect(find('known bad').quantity).toBeCloseTo(20_000 * 68);
    expect(find('detect: already decided?').quantity).toBe(1_000_000);
    expect(find('detect: these bytes decided?').quantity).toBe(500_000);
    expect(find('detect: a known-bad near-duplicate?').quantity).toBe(2_000_000);
  });

  it('states every assumption and each price with its source kind and date', () => {
    const estimate = estimateMonthlyCost({ images: 1_000_000, borderlineRate: 0.05, workflow: 'EXPRESS', reviewModelId: 'amazon.nova-lite-v1:0' }, definition);
    expect(estimate.pricesAsOf).toBe(PRICES_AS_OF);
    expect(PRICES_AS_OF).toBe('2026-11-25');
    expect(estimate.assumptions.length).toBeGreaterThanOrEqual(10);
    const used = new Set(estimate.services.flatMap((s) => s.items.map((i) => i.price)));
    for (const key of used) expect(estimate.prices.find((p) => p.key === key), key).toMatchObject({ sourceKind: expect.stringMatching(/official|secondary/) });
    const text = describeEstimate(estimate);
    expect(text).toContain('Total');
    expect(text).toContain('as of 2026-11-25');
    expect(text).toMatch(/Assumptions:/);
  });

  it('refuses impossible inputs and unknown models', () => {
    const base = { images: 10, borderlineRate: 0.1, workflow: 'EXPRESS' as const, reviewModelId: null };
    expect(() => estimateMonthlyCost({ ...base, borderlineRate: 1.5 }, definition)).toThrow(/borderlineRate/);
    expect(() => estimateMonthlyCost({ ...base, images: -1 }, definition)).toThrow(/images/);
    expect(() => estimateMonthlyCost({ ...base, borderlineRate: 0.7, rejectRate: 0.5 }, definition)).toThrow(/must not exceed 1/);
    expect(() => estimateMonthlyCost({ ...base, reviewModelId: 'acme.vision-9' }, definition)).toThrow(/no list price for Bedrock model acme.vision-9/);
    // Inference profiles price like their model.
    expect(() => estimateMonthlyCost({ ...base, reviewModelId: 'us.amazon.nova-pro-v1:0' }, definition)).not.toThrow();
  });
});
