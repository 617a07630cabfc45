/**
 * The analyses beside moderation: DetectLabels, DetectFaces (Attributes ALL) and DetectText on the
 * image the detect step moderates, only when the policy (or the local --analyze flag) asks
 * (docs/architecture.md, "Labels, text and faces").
 *
 * The detect step starts them together with DetectModerationLabels (Promise.all in one invocation),
 * not as states of their own: no extra Lambda invocation nor state transition, and an Express
 * workflow bills the execution's duration, which the slowest of the parallel calls sets either way.
 * The child-safety rule's DetectFaces is the exception: it runs after moderation, and only when the
 * moderation labels include nudity or swimwear at the rule's confidence (cheaper, and no face of an
 * ordinary upload is analysed).
 *
 * An analysis that still fails after the SDK's retries never fails the step: it is recorded as
 * missing, with the reason, and the moderation decision is made without it.
 */
import { DetectFacesCommand, DetectLabelsCommand, DetectTextCommand, type Image } from '@aws-sdk/client-rekognition';
import { analysisRekognition } from './clients.ts';
import { handlerConfig, ConfigurationError, type PipelineConfig } from './lib/config.ts';
import {
  analysesNotEnabled,
  ANALYSIS_NAMES,
  formatAnalysisList,
  notEnabledMessage,
  type AnalysisName,
  type DetectedLabel,
  type DetectedLine,
  DETECT_LABELS_MIN_CONFIDENCE,
} from './lib/analysis-policy.ts';
import {
  normaliseDetectedLabels,
  normaliseFaces,
  normaliseText,
  summariseFaces,
  summariseLabels,
  summariseText,
  type AnalysisSummary,
} from './lib/analysis.ts';
import type { Policy } from './lib/policy.ts';

/** Which analyses run with moderation on every image, and whether DetectFaces may follow for the child-safety rule. */
export interface AnalysisPlan {
  labels: boolean;
  text: boolean;
  faces: 'always' | 'conditional' | 'never';
}

/** What the analyses found, for the rules (everything) and for the record (bounded). */
export interface AnalysisRun {
  summary: AnalysisSummary;
  labels?: DetectedLabel[];
  lines?: DetectedLine[];
  faces?: { ageRange?: { low: number; high: number } }[];
}

/**
 * The policy needs an analysis this deployment does not enable (the construct's `analysis` prop, or
 * the local stack's): refused, so no job is decided without a rule its policy has. The job fails
 * (FAILED, dead-lettered) and can be replayed once the deployment or the policy is fixed.
 */
export class AnalysisNotEnabledError extends ConfigurationError {
  override name = 'AnalysisNotEnabled';
}

/** What to run for this policy here; throws AnalysisNotEnabledError when the deployment does not enable it. */
export function analysisPlan(policy: Policy, config: Pick<PipelineConfig, 'analyze' | 'analysisEnabled'> = handlerConfig()): AnalysisPlan {
  const forced = config.analyze;
  const enabled = config.analysisEnabled;
  if (enabled) {
    const missing = analysesNotEnabled(policy, enabled);
    if (missing.length) throw new AnalysisNotEnabledError(notEnabledMessage(policy.name, missing, `this deployment (analyses enabled: ${formatAnalysisList(enabled)})`));
    const forcedMissing = ANALYSIS_NAMES.filter((name) => forced[name] && !enabled[name]);
    if (forcedMissing.length) throw new AnalysisNotEnabledError(`--analyze ${forcedMissing.join(',')} asks for analyses this deployment does not enable (${formatAnalysisList(enabled)})`);
  }
  const needs = policy.analysis.needs;
  return {
    labels: needs.labels || forced.labels,
    text: needs.text || forced.text,
    faces: needs.faces === 'always' || forced.faces ? 'always' : needs.faces,
  };
}

/** True when the plan runs anything beside moderation on every image. */
export function runsAlongside(plan: AnalysisPlan): boolean {
  return plan.labels || plan.text || plan.faces === 'always';
}

/** Runs the analyses the plan asks for on every image, together; never throws (a failure is `missing`). */
export async function runAnalyses(image: Image, plan: AnalysisPlan): Promise<AnalysisRun> {
  const run: AnalysisRun = { summary: {} };
  await Promise.all([
    plan.labels ? analyse(run, 'labels', image) : undefined,
    plan.text ? analyse(run, 'text', image) : undefined,
    plan.faces === 'always' ? analyse(run, 'faces', image) : undefined,
  ]);
  return run;
}

/** DetectFaces for the child-safety rule, added to a run (a failure is `missing`). */
export async function addFaces(run: AnalysisRun, image: Image): Promise<AnalysisRun> {
  if (!run.faces && !run.summary.missing?.includes('faces')) await analyse(run, 'faces', image);
  return run;
}

async function analyse(run: AnalysisRun, name: AnalysisName, image: Image): Promise<void> {
  try {
    if (name === 'labels') {
      const response = await analysisRekognition().send(new DetectLabelsCommand({ Image: image, MaxLabels: 100, MinConfidence: DETECT_LABELS_MIN_CONFIDENCE }));
      run.labels = normaliseDetectedLabels(response);
      Object.assign(run.summary, summariseLabels(response));
    } else if (name === 'faces') {
      const response = await analysisRekognition().send(new DetectFacesCommand({ Image: image, Attributes: ['ALL'] }));
      run.faces = normaliseFaces(response);
      Object.assign(run.summary, summariseFaces(response));
    } else {
      const response = await analysisRekognition().send(new DetectTextCommand({ Image: image }));
      run.lines = normaliseText(response);
      Object.assign(run.summary, summariseText(response));
    }
  } catch (err) {
    const e = err as Error;
    const reason = `${e.name || 'Error'}: ${(e.message || String(err)).slice(0, 300)}`;
    run.summary.missing = [...new Set([...(run.summary.missing ?? []), name])].sort((a, b) => ANALYSIS_NAMES.indexOf(a) - ANALYSIS_NAMES.indexOf(b));
    run.summary.reasons = { ...run.summary.reasons, [name]: reason };
  }
}
