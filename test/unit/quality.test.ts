/**
 * Measured quality (functions/lib/quality.ts): the Wilson score interval against published values,
 * the deterministic sampling choice, and the agreement report.
 */
import { describe, expect, it } from 'vitest';
import { agreementReport, isQualitySampled, NO_CATEGORY, parseSampleRate, wilsonInterval, type QualityObservation } from '../../functions/lib/quality.ts';
import { automatedRecord } from '../../functions/lib/decision.ts';
import type { ModerationState } from '../../functions/lib/types.ts';

describe('wilsonInterval (95 %)', () => {
  // Newcombe (1998), "Two-sided confidence intervals for the single proportion", method 3, and the
  // usual worked examples: 8/10 → 0.4902–0.9433; 0/10 → 0–0.2775; 95/100 → 0.8882–0.9785.
  it.each([
    [8, 10, 0.4902, 0.9433],
    [0, 10, 0, 0.2775],
    [10, 10, 0.7225, 1],
    [50, 100, 0.4038, 0.5962],
    [95, 100, 0.8882, 0.9785],
    [81, 263, 0.2553, 0.3662],
    [1, 1, 0.2065, 1],
  ])('%i of %i → %f to %f', (successes, trials, low, high) => {
    const ci = wilsonInterval(successes, trials)!;
    expect(ci.low).toBeCloseTo(low, 4);
    expect(ci.high).toBeCloseTo(high, 4);
    expect(ci.low).toBeGreaterThanOrEqual(0);
    expect(ci.high).toBeLessThanOrEqual(1);
  });

  it('is undefined without trials, and refuses impossible counts', () => {
    expect(wilsonInterval(0, 0)).toBeUndefined();
    expect(() => wilsonInterval(3, 2)).toThrow(RangeError);
    expect(() => wilsonInterval(-1, 2)).toThrow(RangeError);
  });

  it('narrows as the sample grows, around the same rate', () => {
    const small = wilsonInterval(9, 10)!;
    const large = wilsonInterval(900, 1000)!;
    expect(large.high - large.low).toBeLessThan(small.high - small.low);
    expect(large.low).toBeLessThan(0.9);
    expect(large.high).toBeGreaterThan(0.9);
  });
});

describe('isQualitySampled', () => {
  const ids = Array.from({ length: 20_000 }, (_, i) => i.toString(16).padStart(40, '0'));

  it('is a function of the job id: the same choice every time (a redelivery chooses the same)', () => {
    for (const id of ids.slice(0, 200)) expect(isQualitySampled(id, 0.3)).toBe(isQualitySampled(id, 0.3));
  });

  it('takes about the share asked for, nothing at 0 and everything at 1', () => {
    const share = ids.filter((id) => isQualitySampled(id, 0.01)).length / ids.length;
    expect(share).toBeGreaterThan(0.007);
    expect(share).toBeLessThan(0.013);
    expect(ids.some((id) => isQualitySampled(id, 0))).toBe(false);
    expect(ids.every((id) => isQualitySampled(id, 1))).toBe(true);
  });

  it('a job sampled at a rate is sampled at every higher rate', () => {
    for (const id of ids.slice(0, 2000)) if (isQualitySampled(id, 0.05)) expect(isQualitySampled(id, 0.2)).toBe(true);
  });

  it('parses rates (fractions and percentages), refusing what is not one', () => {
    expect(parseSampleRate('0.01')).toBe(0.01);
    expect(parseSampleRate('5%')).toBe(0.05);
    expect(parseSampleRate('0')).toBe(0);
    expect(parseSampleRate('1.5')).toBeUndefined();
    expect(parseSampleRate('-0.1')).toBeUndefined();
    expect(parseSampleRate('often')).toBeUndefined();
  });
});

