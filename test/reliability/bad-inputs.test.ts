/**
 * Bad inputs, all of them: each ends in a terminal state with a clear reason, in one execution (no
 * retry loop), with no crash of the ingest worker and no URL fetched on a file's behalf.
 */
import { describe, expect, it } from 'vitest';
import { badInputsScenario } from './scenarios.ts';
import { renderFigures } from './harness.ts';

describe('reliability: bad inputs', () => {
  it('every bad file, odd key and odd message ends in a terminal state with its reason', async () => {
    const result = await badInputsScenario({ detector: 'fake' });
    const summary = renderFigures(result);
    expect(result.counts.lost, summary).toBe(0);
    expect(result.counts.decidedTwice, summary).toBe(0);
    expect(result.counts.failed, summary).toBe(0);
    // The one message that is not JSON, parked with its reason; nothing else.
    expect(result.counts.inDlq, summary).toBe(1);
    expect(result.checks.filter((c) => !c.ok), summary).toEqual([]);
  }, 120_000);
});
