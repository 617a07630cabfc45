/**
 * The dashboard's figures, read through the decision store, the dead-letter queue's attributes and
 * the cost model (the same estimate as `moderation cost`, fed with this month's observed volume and
 * rates). It reads the records of the window (at most DASHBOARD_MAX_RECORDS, newest first): at the
 * volume of a large platform that is a sample of the latest records, and the page says so.
 */
import { readFileSync } from 'node:fs';
import { iterateDecisions } from '../audit.ts';
import { listPendingReviews } from '../human-review.ts';
import { queueDepth, type QueueDepth } from '../dlq.ts';
import { estimateMonthlyCost, type AslDefinition, type CostEstimate } from '../../functions/lib/cost-model.ts';
import { DEFINITION_FILE } from '../../functions/lib/pipeline-settings.ts';
import { DECISION_KINDS, DECISION_STATUSES, type DecisionStatus } from '../../functions/lib/types.ts';
import type { ConsoleTarget } from './queue.ts';

export const DASHBOARD_DAYS = 14;
export const DASHBOARD_MAX_RECORDS = 20_000;
const DAY_MS = 86_400_000;

export interface DayCounts {
  /** YYYY-MM-DD (UTC). */
  day: string;
  counts: Record<DecisionStatus, number>;
  total: number;
}

export interface Dashboard {
  now: Date;
  days: DayCounts[];
  /** Top-level categories of the labels that decided REJECTED and REVIEW images, most first. */
  categories: { category: string; count: number }[];
  backlog: { count: number; capped: boolean; oldestWaitingMs: number };
  dlq: QueueDepth | { error: string };
  cost: MonthCost | { error: string };
  /** The window held more records than were read. */
  sampled: boolean;
  recordsRead: number;
}

export interface MonthCost {
  /** Images the pipeline decided this month so far (automated decisions). */
  images: number;
  borderlineRate: number;
  rejectRate: number;
  reviewModelId: string | null;
  /** The estimate for this month's images so far. */
  toDate: CostEstimate;
  /** At this month's rate so far, for the whole month. */
  projectedImages: number;
  projected: CostEstimate;
}

const BACKLOG_LIMIT = 1_000;

export async function loadDashboard(target: ConsoleTarget, now: Date = new Date()): Promise<Dashboard> {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const windowStart = new Date(today - (DASHBOARD_DAYS - 1) * DAY_MS);
  const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const since = new Date(Math.min(windowStart.getTime(), monthStart.getTime()));

  const days = new Map<string, DayCounts>();
  for (let t = windowStart.getTime(); t <= today; t += DAY_MS) {
    const day = new Date(t).toISOString().slice(0, 10);
    days.set(day, { day, counts: Object.fromEntries(DECISION_STATUSES.map((s) => [s, 0])) as Record<DecisionStatus, number>, total: 0 });
  }
  const categories = new Map<string, number>();
  const month = { images: 0, borderline: 0, rejected: 0, reviewModelId: null as string | null };
  let recordsRead = 0;
  for await (const record of iterateDecisions(target, { since, until: now, order: 'newest', max: DASHBOARD_MAX_RECORDS })) {
    recordsRead += 1;
    // Appeals and quality samples are not decisions (their REVIEW status is the queue's).
    if (!DECISION_KINDS.includes(record.kind)) continue;
    const at = Date.parse(record.decidedAt);
    const bucket = days.get(record.decidedAt.slice(0, 10));
    if (bucket && at >= windowStart.getTime()) {
      bucket.counts[record.status] += 1;
      bucket.total += 1;
      if (record.kind === 'automated' && record.category && (record.status === 'REJECTED' || record.status === 'REVIEW')) {
        categories.set(record.category, (categories.get(record.category) ?? 0) + 1);
      }
    }
    if (record.kind === 'automated' && at >= monthStart.getTime()) {
      month.images += 1;
      if (record.status === 'REVIEW' || record.llm) month.borderline += 1;
      if (record.status === 'REJECTED') month.rejected += 1;
      if (record.llm && !month.reviewModelId) month.reviewModelId = record.llm.modelId;
    }
  }

  const [backlog, dlq] = await Promise.all([
    listPendingReviews(target, { order: 'oldest', limit: BACKLOG_LIMIT + 1, now }).then((pending) => ({
      count: Math.min(pending.length, BACKLOG_LIMIT),
      capped: pending.length > BACKLOG_LIMIT,
      oldestWaitingMs: pending[0]?.waitingMs ?? 0,
    })),
    queueDepth(target, target.names.deadLetterQueueUrl).catch((err: Error) => ({ error: err.message })),
  ]);

  return {
    now,
    days: [...days.values()],
    categories: [...categories].map(([category, count]) => ({ category, count })).sort((a, b) => b.count - a.count || a.category.localeCompare(b.category)).slice(0, 8),
    backlog,
    dlq,
    cost: monthCost(month, now, monthStart),
    sampled: recordsRead >= DASHBOARD_MAX_RECORDS,
    recordsRead,
  };
}

function monthCost(month: { images: number; borderline: number; rejected: number; reviewModelId: string | null }, now: Date, monthStart: Date): MonthCost | { error: string } {
  try {
    const definition = JSON.parse(readFileSync(DEFINITION_FILE, 'utf8')) as AslDefinition;
    const borderlineRate = month.images ? month.borderline / month.images : 0;
    const rejectRate = month.images ? month.rejected / month.images : 0;
    const daysInMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0)).getUTCDate();
    const elapsedDays = Math.max((now.getTime() - monthStart.getTime()) / DAY_MS, 1 / 24);
    const projectedImages = Math.round(month.images * Math.max(1, daysInMonth / elapsedDays));
    const estimate = (images: number) =>
      estimateMonthlyCost({ images, borderlineRate, rejectRate, workflow: 'EXPRESS', reviewModelId: month.reviewModelId }, definition);
    return {
      images: month.images,
      borderlineRate,
      rejectRate,
      reviewModelId: month.reviewModelId,
      toDate: estimate(month.images),
      projectedImages,
      projected: estimate(projectedImages),
    };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
