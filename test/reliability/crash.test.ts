/**
 * Crash: a run of 60 images in a child process, SIGKILLed mid-run, then started again on the same
 * data directory: every image reaches exactly one terminal state. (`npm run bench:load` runs 600.)
 */
import { describe, expect, it } from 'vitest';
import { crashScenario } from './scenarios.ts';
import { renderFigures } from './harness.ts';

describe('reliability: SIGKILL mid-run', () => {
  it('after a restart every image has exactly one terminal state', async () => {
    const result = await crashScenario({ images: 60, killAt: 0.3 });
    const summary = renderFigures(result);
    expect(result.counts.objectsIn, summary).toBe(60);
    expect(result.counts.lost, summary).toBe(0);
    expect(result.counts.decidedTwice, summary).toBe(0);
    expect(result.counts.inDlq, summary).toBe(0);
    expect(result.checks.filter((c) => !c.ok), summary).toEqual([]);
  }, 120_000);
});
