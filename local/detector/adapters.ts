/**
 * Custom moderation adapters at the local detector (docs/local-runtime.md, "Custom moderation
 * adapters"). There is no adapter to train here: the classifier answers the same whatever adapter is
 * named. What the endpoint does reproduce is what the pipeline depends on:
 * - a ProjectVersion that is not a project version ARN is refused as Rekognition refuses it
 *   (ValidationException, the same constraint message);
 * - a well-formed one is echoed in the response's `ProjectVersion`, as Rekognition names the adapter
 *   it used;
 * - an adapter listed as expired (the endpoint's `expiredAdapters` option, or
 *   $MODERATION_EXPIRED_ADAPTERS, comma-separated, read on every request so a test can change it) is
 *   answered as Rekognition answers an expired one: by the base model, without `ProjectVersion`.
 */
import { PROJECT_VERSION_ARN, PROJECT_VERSION_MAX_LENGTH, PROJECT_VERSION_MIN_LENGTH } from '../../functions/lib/adapter.ts';
// A cycle with server.ts, harmless: DetectorError is only used when a request is served.
import { DetectorError } from './server.ts';

/** Comma-separated project version ARNs the local detector treats as expired. */
export const EXPIRED_ADAPTERS_ENV = 'MODERATION_EXPIRED_ADAPTERS';

/** The adapters treated as expired: the option's, plus those in $MODERATION_EXPIRED_ADAPTERS now. */
export function expiredAdapters(configured?: Iterable<string>): Set<string> {
  const fromEnv = (process.env[EXPIRED_ADAPTERS_ENV] ?? '')
    .split(',')
    .map((arn) => arn.trim())
    .filter(Boolean);
  return new Set([...(configured ?? []), ...fromEnv]);
}

/**
 * The response's adapter part for a request's ProjectVersion: `{ ProjectVersion }` echoed, or nothing
 * (no adapter asked for, or an expired one: the base model answered). Throws what Rekognition throws
 * for a malformed one.
 */
export function adapterAnswer(projectVersion: unknown, expired: Set<string>): { ProjectVersion?: string } {
  if (projectVersion === undefined || projectVersion === null) return {};
  if (typeof projectVersion !== 'string') throw new DetectorError('SerializationException', 'ProjectVersion must be a string');
  if (projectVersion.length < PROJECT_VERSION_MIN_LENGTH || projectVersion.length > PROJECT_VERSION_MAX_LENGTH || !PROJECT_VERSION_ARN.test(projectVersion)) {
    throw new DetectorError(
      'ValidationException',
      `1 validation error detected: Value '${projectVersion}' at 'projectVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: ${PROJECT_VERSION_ARN.source}`,
    );
  }
  return expired.has(projectVersion) ? {} : { ProjectVersion: projectVersion };
}
