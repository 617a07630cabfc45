/**
 * The `Moderation Decision` event: one per record of the decision history (automated, human,
 * failure), built by one pure function for both places it is published (docs/events.md):
 * - on AWS, by the function on the decision table's DynamoDB stream (functions/publish-decisions.ts),
 *   to Amazon EventBridge;
 * - locally, by the embedded runtime's stream on the table (local/decision-events.ts), to the outbox
 *   under the data directory and from there to a signed webhook.
 *
 * The schema is versioned in the repository: schemas/moderation-decision.v1.json is this type as a
 * JSON Schema (test/unit/decision-event.test.ts validates events against it). Any change to the
 * shape, even an added field, is a new version (a v2 file beside v1, `schemaVersion: "2"`).
 */
import { createHash } from 'node:crypto';
import { DECISION_KINDS, type DecisionRecord, type DecisionStatus, type MatchedRule, type ModerationLabel, type RecordKind } from './types.ts';
import { kindOfSortKey, recordIdOf } from '../store/table-schema.ts';
import { ModerationError } from './errors.ts';

export const DECISION_EVENT_SCHEMA_VERSION = '1';
/** EventBridge's detail-type of every decision event. */
export const DECISION_EVENT_DETAIL_TYPE = 'Moderation Decision';
/** EventBridge's source when the deployer sets none (`events.source`). */
export const DEFAULT_EVENT_SOURCE = 'upload-moderation';
/** The repository path of the JSON Schema of this version. */
export const DECISION_EVENT_SCHEMA_FILE = 'schemas/moderation-decision.v1.json';
/** The statuses a person should look at: the optional SNS topic of the construct gets these. */
export const FLAGGED_STATUSES: readonly DecisionStatus[] = ['REJECTED', 'REVIEW'];
/** How many labels an event carries (the strongest first); the record in the table has them all. */
export const EVENT_TOP_LABELS = 5;
/** A reason longer than this is cut (an event stays far below EventBridge's 256 KB). */
export const EVENT_REASON_MAX_CHARS = 2000;

/** Which kind of record the event tells: the pipeline's decision, a person's, or a failure. */
export type DecisionEventType = RecordKind;

export interface DecisionEventLabel {
  name: string;
  /** '' for a top-level category. */
  parentName: string;
  level: 1 | 2 | 3;
  /** 0-100. */
  confidence: number;
}

export interface DecisionEventRule {
  /** The policy category that matched ('*' for the policy's default). */
  category: string;
  label: string;
  confidence: number;
  action: 'reject' | 'review' | 'allow';
  threshold: number | null;
}

/** Version 1 of the `Moderation Decision` event (its JSON Schema: schemas/moderation-decision.v1.json). */
export interface ModerationDecisionEventV1 {
  schemaVersion: typeof DECISION_EVENT_SCHEMA_VERSION;
  /**
   * The event's id, the same however often it is delivered: SHA-256 (hex) of the record id
   * `<pk>|<sk>`. Consumers deduplicate on it.
   */
  id: string;
  type: DecisionEventType;
  /** The record this event tells, as auditors see it: `<pk>|<sk>`. */
  recordId: string;
  jobId: string;
  bucket: string;
  key: string;
  versionId: string | null;
  eTag: string | null;
  uploader: string | null;
  status: DecisionStatus;
  /** For a human decision: the status it overrides. Otherwise null. */
  previousStatus: DecisionStatus | null;
  /** For a human decision: the record id it supersedes. Otherwise null. */
  supersedes: string | null;
  /** `rekognition`, `bedrock:<model>`, `human:<id>` or `policy`. */
  decidedBy: string;
  /** ISO 8601. */
  decidedAt: string;
  reason: string | null;
  /** The strongest labels (at most EVENT_TOP_LABELS), strongest first. */
  labels: DecisionEventLabel[];
  /** The policy rule that decided, if one did. */
  rule: DecisionEventRule | null;
  /** The top-level category of the deciding label. */
  category: string | null;
  policy: { name: string | null; version: string | null };
  modelVersion: string | null;
  /** For a failure: the error's name (e.g. `Throttled`); the reason says more. */
  error: string | null;
  executionId: string | null;
}

