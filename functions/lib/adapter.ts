/**
 * Rekognition custom moderation adapters (docs/deploying.md, "Custom moderation adapters").
 *
 * A policy may name an adapter (`projectVersion`: a project version ARN); the detect step passes it
 * as `ProjectVersion` on every DetectModerationLabels call, each frame of an animation included.
 * Rekognition answers with the adapter it used in the response's `ProjectVersion`. An adapter that
 * has EXPIRED is not an error: Rekognition silently answers with the base model and leaves
 * `ProjectVersion` out. The decision records both, and says `expired` when that happened, so the
 * operator is told (the `AdapterExpired` metric and its alarm) instead of finding out from quality.
 */
import { z } from 'zod';

/**
 * A project version ARN as DetectModerationLabels accepts it (its documented pattern), e.g.
 * arn:aws:rekognition:us-east-1:123456789012:project/my-adapter/version/my-adapter.2026-01-01/1735689600000
 */
export const PROJECT_VERSION_ARN = /^arn:[a-z\d-]+:rekognition:[a-z\d-]+:\d{12}:project\/[a-zA-Z0-9_.-]{1,255}\/version\/[a-zA-Z0-9_.-]{1,255}\/\d+$/;
/** DetectModerationLabels' length constraints on ProjectVersion. */
export const PROJECT_VERSION_MIN_LENGTH = 20;
export const PROJECT_VERSION_MAX_LENGTH = 2048;

const SHAPE = 'arn:<partition>:rekognition:<region>:<account>:project/<project>/version/<version>/<number>';

/** Why `value` is not a project version ARN, or undefined when it is one. */
export function projectVersionProblem(value: unknown): string | undefined {
  const got = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value) : value === undefined ? 'nothing' : JSON.stringify(value);
  const expected = `must be the ARN of a Rekognition custom moderation adapter (${SHAPE})`;
  if (typeof value !== 'string') return `${expected}, got ${got}`;
  if (value.length < PROJECT_VERSION_MIN_LENGTH || value.length > PROJECT_VERSION_MAX_LENGTH || !PROJECT_VERSION_ARN.test(value)) {
    const hint = /^arn:[^:]*:rekognition:[^:]*:\d{12}:project\/[^/]+\/\d+$/.test(value) ? ' (that is a project ARN: name one of its versions)' : '';
    return `${expected}, got ${got}${hint}`;
  }
  return undefined;
}

/** The policy's `projectVersion` field: validated with a message that names the value. */
export const ProjectVersionSchema = z.string({ error: (issue) => projectVersionProblem(issue.input) }).superRefine((value, ctx) => {
  const problem = projectVersionProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** What a decision says about the adapter its policy asked for. */
export interface AdapterUse {
  /** The adapter the policy named (sent as ProjectVersion). */
  requested: string;
  /** The ProjectVersion Rekognition answered with; null when it answered without one (the base model). */
  answered: string | null;
  /** True when at least one call was answered by the base model: the adapter has expired (or was not used). */
  expired: boolean;
}

/**
 * The adapter outcome of one detection from the ProjectVersion of each DetectModerationLabels answer
 * (one per judged frame). Undefined when the policy names no adapter, or when no call was made.
 */
export function adapterOutcome(requested: string | undefined, answered: ReadonlyArray<string | undefined>): AdapterUse | undefined {
  if (!requested || answered.length === 0) return undefined;
  const named = answered.find((value): value is string => typeof value === 'string' && value.length > 0);
  const expired = answered.some((value) => !value);
  return { requested, answered: named ?? null, expired };
}
