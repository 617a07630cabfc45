/**
 * Throttling: a detector quota of 5 requests/s answered with Rekognition's real ThrottlingException /
 * ProvisionedThroughputExceededException, under uploads at 10× that rate. Nothing lost, nothing in the
 * DLQ, nothing decided twice, every throttle retried. How busy the quota is kept is a speed figure:
 * `npm run bench:load` measures it (and asserts 90 %) with the machine to itself, not this test, which
 * shares two cores with the rest of the suite.
 */
import { describe, expect, it } from 'vitest';
import { throttleScenario } from './scenarios.ts';
import { renderFigures } from './harness.ts';

describe('reliability: throttling detector', () => {
  it('a burst of 10× the quota: nothing lost, nothing dead-lettered, nothing decided twice', async () => {
    const result = await throttleScenario({ perSecond: 5, burstFactor: 10, assertThroughput: false });
    const summary = renderFigures(result);
    expect(result.counts.objectsIn, summary).toBe(50);
    expect(result.counts.lost, summary).toBe(0);
    expect(result.counts.decidedTwice, summary).toBe(0);
    expect(result.counts.inDlq, summary).toBe(0);
    expect(result.counts.failed, summary).toBe(0);
    expect(result.checks.filter((c) => !c.ok), summary).toEqual([]);
    expect(result.metrics!.throttled, summary).toBeGreaterThan(0);
  }, 120_000);
});
