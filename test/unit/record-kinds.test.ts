/**
 * The record kinds beside the decisions (appeal, quality sample, blind answer): their keys, that they
 * never count as a decision nor get a decision event, what a job waits for in the review queue
 * (cli/human-review.ts pendingOf), and what a job tells the quality report (cli/quality.ts observationOf).
 */
import { describe, expect, it } from 'vitest';
import { appealRecord, blindAnswerRecord, humanRecord, qualitySampleEntry } from '../../functions/lib/decision.ts';
import { decisionItem, kindOfSortKey, recordIdOf } from '../../functions/store/table-schema.ts';
import { latestDecisionOf, latestOf, openAppealOf } from '../../functions/store/decision-store.ts';
import { decisionEvent, hasDecisionEvent, NotADecisionRecordError } from '../../functions/lib/decision-event.ts';
import { pendingOf } from '../../cli/human-review.ts';
import { observationOf } from '../../cli/quality.ts';
import type { Decision, DecisionRecord, DecisionStatus } from '../../functions/lib/types.ts';

const jobId = 'c'.repeat(40);
const at = (s: number) => new Date(Date.UTC(2026, 10, 1, 0, 0, s)).toISOString();

function automated(status: DecisionStatus, qualitySample = false): DecisionRecord {
  const decision: Decision = {
    kind: 'automated',
    jobId,
    bucket: 'uploads',
    key: 'uploads/alice/x.png',
    eTag: 'e',
    uploader: 'alice',
    status,
    decidedBy: 'rekognition',
    decidedAt: at(0),
    labels: [],
    ...(status === 'REJECTED' ? { category: 'Explicit' } : {}),
    timings: {},
    estimatedCostUsd: 0.001,
    ...(qualitySample ? { qualitySample: true } : {}),
  };
  return decisionItem(decision, { shards: 8 });
}

const item = (decision: Decision, revision?: number) => decisionItem(decision, { shards: 8, revision });

