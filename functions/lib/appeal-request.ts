/**
 * The `Moderation Appeal Request`: how the upload platform files an uploader's appeal of a rejection
 * with the pipeline (docs/events.md, "Appeals from the platform"). The same JSON object arrives either
 * as the body of a message the platform sends to the appeal queue, or as the `detail` of an EventBridge
 * event (detail-type `Moderation Appeal Request`) that a rule puts on that queue; one handler
 * (functions/appeal-intake.ts) files it like `moderation appeal` does (functions/store/appeals.ts).
 *
 * Versioned like the decision event: schemas/moderation-appeal.v1.json is this shape as a JSON Schema
 * (test/unit/appeal-request.test.ts checks that the two agree). A change of shape is a new version.
 */
import { z } from 'zod';
import { MalformedMessageError } from './errors.ts';

export const APPEAL_REQUEST_SCHEMA_VERSION = '1';
/** EventBridge's detail-type of an appeal request. */
export const APPEAL_REQUEST_DETAIL_TYPE = 'Moderation Appeal Request';
/** The `source` appeal request events must carry when the deployer sets none (`appeals.source`). */
export const DEFAULT_APPEAL_SOURCE = 'upload-platform.appeals';
/** The repository path of the JSON Schema of this version. */
export const APPEAL_REQUEST_SCHEMA_FILE = 'schemas/moderation-appeal.v1.json';
/** The appeal intake's own dead-letter queue (malformed requests go there at once, with the reason). */
export const APPEAL_DEAD_LETTER_QUEUE_URL_ENV = 'APPEAL_DEAD_LETTER_QUEUE_URL';
/** At most this many characters of message (functions/store/appeals.ts' MAX_APPEAL_MESSAGE_CHARS is this limit). */
export const APPEAL_REQUEST_MAX_MESSAGE_CHARS = 1000;

/** Version 1 of the appeal request (its JSON Schema: schemas/moderation-appeal.v1.json). */
export const AppealRequestV1Schema = z.strictObject({
  schemaVersion: z.literal(APPEAL_REQUEST_SCHEMA_VERSION),
  /** The rejected image's job id, as its `Moderation Decision` event says (`jobId`). */
  jobId: z.string().regex(/^[0-9a-f]{40}$/, 'must be a job id: 40 lower-case hex characters, as the decision event carries it'),
  /** The uploader's message: why the image should not be rejected. */
  message: z
    .string()
    .max(APPEAL_REQUEST_MAX_MESSAGE_CHARS, `must be at most ${APPEAL_REQUEST_MAX_MESSAGE_CHARS} characters`)
    .refine((m) => m.trim().length > 0, 'must not be empty'),
  /** The platform's own id for this request (logged with the outcome, to match them up). */
  requestId: z.string().min(1).max(128).optional(),
});

export type AppealRequestV1 = z.infer<typeof AppealRequestV1Schema>;

/**
 * The appeal request in an SQS message body: the request itself, or an EventBridge event whose detail
 * is one (a rule that forwards the whole event). Anything else is a MalformedMessageError that says
 * what was wrong: it cannot be fixed by a retry.
 */
export function parseAppealRequest(body: string): AppealRequestV1 {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new MalformedMessageError(`not JSON: an appeal request is a JSON object (${APPEAL_REQUEST_SCHEMA_FILE})`);
  }
  if (isObject(raw) && raw['detail-type'] !== undefined && isObject(raw.detail)) {
    if (raw['detail-type'] !== APPEAL_REQUEST_DETAIL_TYPE) throw new MalformedMessageError(`an EventBridge event of detail-type ${JSON.stringify(raw['detail-type'])}, not "${APPEAL_REQUEST_DETAIL_TYPE}"`);
    raw = raw.detail;
  }
  const parsed = AppealRequestV1Schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(the request)'}: ${issue.message}`);
  throw new MalformedMessageError(`not a ${APPEAL_REQUEST_DETAIL_TYPE} (${APPEAL_REQUEST_SCHEMA_FILE}): ${problems.join('; ')}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
