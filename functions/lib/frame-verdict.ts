/**
 * The worst frame decides: one verdict for a file from the verdicts of its judged frames.
 *
 * Each frame's labels get the policy's verdict (decideVerdict); the file's verdict is the worst of
 * them (REJECT over BORDERLINE over APPROVE; among equals, the more confident deciding label, then the
 * earlier frame). A file whose frames were not all covered (frames.ts: too many distinct frames for
 * the policy's animation.maxFrames, or past the decoding budget), or that must be held anyway (an
 * SVG), can be rejected by what was judged but is never approved: short of REJECT it is BORDERLINE
 * with a holdReason, which the record step turns into REVIEW for a human. Pure.
 */
import type { Policy } from './policy.ts';
import type { FrameSummary, ModerationLabel, MatchedRule, VerdictResult } from './types.ts';
import { decideVerdict } from './verdict.ts';

/** One frame's Rekognition answer, normalised (normaliseLabels). */
export interface JudgedFrame {
  index: number;
  labels: ModerationLabel[];
}

/** What frames.ts returned for the file (a FrameSet fits). */
export interface FrameCoverage {
  /** Frames in the file. */
  total: number;
  /** Distinct frames among those decoded. */
  distinct: number;
  /** Every frame judged or identical / near-identical to a judged one. */
  covered: boolean;
  /** Why not (covered: false). */
  reason?: string;
  /** The frames that were to be judged; any left unjudged (other than after a REJECT) leaves the file uncovered. */
  frames?: readonly { index: number }[];
}

export interface CombinedVerdict {
  verdict: VerdictResult['verdict'];
  /** The deciding frame's labels. */
  labels: ModerationLabel[];
  /** The rule that decided, on the deciding frame; absent when nothing reached a review threshold. */
  rule?: MatchedRule;
  /** The deciding frame's flagged labels, strongest first. */
  flagged: MatchedRule[];
  /** Why a human must decide (verdict BORDERLINE); absent when the verdict is the frames' own. */
  holdReason?: string;
  /** Which frames were judged and which decided; absent for a single-frame file. */
  frames?: FrameSummary;
}

const RANK: Record<VerdictResult['verdict'], number> = { APPROVE: 0, BORDERLINE: 1, REJECT: 2 };

/**
 * Combines the judged frames of one file. `hold` is a reason to hold the file for a human whatever
 * its frames show short of REJECT (readiness' `hold`, e.g. for SVG).
 */
export function combineFrameVerdicts(
  judged: readonly JudgedFrame[],
  policy: Policy,
  coverage: FrameCoverage,
  options: { hold?: string } = {},
): CombinedVerdict {
  const verdicts = judged.map((frame) => ({ frame, result: decideVerdict(frame.labels, policy) }));
  let worst: (typeof verdicts)[number] | undefined;
  for (const candidate of verdicts) {
    if (!worst || worse(candidate, worst)) worst = candidate;
  }

  const judgedIndexes = judged.map((frame) => frame.index);
  const done = new Set(judgedIndexes);
  const unjudged = (coverage.frames ?? []).filter((frame) => !done.has(frame.index)).map((frame) => frame.index);
  const frames: FrameSummary | undefined =
    coverage.total > 1
      ? {
          total: coverage.total,
          distinct: coverage.distinct,
          judged: judgedIndexes,
          ...(worst ? { decidingFrame: worst.frame.index } : {}),
          flagged: verdicts.filter((v) => v.result.verdict !== 'APPROVE').map((v) => v.frame.index),
          covered: coverage.covered && unjudged.length === 0 && judged.length > 0,
        }
      : undefined;

  const holds: string[] = [];
  if (options.hold) holds.push(options.hold);
  if (!worst) holds.push('no frame was judged');
  else if (!coverage.covered) holds.push(`not every frame could be judged: ${coverage.reason ?? `${judged.length} of ${coverage.total} frames judged`}`);
  else if (unjudged.length > 0) holds.push(`frame${unjudged.length > 1 ? 's' : ''} ${unjudged.join(', ')} of ${coverage.total} not judged`);

  if (worst && worst.result.verdict === 'REJECT') {
    // Nothing unjudged can make a REJECT milder: the worst frame decides.
    return { verdict: 'REJECT', labels: worst.frame.labels, rule: worst.result.rule, flagged: worst.result.flagged, ...(frames ? { frames } : {}) };
  }
  const base = {
    labels: worst?.frame.labels ?? [],
    ...(worst?.result.rule ? { rule: worst.result.rule } : {}),
    flagged: worst?.result.flagged ?? [],
    ...(frames ? { frames } : {}),
  };
  if (holds.length > 0) return { verdict: 'BORDERLINE', ...base, holdReason: `${holds.join('; ')}; held for a human` };
  return { verdict: worst!.result.verdict, ...base };
}

/** Is `a` a worse frame than `b`? The stronger verdict; then the more confident deciding label; then the earlier frame. */
function worse(
  a: { frame: JudgedFrame; result: VerdictResult },
  b: { frame: JudgedFrame; result: VerdictResult },
): boolean {
  const rank = RANK[a.result.verdict] - RANK[b.result.verdict];
  if (rank !== 0) return rank > 0;
  const confidence = strength(a) - strength(b);
  if (confidence !== 0) return confidence > 0;
  return a.frame.index < b.frame.index;
}

/** The deciding rule's confidence; for an APPROVE, the most confident label (the nearest to a threshold, roughly). */
function strength(entry: { frame: JudgedFrame; result: VerdictResult }): number {
  if (entry.result.rule) return entry.result.rule.confidence;
  return entry.frame.labels.reduce((max, label) => Math.max(max, label.confidence), 0);
}