describe('record kinds', () => {
  it('have their own sort keys, read back as their kind', () => {
    const auto = automated('REJECTED', true);
    const appeal = item(appealRecord(auto, { message: 'mine', filedAt: at(5), contests: recordIdOf(auto) }), 2);
    const sample = item(qualitySampleEntry(auto, recordIdOf(auto)));
    const blind = item(blindAnswerRecord(sample, { status: 'APPROVED', reviewer: 'dana', decidedAt: at(6), sampleOf: recordIdOf(auto) }));
    expect([appeal.sk, sample.sk, blind.sk]).toEqual(['APPEAL#r0002', 'QUALITY#sample', 'QUALITY#answer']);
    expect([appeal, sample, blind].map((r) => kindOfSortKey(r.sk))).toEqual(['appeal', 'sample', 'blind']);
    expect(sample).toMatchObject({ status: 'REVIEW', labels: [], statusShard: expect.stringMatching(/^REVIEW#\d$/) });
    expect(sample.category).toBeUndefined();
    expect(appeal).toMatchObject({ status: 'REVIEW', decidedBy: 'uploader:alice', reason: 'mine' });
  });

  it('are not decisions: never the latest decision, no decision event', () => {
    const auto = automated('REJECTED', true);
    const appeal = item(appealRecord(auto, { message: 'mine', filedAt: at(5), contests: recordIdOf(auto) }), 1);
    const sample = item(qualitySampleEntry(auto, recordIdOf(auto)));
    const blind = item(blindAnswerRecord(sample, { status: 'APPROVED', reviewer: 'dana', decidedAt: at(6), sampleOf: recordIdOf(auto) }));
    const records = [auto, sample, appeal, blind];
    expect(latestDecisionOf(records)).toBe(auto);
    expect(latestOf(records)).toBe(auto);
    for (const record of [appeal, sample, blind]) {
      expect(hasDecisionEvent(record)).toBe(false);
      expect(() => decisionEvent(record)).toThrow(NotADecisionRecordError);
    }
    expect(hasDecisionEvent(auto)).toBe(true);
    // An appeal's outcome is a human decision, with its event.
    const outcome = item(humanRecord(auto, { status: 'APPROVED', reviewer: 'dana', reason: 'art', decidedAt: at(9), supersedes: recordIdOf(auto), appealOf: recordIdOf(appeal) }), 1);
    expect(hasDecisionEvent(outcome)).toBe(true);
    expect(decisionEvent(outcome)).toMatchObject({ type: 'human', status: 'APPROVED', previousStatus: 'REJECTED', supersedes: recordIdOf(auto) });
  });
});

describe('pendingOf: what a job waits for in the review queue', () => {
  it('held for review until a human decides', () => {
    const auto = automated('REVIEW');
    expect(pendingOf([auto])).toEqual({ kind: 'review', record: auto });
    const human = item(humanRecord(auto, { status: 'APPROVED', reviewer: 'dana', reason: 'ok', decidedAt: at(3), supersedes: recordIdOf(auto) }), 1);
    expect(pendingOf([auto, human])).toBeUndefined();
  });

  it('an open appeal over everything else; closed by the human decision that names it', () => {
    const auto = automated('REJECTED', true);
    const sample = item(qualitySampleEntry(auto, recordIdOf(auto)));
    const appeal = item(appealRecord(auto, { message: 'mine', filedAt: at(5), contests: recordIdOf(auto) }), 1);
    expect(pendingOf([auto, sample])).toEqual({ kind: 'sample', record: sample });
    expect(pendingOf([auto, sample, appeal])).toEqual({ kind: 'appeal', record: appeal });
    expect(openAppealOf([auto, appeal])).toBe(appeal);
    const outcome = item(humanRecord(auto, { status: 'REJECTED', reviewer: 'dana', reason: 'no', decidedAt: at(9), supersedes: recordIdOf(auto), appealOf: recordIdOf(appeal) }), 1);
    expect(openAppealOf([auto, appeal, outcome])).toBeUndefined();
    // The sample is answered too: a human looked at it.
    expect(pendingOf([auto, sample, appeal, outcome])).toBeUndefined();
  });

  it('a sample until its blind answer', () => {
    const auto = automated('APPROVED', true);
    const sample = item(qualitySampleEntry(auto, recordIdOf(auto)));
    const blind = item(blindAnswerRecord(sample, { status: 'APPROVED', reviewer: 'dana', decidedAt: at(6), sampleOf: recordIdOf(auto) }));
    expect(pendingOf([auto, sample, blind])).toBeUndefined();
    expect(pendingOf([automated('APPROVED')])).toBeUndefined();
  });
});

describe('observationOf: what a job tells the quality report', () => {
  it('the blind answer first; else the latest appeal outcome; nothing for an image held for review', () => {
    const auto = automated('REJECTED', true);
    const sample = item(qualitySampleEntry(auto, recordIdOf(auto)));
    const blind = item(blindAnswerRecord(sample, { status: 'REJECTED', reviewer: 'dana', decidedAt: at(6), sampleOf: recordIdOf(auto) }));
    const appeal = item(appealRecord(auto, { message: 'mine', filedAt: at(7), contests: recordIdOf(auto) }), 1);
    const granted = item(humanRecord(auto, { status: 'APPROVED', reviewer: 'erin', reason: 'art', decidedAt: at(9), supersedes: recordIdOf(auto), appealOf: recordIdOf(appeal) }), 1);
    expect(observationOf([auto, sample, blind, appeal, granted])).toMatchObject({ answered: true, openAppeals: 0, observation: { automated: 'REJECTED', human: 'REJECTED', source: 'blind', category: 'Explicit' } });
    expect(observationOf([auto, sample, appeal, granted])).toMatchObject({ observation: { human: 'APPROVED', source: 'appeal' } });
    expect(observationOf([auto, sample, appeal])).toEqual({ answered: false, openAppeals: 1 });
    const held = automated('REVIEW');
    const human = item(humanRecord(held, { status: 'APPROVED', reviewer: 'dana', reason: 'ok', decidedAt: at(3), supersedes: recordIdOf(held) }), 1);
    expect(observationOf([held, human]).observation).toBeUndefined();
  });
});
