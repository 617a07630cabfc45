/**
 * The verdict with the analyses: what the policy's labels, text and child-safety rules
 * (analysis-policy.ts) add to the moderation verdict (verdict.ts, frame-verdict.ts). Pure.
 *
 * - Child safety: a face estimated under 18 with a nudity or swimwear moderation label at the rule's
 *   confidence is REJECT, whatever the moderation rules say, with the reason "possible minor". A REJECT
 *   never goes to the LLM (the Route state sends only BORDERLINE) and is never approved automatically.
 *   When the rule applies (such a label is present) but DetectFaces failed, the image is held for a
 *   human (BORDERLINE with a holdReason: no LLM, no automatic approval), short of a REJECT.
 * - Label and text rules: a match at reject level is a REJECT, at review level a BORDERLINE, like a
 *   moderation rule. When DetectLabels or DetectText failed, their rules could not be checked: the
 *   decision is made on the rest, and the record says what is missing (it never blocks the decision).
 * The strongest rule decides: REJECT over BORDERLINE; child safety first, then the moderation rules,
 * then the label and text rules.
 */
import type { AnalysisMatch, AnalysisName, DetectedLabel, DetectedLine } from './analysis-policy.ts';
import { childSafetyTriggers, matchChildSafety, matchLabels, matchText } from './analysis-policy.ts';
import type { Policy } from './policy.ts';
import type { MatchedRule, ModerationLabel, VerdictResult } from './types.ts';

/** What the analyses found (undefined: not run, or failed: see `missing`). */
export interface AnalysisEvidence {
  /** The moderation labels the child-safety rule looks at (the frame DetectFaces looked at). */
  moderationLabels: readonly ModerationLabel[];
  labels?: readonly DetectedLabel[];
  lines?: readonly DetectedLine[];
  faces?: readonly { ageRange?: { low: number; high: number } }[];
  missing?: readonly AnalysisName[];
  reasons?: Partial<Record<AnalysisName, string>>;
}

export interface VerdictWithAnalysis {
  verdict: VerdictResult['verdict'];
  rule?: MatchedRule;
  flagged: MatchedRule[];
  holdReason?: string;
}

export function applyAnalysisRules(base: VerdictWithAnalysis, policy: Policy, evidence: AnalysisEvidence): VerdictWithAnalysis {
  const analysis = policy.analysis;
  const matches: AnalysisMatch[] = [];
  if (evidence.labels) matches.push(...matchLabels(analysis, evidence.labels));
  if (evidence.lines) matches.push(...matchText(analysis, evidence.lines));
  const extra = matches.map(asRule);

  let childSafety: MatchedRule | undefined;
  let hold: string | undefined;
  const triggered = childSafetyTriggers(analysis, evidence.moderationLabels).length > 0;
  if (triggered && evidence.faces) {
    const match = matchChildSafety(analysis, evidence.moderationLabels, evidence.faces);
    if (match) childSafety = asRule(match);
  } else if (triggered) {
    const why = evidence.reasons?.faces ? `: ${evidence.reasons.faces}` : '';
    hold = `the child-safety check could not run (DetectFaces failed${why}) on an image with nudity or swimwear`;
  }

  const flagged = [...(childSafety ? [childSafety] : []), ...base.flagged, ...extra];
  const rejecting = childSafety ?? (base.verdict === 'REJECT' ? base.rule : undefined) ?? extra.find((rule) => rule.action === 'reject');
  if (rejecting) return { verdict: 'REJECT', rule: rejecting, flagged };

  const holdReason = [base.holdReason, hold].filter(Boolean).join('; ') || undefined;
  const reviewing = (base.verdict === 'BORDERLINE' ? base.rule : undefined) ?? extra.find((rule) => rule.action === 'review');
  if (reviewing || holdReason || base.verdict === 'BORDERLINE') {
    const result: VerdictWithAnalysis = { verdict: 'BORDERLINE', flagged, ...(reviewing ? { rule: reviewing } : base.rule ? { rule: base.rule } : {}) };
    if (holdReason) result.holdReason = hold && !base.holdReason ? `${holdReason}; held for a human` : holdReason;
    return result;
  }
  return { ...base, flagged };
}

function asRule(match: AnalysisMatch): MatchedRule {
  return {
    category: match.rule,
    label: match.subject,
    confidence: match.confidence,
    action: match.action,
    ...(match.threshold !== undefined ? { threshold: match.threshold } : {}),
    reason: match.reason,
  };
}
