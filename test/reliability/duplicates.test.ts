/**
 * Duplicates: every S3 event notification delivered three times (two copies together, one after the
 * decision). One decision per object version, applied once; late copies never reach Rekognition.
 */
import { describe, expect, it } from 'vitest';
import { duplicatesScenario } from './scenarios.ts';
import { renderFigures } from './harness.ts';

describe('reliability: duplicate deliveries', () => {
  it('20 objects × 3 deliveries: one decision per object version', async () => {
    const result = await duplicatesScenario({ objects: 20, copies: 3 });
    const summary = renderFigures(result);
    expect(result.counts.objectsIn, summary).toBe(20);
    expect(result.counts.decidedTwice, summary).toBe(0);
    expect(result.counts.lost, summary).toBe(0);
    expect(result.counts.inDlq, summary).toBe(0);
    expect(result.counts.unapplied, summary).toBe(0);
    expect(result.checks.filter((c) => !c.ok), summary).toEqual([]);
  }, 90_000);
});
