/** The scale model (functions/lib/scale-model.ts): Little's law and the limits after the quota. */
import { describe, expect, it } from 'vitest';
import { estimateScale } from '../../functions/lib/scale-model.ts';

describe('scale model', () => {
  it('predicts the local throttled load runs: sized to the quota it is quota-bound; 4× oversized it is oversubscribed', () => {
    // docs/reliability.md, Throttling: a 10/s quota, 0.383 s per unthrottled execution, 5 in flight → 9.83 decisions/s measured.
    const sized = estimateScale({ rekognitionTps: 10, maxConcurrency: 5, batchSize: 1, executionSeconds: 0.383 });
    expect(sized.limitedBy).toBe('rekognition quota');
    expect(sized.decisionsPerSecond).toBe(10);
    expect(Math.abs(9.83 - sized.decisionsPerSecond) / 9.83).toBeLessThan(0.05);
    expect(sized.recommendedMaxConcurrency).toBe(5);
    // 20 in flight: five times what the quota can take; measured 77 % of the quota (the retry storm).
    const oversized = estimateScale({ rekognitionTps: 10, maxConcurrency: 20, batchSize: 1, executionSeconds: 0.383 });
    expect(oversized.oversubscription).toBeGreaterThan(5);
  });

  it('names the limit after the quota at 10× and 100× the defaults', () => {
    const base = { batchSize: 10, executionSeconds: 0.7 };
    const today = estimateScale({ ...base, rekognitionTps: 50, maxConcurrency: 5 });
    expect(today).toMatchObject({ limitedBy: 'rekognition quota', decisionsPerSecond: 50 });
    const tenfold = estimateScale({ ...base, rekognitionTps: 500, maxConcurrency: 50 });
    expect(tenfold.limitedBy).toBe('rekognition quota');
    expect(tenfold.nextLimit).toBe('concurrency (maxConcurrency × batchSize)');
    // 100×: 500 ingest calls and 5,000 executions want more concurrent functions than the account's 1,000.
    const hundredfold = estimateScale({ ...base, rekognitionTps: 5_000, maxConcurrency: 500 });
    expect(hundredfold.limitedBy).toBe('Lambda concurrency');
    expect(hundredfold.decisionsPerSecond).toBeCloseTo(500 / 0.7, 5);
  });

  it('a very active uploader heats one index partition before anything else at scale', () => {
    const hot = estimateScale({ rekognitionTps: 5_000, maxConcurrency: 500, batchSize: 10, executionSeconds: 0.7, lambdaConcurrency: 10_000, hottestUploaderShare: 0.5 });
    expect(hot.limitedBy).toBe('hot uploader partition');
    expect(hot.decisionsPerSecond).toBe(1_000);
  });

  it('refuses nonsense inputs', () => {
    expect(() => estimateScale({ rekognitionTps: 0, maxConcurrency: 5, batchSize: 10, executionSeconds: 0.7 })).toThrow(/rekognitionTps/);
  });
});