describe('automatedRecord: quality sampling', () => {
  const state = (jobId: string, verdict: 'APPROVE' | 'REJECT' | 'BORDERLINE'): ModerationState => ({
    job: { jobId, bucket: 'b', key: 'uploads/a/x.png', eTag: 'e', eventTime: '2026-11-01T00:00:00Z', receivedAt: '2026-11-01T00:00:00Z' },
    detection: {
      verdict,
      labels: [],
      rule: verdict === 'APPROVE' ? undefined : { category: 'Explicit', label: 'Explicit Nudity', confidence: 90, action: verdict === 'REJECT' ? 'reject' : 'review', threshold: 80 },
      flagged: [],
      policyVersion: 'p',
      source: 's3-object',
      durationMs: 1,
    },
  });
  const id = 'a'.repeat(40);

  it('marks APPROVED and REJECTED decisions the rate picks, never REVIEW, and nothing at rate 0', () => {
    expect(automatedRecord(state(id, 'APPROVE'), { decidedAt: '2026-11-01T00:00:01Z', qualitySampleRate: 1 }).qualitySample).toBe(true);
    expect(automatedRecord(state(id, 'REJECT'), { decidedAt: '2026-11-01T00:00:01Z', qualitySampleRate: 1 }).qualitySample).toBe(true);
    expect(automatedRecord(state(id, 'BORDERLINE'), { decidedAt: '2026-11-01T00:00:01Z', qualitySampleRate: 1 }).qualitySample).toBeUndefined();
    expect(automatedRecord(state(id, 'APPROVE'), { decidedAt: '2026-11-01T00:00:01Z', qualitySampleRate: 0 }).qualitySample).toBeUndefined();
    expect(automatedRecord(state(id, 'APPROVE'), { decidedAt: '2026-11-01T00:00:01Z' }).qualitySample).toBeUndefined();
  });
});

describe('agreementReport', () => {
  const o = (automated: 'APPROVED' | 'REJECTED', human: 'APPROVED' | 'REJECTED', category: string | undefined, source: 'blind' | 'appeal' = 'blind'): QualityObservation => ({
    jobId: Math.random().toString(16),
    automated,
    human,
    ...(category ? { category } : {}),
    source,
  });

  it('counts agreement per status and per category, with the blind answers apart and overrides counted', () => {
    const report = agreementReport([
      ...Array.from({ length: 8 }, () => o('APPROVED', 'APPROVED', undefined)),
      ...Array.from({ length: 2 }, () => o('APPROVED', 'REJECTED', undefined)),
      ...Array.from({ length: 3 }, () => o('REJECTED', 'REJECTED', 'Explicit')),
      o('REJECTED', 'APPROVED', 'Explicit', 'appeal'),
      o('REJECTED', 'REJECTED', 'Violence', 'appeal'),
    ]);
    expect(report.overall).toMatchObject({ name: 'all', checked: 15, agreed: 12, rate: 0.8, overrides: 1, blind: { checked: 13, agreed: 11 } });
    const approved = report.byStatus.find((r) => r.name === 'APPROVED')!;
    expect(approved).toMatchObject({ checked: 10, agreed: 8, rate: 0.8, overrides: 0 });
    expect(approved.ci!.low).toBeCloseTo(0.4902, 4);
    expect(approved.ci!.high).toBeCloseTo(0.9433, 4);
    expect(report.byStatus.find((r) => r.name === 'REJECTED')).toMatchObject({ checked: 5, agreed: 4, overrides: 1, blind: { checked: 3, agreed: 3, rate: 1 } });
    expect(report.byCategory.map((r) => [r.name, r.checked, r.agreed])).toEqual([
      [NO_CATEGORY, 10, 8],
      ['Explicit', 4, 3],
      ['Violence', 1, 1],
    ]);
  });

  it('has empty rows, without a rate, when nothing was observed', () => {
    const report = agreementReport([]);
    expect(report.overall).toEqual({ name: 'all', checked: 0, agreed: 0, blind: { checked: 0, agreed: 0 }, overrides: 0 });
    expect(report.byStatus.map((r) => r.name)).toEqual(['APPROVED', 'REJECTED']);
    expect(report.byCategory).toEqual([]);
  });
});
