/**
 * Measured quality: how often people agree with the automated decisions. Pure: the sampling choice,
 * the Wilson score interval, and the agreement report over observations (cli/quality.ts reads them
 * from the decision history; docs/console.md, "Measured quality").
 *
 * Two kinds of observation:
 * - a **blind answer**: a share of the automated APPROVED and REJECTED decisions (the pipeline
 *   setting `qualitySampleRate`, default 0.01) also enter the review queue, where a reviewer answers
 *   Approve or Reject without seeing the verdict. These are a random sample: their agreement rate
 *   estimates the automation's.
 * - an **appeal outcome**: a human decision on an automated APPROVED/REJECTED image (today: the
 *   outcome of an uploader's appeal of a rejection). One that differs is an override. Appeals are not
 *   random (uploaders appeal what they think is wrong), so the report gives the blind figures apart.
 * Human decisions on images held for review (REVIEW) are not observations: there was no verdict to
 * agree with.
 */
import { createHash } from 'node:crypto';

/** The statuses a person can agree or disagree with. */
export type JudgedStatus = 'APPROVED' | 'REJECTED';

/** z for a two-sided 95 % interval (the 0.975 quantile of the standard normal). */
export const Z_95 = 1.959963984540054;

/** Bumped only if the sampling derivation changes (then a redelivery could choose differently). */
const SAMPLING_SCHEME = 'quality-sample/v1';

/**
 * Whether a job is in the quality sample at this rate: the first 32 bits of SHA-256 over the job id,
 * as a fraction of 2^32, below the rate. A function of the job id alone, so a redelivery or a replay
 * of the job makes the same choice; independent of the status index's shard (a different hash).
 */
export function isQualitySampled(jobId: string, rate: number): boolean {
  if (!(rate > 0)) return false;
  const fraction = createHash('sha256').update(`${SAMPLING_SCHEME}|${jobId}`).digest().readUInt32BE(0) / 2 ** 32;
  return fraction < rate;
}

/** A valid sample rate (0 to 1), or undefined. */
export function parseSampleRate(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const trimmed = text.trim();
  const value = trimmed.endsWith('%') ? Number(trimmed.slice(0, -1)) / 100 : Number(trimmed);
  return Number.isFinite(value) && value >= 0 && value <= 1 ? value : undefined;
}

export interface Interval {
  low: number;
  high: number;
}

/**
 * The Wilson score interval for a proportion (`successes` of `trials`), 95 % by default. Unlike the
 * normal approximation it stays within [0, 1] and is sensible for small samples and for rates near
 * 0 or 1 (agreement rates usually are). Undefined for no trials.
 */
export function wilsonInterval(successes: number, trials: number, z = Z_95): Interval | undefined {
  if (!Number.isInteger(trials) || trials <= 0) return undefined;
  if (!Number.isInteger(successes) || successes < 0 || successes > trials) throw new RangeError(`successes must be an integer from 0 to ${trials}, got ${successes}`);
  const p = successes / trials;
  const z2 = z * z;
  const denominator = 1 + z2 / trials;
  const center = (p + z2 / (2 * trials)) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials));
  // Rounding can put an end a hair outside [0, 1] at p = 0 or 1.
  return { low: Math.max(0, center - half), high: Math.min(1, center + half) };
}

/** One person's judgement of one automated decision. */
export interface QualityObservation {
  jobId: string;
  /** What the automation decided. */
  automated: JudgedStatus;
  /** The top-level category of the label that decided it (none: approved with no label at a threshold). */
  category?: string;
  /** What the person said. */
  human: JudgedStatus;
  /** A blind answer to a quality sample, or the outcome of an appeal. */
  source: 'blind' | 'appeal';
}

export interface Agreement {
  /** Observations. */
  checked: number;
  agreed: number;
  /** agreed / checked; undefined without observations. */
  rate?: number;
  /** The 95 % Wilson score interval of the rate. */
  ci?: Interval;
}

export interface AgreementRow extends Agreement {
  /** 'all', a status (APPROVED, REJECTED) or a category ('(no label)' for approvals without one). */
  name: string;
  /** The blind answers alone: the unbiased estimate. */
  blind: Agreement;
  /** Appeal outcomes that differ from the automated decision. */
  overrides: number;
}

export interface AgreementReport {
  overall: AgreementRow;
  byStatus: AgreementRow[];
  byCategory: AgreementRow[];
}

/** The category row name of an observation without a category. */
export const NO_CATEGORY = '(no label)';

/**
 * Agreement per status and per category, with counts and 95 % Wilson intervals. One observation per
 * job: when a job has both a blind answer and an appeal outcome, give only the blind answer (the
 * caller, cli/quality.ts, does). Rows are sorted by name; statuses always appear (possibly empty).
 */
export function agreementReport(observations: readonly QualityObservation[]): AgreementReport {
  const row = (name: string, subset: readonly QualityObservation[]): AgreementRow => ({
    name,
    ...agreement(subset),
    blind: agreement(subset.filter((o) => o.source === 'blind')),
    overrides: subset.filter((o) => o.source === 'appeal' && o.human !== o.automated).length,
  });
  const statuses: JudgedStatus[] = ['APPROVED', 'REJECTED'];
  const categories = [...new Set(observations.map((o) => o.category ?? NO_CATEGORY))].sort((a, b) => a.localeCompare(b));
  return {
    overall: row('all', observations),
    byStatus: statuses.map((status) => row(status, observations.filter((o) => o.automated === status))),
    byCategory: categories.map((category) => row(category, observations.filter((o) => (o.category ?? NO_CATEGORY) === category))),
  };
}

function agreement(subset: readonly QualityObservation[]): Agreement {
  const checked = subset.length;
  const agreed = subset.filter((o) => o.human === o.automated).length;
  return checked ? { checked, agreed, rate: agreed / checked, ci: wilsonInterval(agreed, checked) } : { checked, agreed };
}
