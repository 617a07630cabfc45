/**
 * The domain's shared vocabulary: what flows through the workflow and what lands in the
 * decision history. Pure types; nothing here knows about AWS SDK clients.
 */
import type { AdapterUse } from './adapter.ts';
import type { AnalysisSummary } from './analysis.ts';
import type { Tag } from './tags.ts';

export type { AdapterUse } from './adapter.ts';
export type { AnalysisSummary } from './analysis.ts';

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
  /**
   * A rule over DetectLabels, DetectText or DetectFaces (functions/lib/analysis-policy.ts) says why in
   * its own words (e.g. "possible minor: ..."); the record's reason is this sentence.
   */
  reason?: string;
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
  /** The name of the policy that judged it: the live set's routed policy (functions/policy-source.ts). */
  policyName?: string;
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
   * Set (with verdict APPROVE, no Rekognition call) when the object is the copy a granted appeal
   * restored from quarantine, with the very bytes the reviewer approved: that decision carries over.
   */
  restoredFrom?: { jobId: string; recordId: string; decidedBy: string };
  /**
   * Set when these very bytes were decided before under the same policy version (APPROVED, REJECTED or
   * UNUSABLE), or the image is a near-duplicate of one REJECTED under it: that job's latest decision
   * carries over, with no Rekognition call (functions/content-reuse.ts).
   */
  reusedFrom?: ReusedDecision;
  /**
   * SHA-256 of the object's bytes and its perceptual hash (when informative): what the record step
   * indexes so that the next upload of these bytes, or of a near-duplicate of a rejected image, is not
   * judged again (functions/store/content-index.ts).
   */
  fingerprint?: Fingerprint;
  /**
   * Set (with verdict BORDERLINE) when only a human may decide: an SVG, or an animation whose frames
   * could not all be judged. Nothing automatic (contextual review included) may approve it.
   */
  holdReason?: string;
  /** The policy named a custom moderation adapter: what Rekognition answered with (functions/lib/adapter.ts). */
  adapter?: AdapterUse;
  /**
   * DetectLabels / DetectFaces / DetectText results (bounded), when the policy or --analyze asked for
   * them; `missing` names those that failed (functions/analysis.ts, functions/lib/analysis.ts).
   */
  analysis?: AnalysisSummary;
  /**
   * Identical bytes repeating an earlier decision: the labels DetectLabels found in them then, for the
   * label tags (no call was made for this job, so they are not its analysis).
   */
  repeatedLabels?: { name: string; confidence: number }[];
  /**
   * The label tags the apply step writes (functions/lib/tags.ts): what the policy's `objectTags`
   * makes of this detection's labels or the repeated ones; [] when the policy asks for none. Absent
   * when it asks but there are no labels to make them from (a restored copy, DetectLabels failed):
   * the object keeps the label tags it has. Not recorded: they say what the image shows, which the
   * record's analysis says already.
   */
  objectTags?: Tag[];
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
  /** The judged frames at review or reject level: what a contextual review must look at (frames.ts framesAsJpeg). */
  flagged?: number[];
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
  /**
   * A job decided before (a redelivery, a replay after a failed Apply): the label tags its automated
   * record's labels make under the policy in force (detect, functions/lib/tags.ts), for the apply step.
   */
  objectTags?: Tag[];
  /** Set by the apply step: what was done to the object. */
  applied?: AppliedAction;
  error?: CaughtError;
}

/** What the apply step did to the uploaded object. */
export interface AppliedAction {
  /** `restored`: a granted appeal brought the object back from quarantine (functions/lib/apply-decision.ts). */
  action: 'tagged' | 'quarantined' | 'restored' | 'skipped';
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

/**
 * Which part of a job's history a record is: its automated decision, a human's, or a failure (the
 * decisions); or an uploader's appeal of a rejection, a quality sample's queue entry, or a
 * reviewer's blind answer to one (not decisions: they never change what stands, and get no
 * decision event). See docs/architecture.md, "The decision record".
 */
export type RecordKind = 'automated' | 'human' | 'failure' | 'appeal' | 'sample' | 'blind';

/** The kinds of record that decide (or fail to decide) a job: the others are appeals and quality measurements. */
export const DECISION_KINDS: readonly RecordKind[] = ['automated', 'human', 'failure'];

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
  /** The policy's name (its `name`, or the preset's), when known at the time of the decision. */
  policyName?: string;
  modelVersion?: string;
  /** The custom moderation adapter the policy asked for, the one Rekognition answered with, and whether it had expired. */
  adapter?: AdapterUse;
  /** Labels, faces and text found by the analyses the policy asked for (bounded; docs/architecture.md, "Labels, text and faces"). */
  analysis?: AnalysisSummary;
  /** Animations and multi-page files: the frame count, the frames judged and the one that decided. */
  frames?: FrameSummary;
  reason?: string;
  llm?: { modelId: string; decision: ReviewDecision; reason: string; categories: string[]; inputTokens?: number; outputTokens?: number };
  error?: CaughtError;
  timings: { detectMs?: number; reviewMs?: number; totalMs?: number };
  estimatedCostUsd: number;
  executionId?: string;
  /** For human decisions: the record they supersede (its record id, `<pk>|<sk>`). */
  supersedes?: string;
  /** For human decisions: the status of the record they supersede (the decision event's previousStatus). */
  previousStatus?: DecisionStatus;
  /**
   * Automated APPROVED/REJECTED decisions chosen for blind quality sampling (functions/lib/quality.ts):
   * the job also enters the review queue, where a reviewer answers without seeing this verdict.
   */
  qualitySample?: boolean;
  /** An appeal (kind `appeal`): the record id of the REJECTED decision it contests. */
  contests?: string;
  /** A human decision on an appeal (its outcome): the appeal's record id. */
  appealOf?: string;
  /** A granted appeal: SHA-256 (hex) of the bytes approved, so the restored copy is recognised (functions/restored-upload.ts). */
  contentSha256?: string;
  /** A quality sample's queue entry or blind answer (kinds `sample`, `blind`): the sampled automated record's id. */
  sampleOf?: string;
  /** An automated decision on a copy restored from quarantine by a granted appeal: that appeal outcome's record id. */
  restoredFrom?: string;
  /** An automated decision that repeats an earlier job's (identical bytes, or a near-duplicate of a rejected image): that job's id. */
  reusedFrom?: string;
}

/** What an upload's bytes are, for reuse (functions/content-reuse.ts). */
export interface Fingerprint {
  /** SHA-256 of the whole object, hex. */
  contentHash: string;
  /** 64-bit perceptual hash, hex (functions/lib/perceptual-hash.ts); absent for files too flat or not decodable. */
  perceptualHash?: string;
}

/** An earlier decision that an upload repeats (Detection.reusedFrom). */
export interface ReusedDecision {
  jobId: string;
  /** The record that stood when it was reused (`<pk>|<sk>`): the job's latest decision. */
  recordId: string;
  status: 'APPROVED' | 'REJECTED' | 'UNUSABLE';
  decidedBy: string;
  /** `identical`: the same SHA-256; `near-duplicate`: a perceptual hash within `distance` bits of a REJECTED image's. */
  match: 'identical' | 'near-duplicate';
  distance?: number;
  /** The earlier decision's reason. */
  reason?: string;
}

/** A decision as stored and read back: with the table's keys (see functions/store/table-schema.ts). */
export interface DecisionRecord extends Decision {
  pk: string;
  sk: string;
  /** GSI keys. */
  imageKey: string;
  statusShard: string;
  /** byUploader's key: the uploader, on records that are not APPROVED only (table-schema.ts). */
  uploaderKey?: string;
}
