/**
 * Throttling: a detector quota of 5 requests/s answered with Rekognition's real ThrottlingException /
 * ProvisionedThroughputExceededException, under uploads at 10× that rate. Nothing lost, nothing in the
 * DLQ, nothing decided twice, and the quota kept busy. (`npm run bench:load` runs it at 20/s.)
 */
import { describe, expect, it } from 'vitest';
import { throttleScenario } from './scenarios.ts';
import { renderFigures } from './harness.ts';

describe('reliability: throttling detector', () => {
  it('a burst of 10× the quota: nothing lost, nothing dead-lettered, the quota kept busy', async () => {
    // In `npm test` this file shares two cores with the rest of the suite: the throughput floor is
    // lower here (80%) than in bench:load (90%), where the scenario has the machine to itself.
    const result = await throttleScenario({ perSecond: 5, burstFactor: 10, assertThroughput: false });
    const summary = renderFigures(result);
    expect(result.counts.objectsIn, summary).toBe(50);
    expect(result.counts.lost, summary).toBe(0);
    expect(result.counts.decidedTwice, summary).toBe(0);
    expect(result.counts.inDlq, summary).toBe(0);
    expect(result.counts.failed, summary).toBe(0);
    expect(result.checks.filter((c) => !c.ok), summary).toEqual([]);
    expect(result.metrics!.throttled, summary).toBeGreaterThan(0);
    expect(result.metrics!.throughput, summary).toBeGreaterThanOrEqual(0.8 * 5);
  }, 120_000);
});
