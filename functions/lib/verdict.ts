/**
 * The verdict: what a policy makes of the labels Rekognition returned.
 *
 * REJECT if any label reaches its rule's reject threshold, else BORDERLINE if any reaches its review
 * threshold, else APPROVE. Thresholds are inclusive (a label at exactly 80 meets `reject: 80`).
 */
import type { MatchedRule, ModerationLabel, VerdictResult } from './types.ts';
import { isAllow, ruleFor, type Policy, type PolicyRule } from './policy.ts';
import { labelPath } from './taxonomy.ts';

interface Evaluated {
  label: ModerationLabel;
  /** Canonical path, top-level first; the last element is the label's canonical name. */
  path: string[];
  rule: PolicyRule;
}

export function decideVerdict(labels: readonly ModerationLabel[], policy: Policy): VerdictResult {
  const evaluated: Evaluated[] = labels.map((label) => ({
    label,
    path: labelPath(label.name, label.parentName),
    rule: ruleFor(policy, label.name, label.parentName),
  }));

  const flagged: MatchedRule[] = [];
  const levelOf = new Map<MatchedRule, number>();
  for (const entry of evaluated) {
    if (explainedByDescendant(entry, evaluated)) continue;
    const match = matchRule(entry.label, entry.rule);
    if (match) {
      flagged.push(match);
      levelOf.set(match, entry.label.level);
    }
  }

  // Strongest first: reject before review, then higher confidence, then the deeper (more specific) label.
  flagged.sort(
    (a, b) =>
      actionRank(a) - actionRank(b) ||
      b.confidence - a.confidence ||
      (levelOf.get(b) ?? 0) - (levelOf.get(a) ?? 0) ||
      a.label.localeCompare(b.label),
  );

  const rule = flagged[0];
  if (!rule) return { verdict: 'APPROVE', flagged };
  return { verdict: rule.action === 'reject' ? 'REJECT' : 'BORDERLINE', rule, flagged };
}

/** The rule's outcome for one label, or undefined when the label is below its thresholds (or allowed). */
export function matchRule(label: ModerationLabel, rule: PolicyRule): MatchedRule | undefined {
  if (isAllow(rule)) return undefined;
  const base = { category: rule.category, label: label.name, confidence: label.confidence };
  if (rule.reject !== undefined && label.confidence >= rule.reject) return { ...base, action: 'reject', threshold: rule.reject };
  if (rule.review !== undefined && label.confidence >= rule.review) return { ...base, action: 'review', threshold: rule.review };
  return undefined;
}

/**
 * Rekognition returns a detected label together with its parent chain (L3, its L2, its L1), usually
 * at the same confidence. A parent in that chain is evidence of the child, not of something else, so
 * when the child has its own, more specific rule, the parent's rule must not override it: with
 * `Kissing on the Lips: allow` under a reviewed L1, a kiss is allowed, not held because of the L1.
 *
 * An ancestor is explained when a descendant in the same response has at least its confidence and is
 * governed by a different (hence deeper) rule. An ancestor more confident than all of its descendants
 * still carries evidence they do not explain, so it keeps its own rule: that errs towards flagging.
 */
function explainedByDescendant(ancestor: Evaluated, all: readonly Evaluated[]): boolean {
  const name = ancestor.path[ancestor.path.length - 1];
  const depth = ancestor.path.length;
  return all.some(
    (other) =>
      other !== ancestor &&
      other.path.length > depth &&
      other.path[depth - 1] === name &&
      other.label.confidence >= ancestor.label.confidence &&
      other.rule.category !== ancestor.rule.category,
  );
}

function actionRank(rule: MatchedRule): number {
  return rule.action === 'reject' ? 0 : rule.action === 'review' ? 1 : 2;
}
