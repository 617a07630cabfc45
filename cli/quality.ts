/**
 * Measured quality from the decision history: the blind answers to quality samples and the outcomes
 * of appeals, as observations for functions/lib/quality.ts's agreement report. Read with one query of
 * the status index's REVIEW shards (where sample entries and appeals are, besides the images held for
 * review), then one Query per job found: never a scan of every APPROVED or REJECTED decision.
 */
import { agreementReport, type AgreementReport, type JudgedStatus, type QualityObservation } from '../functions/lib/quality.ts';
import type { DecisionRecord } from '../functions/lib/types.ts';
import { iterateDecisions, type HistoryTarget } from './audit.ts';
import { decisionStoreOf } from './stores.ts';

export interface QualityQuery {
  /** Samples of decisions made, and appeals filed, at or after this time. */
  since?: Date;
  until?: Date;
}

export interface QualityData extends AgreementReport {
  since?: string;
  until?: string;
  /** The observations behind the figures, one per job. */
  observations: QualityObservation[];
  /** Quality samples in the window (answered or not). */
  samples: number;
  /** Samples nobody has answered yet (still in the review queue). */
  unanswered: number;
  /** Appeals filed in the window (decided or not). */
  appeals: number;
  /** Appeals still waiting for a decision. */
  openAppeals: number;
}

const CONCURRENCY = 16;

export async function loadQuality(target: HistoryTarget, query: QualityQuery = {}): Promise<QualityData> {
  const jobs = new Map<string, { sample: boolean; appeals: number }>();
  for await (const record of iterateDecisions(target, { statuses: ['REVIEW'], since: query.since, until: query.until, order: 'oldest' })) {
    if (record.kind !== 'sample' && record.kind !== 'appeal') continue;
    const job = jobs.get(record.jobId) ?? { sample: false, appeals: 0 };
    if (record.kind === 'sample') job.sample = true;
    else job.appeals += 1;
    jobs.set(record.jobId, job);
  }
  const store = decisionStoreOf(target);
  const ids = [...jobs.keys()];
  const observations: QualityObservation[] = [];
  let samples = 0;
  let unanswered = 0;
  let appeals = 0;
  let openAppeals = 0;
  for (let i = 0; i < ids.length; i += CONCURRENCY) {
    const histories = await Promise.all(ids.slice(i, i + CONCURRENCY).map((jobId) => store.jobHistory(jobId)));
    for (const records of histories) {
      const found = jobs.get(records[0]?.jobId ?? '');
      const result = observationOf(records);
      if (found?.sample) {
        samples += 1;
        if (!result.answered) unanswered += 1;
      }
      appeals += found?.appeals ?? 0;
      openAppeals += result.openAppeals;
      if (result.observation) observations.push(result.observation);
    }
  }
  return {
    ...agreementReport(observations),
    ...(query.since ? { since: query.since.toISOString() } : {}),
    ...(query.until ? { until: query.until.toISOString() } : {}),
    observations,
    samples,
    unanswered,
    appeals,
    openAppeals,
  };
}

/**
 * One job's observation: its blind answer if it has one (the unbiased kind), else the outcome of its
 * latest appeal. Only automated APPROVED/REJECTED decisions are judged: a human decision on an image
 * held for review has no verdict to agree with.
 */
export function observationOf(records: DecisionRecord[]): { observation?: QualityObservation; answered: boolean; openAppeals: number } {
  const automated = records.find((r) => r.kind === 'automated');
  const blind = records.find((r) => r.kind === 'blind');
  const outcomes = records.filter((r) => r.kind === 'human' && r.appealOf).sort((a, b) => b.decidedAt.localeCompare(a.decidedAt));
  const decidedAppeals = new Set(outcomes.map((r) => r.appealOf));
  const openAppeals = records.filter((r) => r.kind === 'appeal' && !decidedAppeals.has(`${r.pk}|${r.sk}`)).length;
  const humans = records.some((r) => r.kind === 'human');
  const answered = Boolean(blind) || humans;
  if (!automated || (automated.status !== 'APPROVED' && automated.status !== 'REJECTED')) return { answered, openAppeals };
  const judge = blind ?? outcomes[0];
  if (!judge || (judge.status !== 'APPROVED' && judge.status !== 'REJECTED')) return { answered, openAppeals };
  return {
    answered,
    openAppeals,
    observation: {
      jobId: automated.jobId,
      automated: automated.status,
      ...(automated.category ? { category: automated.category } : {}),
      human: judge.status as JudgedStatus,
      source: blind ? 'blind' : 'appeal',
    },
  };
}

/** A rate as a percentage with one decimal, or '–'. */
export function percent(rate: number | undefined): string {
  return rate === undefined ? '–' : `${(rate * 100).toFixed(1)}%`;
}
