/**
 * "What if this policy had been in force?": the stored labels of past automated decisions replayed
 * through a candidate policy, before anyone deploys it. Pure: the records come in, a report goes out.
 *
 * What it compares is the policy's own part of each decision: APPROVE → APPROVED, REJECT →
 * REJECTED, BORDERLINE → REVIEW. A decision the LLM made on a borderline image counts as REVIEW on
 * the policy's side (the LLM only ever sees what the policy finds borderline), and is reported
 * apart, because under the new policy it would go to the LLM (or a person) again.
 */
import { decideVerdict } from './verdict.ts';
import { topLevelCategory } from './taxonomy.ts';
import type { Policy } from './policy.ts';
import type { Decision, DecisionStatus, Verdict } from './types.ts';

export type PolicyStatus = Extract<DecisionStatus, 'APPROVED' | 'REJECTED' | 'REVIEW'>;

export interface WhatIfChange {
  jobId: string;
  key: string;
  from: PolicyStatus;
  to: PolicyStatus;
  /** The top-level category of the label that decides under the new policy (or decided before). */
  category: string;
  /** The label and confidence behind the new outcome, in words. */
  because: string;
}

export interface WhatIfReport {
  policy: { name: string; version: string; minConfidence: number };
  /** Automated decisions replayed. */
  examined: number;
  /** Left out: no labels to replay (UNUSABLE, FAILED) or a human's decision. */
  skipped: number;
  changed: number;
  /** `<from>→<to>` → count. */
  transitions: Record<string, number>;
  /** Category → how many decisions change (and to what). */
  byCategory: Record<string, { changed: number; toRejected: number; toReview: number; toApproved: number }>;
  /** Borderline decisions the LLM made that the new policy would send to review again. */
  llmDecidedBefore: number;
  /** The policies' MinConfidence differ: labels below the old one were never stored. */
  notes: string[];
  /** Up to `sample` of the changes, for a person to look at. */
  changes: WhatIfChange[];
}

const STATUS_OF: Record<Exclude<Verdict, 'UNUSABLE'>, PolicyStatus> = { APPROVE: 'APPROVED', REJECT: 'REJECTED', BORDERLINE: 'REVIEW' };

/** The policy's part of a stored decision (what the rules said before any LLM or person). */
export function policyStatusOf(record: Pick<Decision, 'status' | 'decidedBy'>): PolicyStatus | undefined {
  if (record.decidedBy.startsWith('bedrock:')) return 'REVIEW';
  return record.status === 'APPROVED' || record.status === 'REJECTED' || record.status === 'REVIEW' ? record.status : undefined;
}

export function whatIf(records: Iterable<Decision>, policy: Policy, options: { sample?: number; storedMinConfidence?: number } = {}): WhatIfReport {
  const report: WhatIfReport = {
    policy: { name: policy.name, version: policy.version, minConfidence: policy.minConfidence },
    examined: 0,
    skipped: 0,
    changed: 0,
    transitions: {},
    byCategory: {},
    llmDecidedBefore: 0,
    notes: [],
    changes: [],
  };
  const sample = options.sample ?? 20;
  let lowestStored = Number.POSITIVE_INFINITY;
  for (const record of records) {
    const before = record.kind === 'automated' ? policyStatusOf(record) : undefined;
    if (!before) {
      report.skipped += 1;
      continue;
    }
    report.examined += 1;
    for (const label of record.labels) lowestStored = Math.min(lowestStored, label.confidence);
    const verdict = decideVerdict(record.labels, policy);
    const after = STATUS_OF[verdict.verdict];
    if (after === before) continue;
    report.changed += 1;
    const transition = `${before}→${after}`;
    report.transitions[transition] = (report.transitions[transition] ?? 0) + 1;
    const label = verdict.rule?.label ?? record.rule?.label;
    const category = (label && (topLevelCategory(label) ?? label)) ?? record.category ?? '(no label)';
    const entry = (report.byCategory[category] ??= { changed: 0, toRejected: 0, toReview: 0, toApproved: 0 });
    entry.changed += 1;
    if (after === 'REJECTED') entry.toRejected += 1;
    else if (after === 'REVIEW') entry.toReview += 1;
    else entry.toApproved += 1;
    if (record.decidedBy.startsWith('bedrock:') && after === 'REVIEW') report.llmDecidedBefore += 1;
    if (report.changes.length < sample) {
      const rule = verdict.rule;
      report.changes.push({
        jobId: record.jobId,
        key: record.key,
        from: before,
        to: after,
        category,
        because: rule ? `${rule.label} ${rule.confidence.toFixed(1)}% → ${rule.action}${rule.threshold !== undefined ? ` at ${rule.threshold}` : ''} (rule "${rule.category}")` : 'no label reaches a review threshold',
      });
    }
  }
  const storedFloor = options.storedMinConfidence;
  if (storedFloor !== undefined && policy.minConfidence < storedFloor) {
    report.notes.push(
      `the new policy looks at labels from ${policy.minConfidence}%, but decisions stored labels only from ${storedFloor}% (the old MinConfidence): labels in between were never recorded, so more images may change than shown`,
    );
  } else if (storedFloor === undefined && Number.isFinite(lowestStored) && policy.minConfidence < lowestStored) {
    report.notes.push(
      `the new policy looks at labels from ${policy.minConfidence}%, and no stored label is below ${lowestStored.toFixed(1)}%: labels below the old MinConfidence were never recorded, so more images may change than shown`,
    );
  }
  return report;
}
