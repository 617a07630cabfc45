/**
 * The domain's shared vocabulary: what flows through the workflow and what lands in the
 * decision history. Pure types; nothing here knows about AWS SDK clients.
 */

/** A level in the Rekognition moderation taxonomy (model 7 has three). */
export type TaxonomyLevel = 1 | 2 | 3;

/** One moderation label as Rekognition returns it, normalised to the model-7 taxonomy. */
export interface ModerationLabel {
  name: string;
  /** '' for a top-level (L1) category. */
  parentName: string;
  level: TaxonomyLevel;
  /** 0-100, as Rekognition reports it. */
  confidence: number;
}

/** What the detect step concludes from the labels and the policy. */
export type Verdict = 'APPROVE' | 'REJECT' | 'BORDERLINE' | 'UNUSABLE';

/** What the contextual reviewer (Bedrock) answers; ESCALATE means "a human decides". */
export type ReviewDecision = 'APPROVE' | 'REJECT' | 'ESCALATE';

/** Terminal status of an object version in the decision history. */
export type DecisionStatus = 'APPROVED' | 'REJECTED' | 'REVIEW' | 'UNUSABLE' | 'FAILED';

export const DECISION_STATUSES: readonly DecisionStatus[] = ['APPROVED', 'REJECTED', 'REVIEW', 'UNUSABLE', 'FAILED'];

/**
 * One unit of moderation work: an object version to decide. The job id is the idempotency key:
 * the same object version delivered twice (S3 and SQS are at-least-once) has the same id.
 */
export interface Job {
  jobId: string;
  bucket: string;
  key: string;
  versionId?: string;
  eTag?: string;
  sequencer?: string;
  size?: number;
  /** From the configured key pattern, e.g. `uploads/{uploader}/...`; absent when the key does not match. */
  uploader?: string;
  /** S3 event time (ISO 8601). */
  eventTime: string;
  /** When the pipeline accepted the job (ISO 8601). */
  receivedAt: string;
}

/** A policy rule as it applies to one label: which rule (by category name) and its thresholds. */
export interface MatchedRule {
  /** The policy category that matched (the most specific rule on the label's path), or '*' for the default. */
  category: string;
  /** The label the rule applied to. */
  label: string;
  confidence: number;
  action: 'reject' | 'review' | 'allow';
  /** The threshold that was reached (absent for allow). */
  threshold?: number;
}

/** The outcome of applying a policy to a set of labels. */
export interface VerdictResult {
  verdict: Exclude<Verdict, 'UNUSABLE'>;
  /** The rule that decided it; absent for an APPROVE with no label at review level. */
  rule?: MatchedRule;
  /** Every label that reached review or reject level, strongest first. */
  flagged: MatchedRule[];
}

/** Output of the detect step. */
export interface Detection {
  verdict: Verdict;
  labels: ModerationLabel[];
  rule?: MatchedRule;
  flagged: MatchedRule[];
  /** Why the image could not be moderated (UNUSABLE only). */
  unusableReason?: string;
  policyVersion: string;
  modelVersion?: string;
  /** What Rekognition was given: the S3 object itself or converted bytes. */
  source: 's3-object' | 'converted-bytes';
  /** Why the upload was converted before detection (format, size, dimensions). */
  conversion?: string;
  /** Set when the object version is gone or replaced: there is nothing to tag or quarantine. */
  objectState?: 'missing' | 'superseded';
  contentType?: string;
  width?: number;
  height?: number;
  /** Animations and multi-page files: which frames Rekognition judged, and which one decided. */
  frames?: FrameSummary;
  /**
   * Set (with verdict BORDERLINE) when only a human may decide: an SVG, or an animation whose frames
   * could not all be judged. Nothing automatic (contextual review included) may approve it.
   */
  holdReason?: string;
  durationMs: number;
}

/** What was judged of a file with several frames (animated GIF, WebP, APNG; multi-page TIFF, HEIF). */
export interface FrameSummary {
  /** Frames in the file. */
  total: number;
  /** Frames with distinct pixels among those decoded. */
  distinct: number;
  /** The frames sent to Rekognition (one DetectModerationLabels call each), by index. */
  judged: number[];
  /** The frame whose verdict is the file's: the worst one. */
  decidingFrame?: number;
  /** True when every frame was judged or has the same (or near-identical) pixels as a judged one. */
  covered: boolean;
}

/** Output of the contextual review step. */
export interface Review {
  decision: ReviewDecision;
  reason: string;
  categories: string[];
  modelId: string;
  inputTokens?: number;
  outputTokens?: number;
  durationMs: number;
}

/** The error a Catch puts on the state ($.error). */
export interface CaughtError {
  Error: string;
  Cause?: string;
}

/**
 * The workflow's state document. Every task receives it whole and returns it with its own part
 * added (OutputPath $.Payload), so the record step sees everything that happened.
 */
export interface ModerationState {
  job: Job;
  /** Set by the Configure state: deploy-time settings and the execution id (for the record). */
  settings?: { contextualReview: string; executionId?: string };
  detection?: Detection;
  review?: Review;
  /** Set by the Catch on the review step: contextual review was unavailable (fail closed to REVIEW). */
  reviewError?: CaughtError;
  decision?: RecordOutcome;
  /** Set by the apply step: what was done to the object. */
  applied?: AppliedAction;
  error?: CaughtError;
}

/** What the apply step did to the uploaded object. */
export interface AppliedAction {
  action: 'tagged' | 'quarantined' | 'skipped';
  detail: string;
  quarantineKey?: string;
}

/** What the record step reports. */
export interface RecordOutcome {
  status: DecisionStatus;
  decidedBy: string;
  decidedAt: string;
  /** True when this job already had a decision: nothing was written and nothing must be applied. */
  duplicate: boolean;
}

/** Which part of a job's history a record is: its automated decision, a human's, or a failure. */
export type RecordKind = 'automated' | 'human' | 'failure';

/**
 * One entry of the decision history as the domain builds it. Append-only: a later human decision is
 * a new entry, never an overwrite. The decision store adds the table's keys (functions/store/).
 */
export interface Decision {
  kind: RecordKind;
  jobId: string;
  bucket: string;
  key: string;
  versionId?: string;
  eTag?: string;
  /** With eTag, identifies the object version in an unversioned bucket (the job id's input). */
  sequencer?: string;
  uploader?: string;
  status: DecisionStatus;
  /** `rekognition`, `bedrock:<model>`, `human:<id>` or `policy` */
  decidedBy: string;
  decidedAt: string;
  labels: ModerationLabel[];
  rule?: MatchedRule;
  /** The top-level category of the deciding label (sparse GSI key). */
  category?: string;
  policyVersion?: string;
  modelVersion?: string;
  reason?: string;
  llm?: { modelId: string; decision: ReviewDecision; reason: string; categories: string[]; inputTokens?: number; outputTokens?: number };
  error?: CaughtError;
  timings: { detectMs?: number; reviewMs?: number; totalMs?: number };
  estimatedCostUsd: number;
  executionId?: string;
  /** For human decisions: the record they supersede (its record id, `<pk>|<sk>`). */
  supersedes?: string;
}

/** A decision as stored and read back: with the table's keys (see functions/store/table-schema.ts). */
export interface DecisionRecord extends Decision {
  pk: string;
  sk: string;
  /** GSI keys. */
  imageKey: string;
  statusShard: string;
}