export type ModerationDecisionEvent = ModerationDecisionEventV1;

const REQUIRED_FIELDS = ['pk', 'sk', 'jobId', 'bucket', 'key', 'status', 'decidedBy', 'decidedAt'] as const;

/** An item of the decision table that is not a decision record (it cannot be told). */
export class NotADecisionRecordError extends ModerationError {
  override name = 'NotADecisionRecord';
}

/**
 * Whether an item of the table gets an event: the decisions (automated, human, failure) do; an
 * appeal, a quality sample's queue entry and a blind answer are not decisions and get none (an
 * appeal's outcome is a human decision, and gets its event).
 */
export function hasDecisionEvent(record: Pick<DecisionRecord, 'sk'> & { kind?: RecordKind }): boolean {
  return DECISION_KINDS.includes(record.kind ?? kindOfSortKey(record.sk));
}

/** The event id of a record: SHA-256 (hex) of `<pk>|<sk>`, stable across redeliveries and re-publishing. */
export function decisionEventId(record: Pick<DecisionRecord, 'pk' | 'sk'>): string {
  return createHash('sha256').update(recordIdOf(record)).digest('hex');
}

/**
 * The event for one record. `previous` is the record a human decision overrides (its status becomes
 * `previousStatus`); without it, the status the record itself keeps (`previousStatus`, written by
 * humanRecord) is used, so a stream consumer that sees only the new image gets the same event.
 */
export function decisionEvent(record: DecisionRecord, previous?: Pick<DecisionRecord, 'status'>): ModerationDecisionEventV1 {
  const missing = REQUIRED_FIELDS.filter((field) => typeof record[field] !== 'string' || record[field] === '');
  if (missing.length) throw new NotADecisionRecordError(`not a decision record (no ${missing.join(', ')}): no event`);
  const kind: DecisionEventType = record.kind ?? kindOfSortKey(record.sk);
  if (!hasDecisionEvent(record)) throw new NotADecisionRecordError(`a record of kind ${kind} is not a decision: no event`);
  return {
    schemaVersion: DECISION_EVENT_SCHEMA_VERSION,
    id: decisionEventId(record),
    type: kind,
    recordId: recordIdOf(record),
    jobId: record.jobId,
    bucket: record.bucket,
    key: record.key,
    versionId: record.versionId ?? null,
    eTag: record.eTag ?? null,
    uploader: record.uploader ?? null,
    status: record.status,
    previousStatus: kind === 'human' ? (previous?.status ?? record.previousStatus ?? null) : null,
    supersedes: kind === 'human' ? (record.supersedes ?? null) : null,
    decidedBy: record.decidedBy,
    decidedAt: record.decidedAt,
    reason: record.reason ? cut(record.reason, EVENT_REASON_MAX_CHARS) : null,
    labels: topLabels(record.labels ?? []),
    rule: record.rule ? ruleOf(record.rule) : null,
    category: record.category ?? null,
    policy: { name: record.policyName ?? null, version: record.policyVersion ?? null },
    modelVersion: record.modelVersion ?? null,
    error: kind === 'failure' ? (record.error?.Error ?? null) : null,
    executionId: record.executionId ?? null,
  };
}

/** The PutEvents entry of an event: detail-type `Moderation Decision`, the deployer's source, the record's time. */
export function eventBridgeEntry(event: ModerationDecisionEventV1, options: { source: string; eventBusName: string }) {
  return {
    Source: options.source,
    DetailType: DECISION_EVENT_DETAIL_TYPE,
    Detail: JSON.stringify(event),
    EventBusName: options.eventBusName,
    Time: new Date(event.decidedAt),
  };
}

function topLabels(labels: ModerationLabel[]): DecisionEventLabel[] {
  return [...labels]
    .sort((a, b) => b.confidence - a.confidence)
    .slice(0, EVENT_TOP_LABELS)
    .map((l) => ({ name: l.name, parentName: l.parentName ?? '', level: l.level, confidence: l.confidence }));
}

function ruleOf(rule: MatchedRule): DecisionEventRule {
  return { category: rule.category, label: rule.label, confidence: rule.confidence, action: rule.action, threshold: rule.threshold ?? null };
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
