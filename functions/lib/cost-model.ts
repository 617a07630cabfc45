/**
 * The monthly cost of the pipeline for a volume of images, by service, from list prices
 * (pricing.ts, transcribed from ../shared/reference/aws-pricing.json on PRICES_AS_OF) and the
 * architecture as the CDK construct configures it. Pure: the state machine definition comes in as
 * data, and every assumption the estimate rests on is returned with it, in words.
 *
 * What is counted, per image:
 * - Rekognition: one DetectModerationLabels, one per judged frame for the animated share (every frame
 *   counts, up to the policy's animation.maxFrames), with the monthly volume tiers applied;
 * - Lambda (arm64): invocations and GB-seconds of ingest (once per SQS batch), detect, record, apply,
 *   and review for the borderline share when contextual review is on;
 * - Step Functions: Express requests + GB-seconds (64 MB, each execution rounded up to 100 ms), or
 *   Standard state transitions counted along the path through statemachine/moderation.asl.json;
 * - SQS: the notification's SendMessage, and the event source's ReceiveMessage and DeleteMessageBatch
 *   per batch, plus the event source's idle long polls (a fixed monthly amount);
 * - DynamoDB: the decision's write units (item size, rounded up per KB) in the table and in every
 *   GSI the item lands in, the content index (the bytes' entry; a rejected image's perceptual hash under
 *   its band keys), and detect's reads (already decided? these bytes decided? a known-bad near-duplicate?);
 * - S3: detect's one GET, Rekognition's GET of the object, GetObjectTagging and tagging or the
 *   quarantine copy, and the review step's GET;
 * - Bedrock: input (image + prompt) and output tokens for the borderline share;
 * - CloudWatch Logs: the state machine's log at its level (ERROR by default: failed states only, none
 *   counted; ALL: every event, with execution data for Express) and the functions' log lines.
 * Repeats (`duplicateRate`: identical bytes, near-duplicates of rejected images) skip Rekognition and
 * review; the estimate then says what they saved. Free tiers are not deducted. Retries and failures
 * are assumed rare (not counted).
 */
import { bedrockPrice, PRICES, PRICES_AS_OF } from './pricing.ts';
import { automatedRecord } from './decision.ts';
import { DECISION_INDEXES, decisionItem, INDEX_PROJECTED_ATTRIBUTES, SORT_BY_TIME, TABLE_KEYS } from '../store/table-schema.ts';
import { REVIEW_SYSTEM_PROMPT, REVIEW_TOOL_SCHEMA, reviewQuestion } from './review-answer.ts';
import { FUNCTION_MEMORY_MB } from './pipeline-settings.ts';
import type { ModerationState } from './types.ts';
import { DEFAULT_ANIMATION_MAX_FRAMES, MAX_ANIMATION_MAX_FRAMES } from './policy.ts';
import { bandKeysForStorage, HASH_BANDS } from './hash-bands.ts';
import { UserFacingError } from './errors.ts';

export type Workflow = 'EXPRESS' | 'STANDARD';

/**
 * The analyses beside moderation (DetectLabels, DetectText, DetectFaces; functions/analysis.ts), each
 * billed per image like moderation: from the policy in force (`--policy`) or `--analyze`.
 */
export interface CostAnalysis {
  labels: boolean;
  text: boolean;
  /** `conditional`: the child-safety rule's DetectFaces, only on images with nudity or swimwear. */
  faces: 'always' | 'conditional' | 'never';
  /** Share of judged images with a nudity or swimwear label at the child-safety rule's confidence (conditional faces). */
  childSafetyShare: number;
}

export const NO_COST_ANALYSIS: CostAnalysis = { labels: false, text: false, faces: 'never', childSafetyShare: 0 };

/** DynamoDB bytes an analysis adds to the decision item (a typical summary: 10 labels, 3 lines of text, a face). */
const ANALYSIS_RECORD_BYTES = { labels: 1_600, text: 300, faces: 350 } as const;
/** Label index items written per image with labels (labels and their parents, at most 20): a typical photo. */
const LABEL_INDEX_ITEMS_PER_IMAGE = 12;

export interface CostInput {
  /** Images moderated per month. */
  images: number;
  /** Share of images the policy finds BORDERLINE (0-1). */
  borderlineRate: number;
  workflow: Workflow;
  /** Contextual review of borderline images with this Bedrock model; null: off (borderline → REVIEW). */
  reviewModelId: string | null;
  /** Share of images REJECTED (moved to quarantine instead of tagged). Default 0.02. */
  rejectRate?: number;
  /** Messages per ingest invocation (the event source's batch size). Default 10. */
  batchSize?: number;
  /** The size of the image the review step sends (after downscaling to 1568 px). Default 1568 × 1045. */
  reviewImage?: { width: number; height: number };
  /** Share of images that are animations or multi-page files (GIF, WebP, APNG, TIFF). Default 0. */
  animatedShare?: number;
  /** DetectModerationLabels calls per animation (judged frames). Default the policy's animation.maxFrames default. */
  framesPerAnimation?: number;
  /**
   * Share of uploads that repeat an earlier decision (0-1): bytes already decided under the policy, or a
   * near-duplicate of a rejected image. They cost no Rekognition call nor review. Default 0.
   */
  duplicateRate?: number;
  /** The state machine's log level (the construct's workflowLogLevel). Default 'ERROR'. */
  workflowLogLevel?: 'ALL' | 'ERROR';
  /** The functions' log level (the construct's logLevel). Default 'WARN'. */
  logLevel?: 'WARN' | 'INFO' | 'DEBUG';
  /** The analyses beside moderation. Default none. */
  analysis?: CostAnalysis;
}

/** A price the estimate uses, with where it comes from. */
export interface PriceSource {
  key: string;
  what: string;
  value: number;
  unit: string;
  sourceKind: 'official' | 'secondary' | 'secondary, unconfirmed';
  source: string;
}

export interface LineItem {
  what: string;
  /** Per month. */
  quantity: number;
  unit: string;
  unitPriceUsd: number;
  monthlyUsd: number;
  price: string;
}

export interface ServiceCost {
  service: string;
  monthlyUsd: number;
  per1000Usd: number;
  items: LineItem[];
}

export interface WorkflowPath {
  name: string;
  /** The states entered, in order. */
  states: string[];
  /** Standard: billed state transitions (one per state entered). */
  transitions: number;
  /** Lambda time on the path, plus per-transition overhead. */
  durationMs: number;
  /** Express: billed duration (rounded up to 100 ms). */
  billedMs: number;
  /** Share of the images that take this path. */
  share: number;
}

/** What repeating earlier decisions saved, against the same month with no repeats. */
export interface ReuseSavings {
  /** Uploads that repeated an earlier decision. */
  reusedImages: number;
  /** DetectModerationLabels calls not made. */
  rekognitionCallsAvoided: number;
  /** The month's cost without any repeat. */
  withoutReuseUsd: number;
  /** withoutReuseUsd minus this estimate's monthly cost. */
  monthlyUsd: number;
  per1000Usd: number;
  /** The saving by service (negative: what reuse adds, e.g. the content index's writes are in both). */
  byService: Record<string, number>;
}

export interface CostEstimate {
  input: Required<Omit<CostInput, 'reviewModelId'>> & { reviewModelId: string | null };
  services: ServiceCost[];
  monthlyUsd: number;
  per1000Usd: number;
  perImageUsd: number;
  paths: WorkflowPath[];
  /** Present when duplicateRate > 0. */
  savings?: ReuseSavings;
  assumptions: string[];
  prices: PriceSource[];
  pricesAsOf: string;
}

export class CostModelError extends UserFacingError {
  override name = 'CostModelError';
}

// ---------------------------------------------------------------------------------------------------
// Assumptions (stated in the output)

/**
 * Memory as the CDK construct configures each function (the same FUNCTION_MEMORY_MB, pipeline-settings.ts),
 * and typical durations: mostly waiting on AWS APIs (I/O), which takes as long at 128 MB as at 1 GB.
 */
export const FUNCTION_PROFILES = {
  ingest: { memoryMb: FUNCTION_MEMORY_MB.ingest, note: 'per batch: starts the executions; with EXPRESS it waits for the slowest one (StartSyncExecution)' },
  detect: {
    memoryMb: FUNCTION_MEMORY_MB.detect,
    durationMs: 700,
    note: 'one GET of the object, the lookups (already decided? these bytes? a known-bad near-duplicate?), header parse, DetectModerationLabels (~0.5 s), plus the perceptual hash (CPU)',
  },
  review: { memoryMb: FUNCTION_MEMORY_MB.review, durationMs: 3000, note: 'GetObject, downscale to 1568 px, Bedrock Converse with a forced tool answer' },
  record: { memoryMb: FUNCTION_MEMORY_MB.record, durationMs: 50, note: 'one conditional PutItem, one PutItem of the content index' },
  apply: { memoryMb: FUNCTION_MEMORY_MB.apply, durationMs: 120, note: 'GetObjectTagging + PutObjectTagging, or HeadObject + CopyObject + DeleteObject for a reject (~250 ms)' },
} as const;

const APPLY_QUARANTINE_MS = 250;
/** Each further DetectModerationLabels call (another frame of an animation) adds this to detect; a repeat saves it. */
const REKOGNITION_CALL_MS = 500;
/**
 * The perceptual hash of a typical upload (a 1600 × 1200 JPEG of ~780 KB) on one full core, measured
 * with `npm run bench:near-duplicates` (docs/performance.md). Lambda gives a full vCPU at 1,769 MB and
 * a proportional share below, so CPU time grows as memory shrinks.
 */
const PERCEPTUAL_HASH_FULL_CORE_MS = 16;
const FULL_VCPU_MB = 1_769;
/** Recording a REJECTED still also stores its perceptual hash under this many band keys (hash-bands.ts), 68 small PutItems. */
const KNOWN_BAD_KEYS_PER_REJECT = bandKeysForStorage('0'.repeat(16)).length;
/** Looking an upload up among the known bad: one Query per band. */
const KNOWN_BAD_QUERIES = HASH_BANDS;
const INGEST_OVERHEAD_MS = 100;
const STANDARD_INGEST_MS = 150;
/** Step Functions' own time per state (scheduling the task, the Choice/Pass states). */
const TRANSITION_OVERHEAD_MS = 25;
const EXPRESS_MEMORY_MB = 64;
const EXPRESS_ROUNDING_MS = 100;
/** Lambda's SQS event source polls with long polls even when idle (at least 5 pollers, 20 s each). */
const IDLE_POLLERS = 5;
const LONG_POLL_SECONDS = 20;
const SECONDS_PER_MONTH = 30 * 86_400;
const REVIEW_OUTPUT_TOKENS = 120;
const CHARS_PER_TOKEN = 4;
/**
 * CloudWatch Logs: bytes per state machine event without data, and the state document with it; per
 * function invocation, by log level: WARN logs nothing on the way of an ordinary image, INFO the
 * handler's one structured line (~600 B), DEBUG that and Lambda's START/END/REPORT lines (~600 B more,
 * and debug lines not counted).
 */
const SFN_EVENT_BYTES = 400;
const STATE_DOCUMENT_BYTES = 2_500;
const LAMBDA_LOG_BYTES_PER_INVOCATION = { WARN: 0, INFO: 600, DEBUG: 1_200 } as const;

// ---------------------------------------------------------------------------------------------------
// Prices with their sources

const REFERENCE = '../shared/reference/aws-pricing.json';

export const PRICE_SOURCES: Record<string, PriceSource> = {
  rekognitionTier1: { key: 'rekognitionTier1', what: 'Rekognition DetectModerationLabels, first 1M images/month', value: PRICES.rekognitionPerImageTiers[0].perImage, unit: 'USD/image', sourceKind: 'secondary', source: 'api-evangelist transcription of aws.amazon.com/rekognition/pricing (worked examples)' },
  rekognitionTier2: { key: 'rekognitionTier2', what: 'Rekognition, next 4M images/month (1M-5M)', value: PRICES.rekognitionPerImageTiers[1].perImage, unit: 'USD/image', sourceKind: 'secondary', source: 'api-evangelist transcription (price confirmed; tier bound commonly cited)' },
  rekognitionTier3: { key: 'rekognitionTier3', what: 'Rekognition, next 30M images/month (5M-35M)', value: PRICES.rekognitionPerImageTiers[2].perImage, unit: 'USD/image', sourceKind: 'secondary', source: 'api-evangelist transcription (price and width confirmed)' },
  rekognitionTier4: { key: 'rekognitionTier4', what: 'Rekognition, over 35M images/month', value: PRICES.rekognitionPerImageTiers[3].perImage, unit: 'USD/image', sourceKind: 'secondary, unconfirmed', source: 'commonly cited; not found in a stored source' },
  lambdaRequest: { key: 'lambdaRequest', what: 'Lambda requests', value: PRICES.lambdaPerRequest, unit: 'USD/request', sourceKind: 'secondary', source: 'cloudchipr.com/blog/aws-lambda-pricing ($0.20 per 1M)' },
  lambdaArmGbSecond: { key: 'lambdaArmGbSecond', what: 'Lambda arm64 duration, first 7.5B GB-s/month', value: PRICES.lambdaArmPerGbSecond, unit: 'USD/GB-s', sourceKind: 'secondary', source: 'cloudchipr.com/blog/aws-lambda-pricing' },
  sfnStandardTransition: { key: 'sfnStandardTransition', what: 'Step Functions Standard state transitions', value: PRICES.stepFunctionsStandardPerTransition, unit: 'USD/transition', sourceKind: 'secondary', source: 'wring.co Step Functions pricing guide ($25 per 1M)' },
  sfnExpressRequest: { key: 'sfnExpressRequest', what: 'Step Functions Express requests', value: PRICES.stepFunctionsExpressPerRequest, unit: 'USD/request', sourceKind: 'secondary', source: 'wring.co Step Functions pricing guide ($1.00 per 1M)' },
  sfnExpressGbSecond: { key: 'sfnExpressGbSecond', what: 'Step Functions Express duration, first tier (64 MB chunks, 100 ms rounding: official)', value: PRICES.stepFunctionsExpressPerGbSecond, unit: 'USD/GB-s', sourceKind: 'secondary', source: 'wring.co Step Functions pricing guide; rounding and 64 MB chunks from aws.amazon.com/step-functions/pricing' },
  sqsRequest: { key: 'sqsRequest', what: 'SQS standard requests (64 KB chunks), first 100B/month', value: PRICES.sqsPerRequest, unit: 'USD/request', sourceKind: 'secondary', source: 'cloudburn.io/blog/amazon-sqs-pricing ($0.40 per 1M)' },
  dynamodbWrite: { key: 'dynamodbWrite', what: 'DynamoDB on-demand write request units (since the 2024-11-01 cut)', value: PRICES.dynamodbPerWriteUnit, unit: 'USD/WRU', sourceKind: 'secondary', source: 'airbyte.com DynamoDB pricing ($0.625 per 1M)' },
  dynamodbRead: { key: 'dynamodbRead', what: 'DynamoDB on-demand read request units', value: PRICES.dynamodbPerReadUnit, unit: 'USD/RRU', sourceKind: 'secondary', source: 'airbyte.com DynamoDB pricing ($0.125 per 1M)' },
  s3Put: { key: 's3Put', what: 'S3 Standard PUT/COPY/POST/LIST and PutObjectTagging requests', value: PRICES.s3PutPerRequest, unit: 'USD/request', sourceKind: 'secondary', source: 'c3x.dev S3 request fees; cloudmaterials.com (tagging at the PUT rate)' },
  s3Get: { key: 's3Get', what: 'S3 Standard GET/HEAD (and GetObjectTagging) requests', value: PRICES.s3GetPerRequest, unit: 'USD/request', sourceKind: 'secondary', source: 'c3x.dev S3 request fees' },
  cloudwatchLogs: { key: 'cloudwatchLogs', what: 'CloudWatch Logs ingestion (Standard class; first tier for vended Lambda logs)', value: PRICES.cloudwatchLogsPerGb, unit: 'USD/GB', sourceKind: 'secondary', source: 'c3x.dev CloudWatch Logs cost guide' },
};

function bedrockSources(modelId: string): PriceSource[] {
  const price = bedrockPrice(modelId);
  if (!price) return [];
  return [
    { key: 'bedrockInput', what: `Bedrock ${modelId} input tokens`, value: price.input / 1000, unit: 'USD/token', sourceKind: 'secondary', source: bedrockSource(modelId) },
    { key: 'bedrockOutput', what: `Bedrock ${modelId} output tokens`, value: price.output / 1000, unit: 'USD/token', sourceKind: 'secondary', source: bedrockSource(modelId) },
  ];
}

function bedrockSource(modelId: string): string {
  return /anthropic/.test(modelId) ? 'langchain Bedrock cost table (Anthropic list price)' : 'atonementlicensing.pages.dev Bedrock pricing 2026 (Nova)';
}

// ---------------------------------------------------------------------------------------------------
// The workflow's paths, from the definition itself

interface AslState {
  Type: string;
  Next?: string;
  End?: boolean;
  Default?: string;
  Choices?: AslRule[];
}

interface AslRule {
  Variable?: string;
  Next?: string;
  And?: AslRule[];
  Or?: AslRule[];
  Not?: AslRule;
  IsPresent?: boolean;
  StringEquals?: string;
  BooleanEquals?: boolean;
}

export interface AslDefinition {
  StartAt: string;
  States: Record<string, AslState>;
}

/**
 * The states an execution enters for this state document, following Choice rules (JSONPath
 * variables with IsPresent, StringEquals, BooleanEquals, And, Or, Not) and each state's Next.
 * Task results are not simulated: the document is what the Choice states will see.
 */
export function pathThrough(definition: AslDefinition, document: unknown): string[] {
  const states: string[] = [];
  let name: string | undefined = definition.StartAt;
  while (name) {
    const state: AslState | undefined = definition.States[name];
    if (!state) throw new CostModelError(`the definition has no state ${name}`);
    states.push(name);
    if (states.length > 100) throw new CostModelError('the path through the definition does not end (a loop?)');
    if (state.Type === 'Succeed' || state.Type === 'Fail' || state.End) break;
    if (state.Type === 'Choice') {
      name = (state.Choices ?? []).find((rule) => matches(rule, document))?.Next ?? state.Default;
      if (!name) throw new CostModelError(`Choice state ${states.at(-1)} has no matching rule and no Default`);
    } else {
      name = state.Next;
    }
  }
  return states;
}

function matches(rule: AslRule, document: unknown): boolean {
  if (rule.And) return rule.And.every((r) => matches(r, document));
  if (rule.Or) return rule.Or.some((r) => matches(r, document));
  if (rule.Not) return !matches(rule.Not, document);
  const value = rule.Variable ? lookup(document, rule.Variable) : undefined;
  if (rule.IsPresent !== undefined) return (value !== undefined) === rule.IsPresent;
  if (rule.StringEquals !== undefined) return value === rule.StringEquals;
  if (rule.BooleanEquals !== undefined) return value === rule.BooleanEquals;
  throw new CostModelError(`unsupported Choice rule ${JSON.stringify(rule)}`);
}

function lookup(document: unknown, path: string): unknown {
  if (!path.startsWith('$.')) return undefined;
  let value: unknown = document;
  for (const part of path.slice(2).split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------
// DynamoDB item size

/** DynamoDB's item size: attribute names and values (strings UTF-8, numbers ~1 byte per 2 digits + 1, maps/lists 3 bytes + 1 per element). */
export function dynamoItemBytes(item: Record<string, unknown>): number {
  let total = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    total += Buffer.byteLength(name) + valueBytes(value);
  }
  return total;
}

function valueBytes(value: unknown): number {
  if (value === null || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number') return Math.ceil(String(Math.abs(value)).replace(/[.\-e+]/g, '').replace(/^0+/, '').length / 2) + 1;
  if (Array.isArray(value)) return 3 + value.reduce<number>((sum, v) => sum + 1 + valueBytes(v), 0);
  if (typeof value === 'object') {
    return 3 + Object.entries(value as Record<string, unknown>).reduce((sum, [k, v]) => (v === undefined ? sum : sum + 1 + Buffer.byteLength(k) + valueBytes(v)), 0);
  }
  return 0;
}

/**
 * Representative decision records: a clean approval (no label at the policy's MinConfidence, what most
 * uploads get), one with three labels and the rule that decided (a rejection, a borderline image), and
 * that one with an LLM review. Each with an execution ARN and a full S3 identity.
 */
export function sampleDecisionItems(reviewModelId: string | null): { clean: number; plain: number; reviewed: number; indexCopy: number } {
  const now = '2026-11-25T12:00:00.000Z';
  const state: ModerationState = {
    job: {
      jobId: 'a'.repeat(40),
      bucket: 'moderation-uploads-123456789012-us-east-1',
      key: 'uploads/u-4821/2026/11/25/3f2a9c1b-photo.jpg',
      versionId: 'Uo3hYzRk4F8tZ1fQmE0oW9xJd2cVbN7p',
      eTag: 'd41d8cd98f00b204e9800998ecf8427e',
      sequencer: '0065F1E2D3C4B5A697',
      size: 482_133,
      uploader: 'u-4821',
      eventTime: now,
      receivedAt: now,
    },
    settings: { contextualReview: reviewModelId ? 'enabled' : 'disabled', executionId: `arn:aws:states:us-east-1:123456789012:express:ModerationWorkflow1A2B3C4D-abcdefgh:${'a'.repeat(40)}-1a2b3c4d:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b` },
    detection: {
      verdict: 'BORDERLINE',
      labels: [
        { name: 'Non-Explicit Nudity of Intimate parts and Kissing', parentName: '', level: 1, confidence: 71.2 },
        { name: 'Non-Explicit Nudity', parentName: 'Non-Explicit Nudity of Intimate parts and Kissing', level: 2, confidence: 71.2 },
        { name: 'Implied Nudity', parentName: 'Non-Explicit Nudity', level: 3, confidence: 68.4 },
      ],
      rule: { category: 'Non-Explicit Nudity of Intimate parts and Kissing', label: 'Implied Nudity', confidence: 68.4, action: 'review', threshold: 60 },
      flagged: [],
      policyVersion: 'standard@3f2a9c1b5d7e',
      modelVersion: '7.0',
      source: 's3-object',
      durationMs: 640,
    },
  };
  const item = (s: ModerationState) => decisionItem(automatedRecord(s, { decidedAt: now }), { shards: 8 }) as unknown as Record<string, unknown>;
  const size = (s: ModerationState) => dynamoItemBytes(item(s));
  const clean = size({ ...state, detection: { ...state.detection!, verdict: 'APPROVE', labels: [], rule: undefined } });
  const plain = size(state);
  // An index's copy: the table's keys, the index's keys and the projected attributes (the largest of the indexes).
  const labelled = item(state);
  const indexCopy = Math.max(
    ...Object.values(DECISION_INDEXES).map((index) =>
      dynamoItemBytes(Object.fromEntries([TABLE_KEYS.partitionKey, TABLE_KEYS.sortKey, SORT_BY_TIME, index.partitionKey, ...INDEX_PROJECTED_ATTRIBUTES].map((name) => [name, labelled[name] ?? labelled.uploader]))),
    ),
  );
  const reviewed = size({
    ...state,
    review: {
      decision: 'APPROVE',
      reason: 'A person in swimwear at a beach; no nudity and nothing sexual, acceptable under the policy.',
      categories: ['Swimwear or Underwear'],
      modelId: reviewModelId ?? 'amazon.nova-lite-v1:0',
      inputTokens: 2_600,
      outputTokens: 110,
      durationMs: 2_800,
    },
  });
  return { clean, plain, reviewed, indexCopy };
}

// ---------------------------------------------------------------------------------------------------
// The estimate

/** Tokens the review step sends: the image (w*h/750, long edge capped at 1568 px) and the prompt text. */
export function reviewInputTokens(image: { width: number; height: number }): { image: number; prompt: number } {
  const scale = Math.min(1, 1568 / Math.max(image.width, image.height));
  const width = Math.round(image.width * scale);
  const height = Math.round(image.height * scale);
  const question = reviewQuestion(
    [{ category: 'Non-Explicit Nudity of Intimate parts and Kissing', label: 'Implied Nudity', confidence: 68.4, action: 'review', threshold: 60 }],
    'standard',
  );
  const promptChars = REVIEW_SYSTEM_PROMPT.length + question.length + JSON.stringify(REVIEW_TOOL_SCHEMA).length + 200; // + tool name/description framing
  return { image: Math.ceil((width * height) / 750), prompt: Math.ceil(promptChars / CHARS_PER_TOKEN) };
}

/** Rekognition's monthly tiers applied to a volume. */
export function rekognitionTiers(images: number, options: { after?: number; api?: string } = {}): LineItem[] {
  // Group 2 APIs share the monthly tiers (reference/aws-pricing.json: each call on an image is an image
  // processed): an analysis' calls start where the calls counted before them (`after`) ended.
  const items: LineItem[] = [];
  const start = options.after ?? 0;
  const end = start + images;
  let from = 0;
  PRICES.rekognitionPerImageTiers.forEach((tier, i) => {
    const quantity = Math.max(0, Math.min(end, tier.upTo) - Math.max(from, start));
    if (quantity > 0) {
      const key = `rekognitionTier${i + 1}`;
      const what = options.api ? `${options.api}, ${PRICE_SOURCES[key]!.what.replace(/^Rekognition( DetectModerationLabels)?, /, '')} (Group 2 tier, shared)` : PRICE_SOURCES[key]!.what;
      items.push({ what, quantity, unit: 'images', unitPriceUsd: tier.perImage, monthlyUsd: quantity * tier.perImage, price: key });
    }
    from = tier.upTo;
  });
  return items;
}

/** The analysis calls of a month: per API, how many images it is called on. */
export function analysisCalls(judgedImages: number, analysis: CostAnalysis): { api: string; calls: number }[] {
  const calls = [
    { api: 'DetectLabels', calls: analysis.labels ? judgedImages : 0 },
    { api: 'DetectText', calls: analysis.text ? judgedImages : 0 },
    { api: analysis.faces === 'conditional' ? 'DetectFaces (child safety)' : 'DetectFaces', calls: analysis.faces === 'always' ? judgedImages : analysis.faces === 'conditional' ? judgedImages * analysis.childSafetyShare : 0 },
  ];
  return calls.filter((call) => call.calls > 0);
}

export function estimateMonthlyCost(rawInput: CostInput, definition: AslDefinition): CostEstimate {
  const input = {
    images: rawInput.images,
    borderlineRate: rawInput.borderlineRate,
    workflow: rawInput.workflow,
    reviewModelId: rawInput.reviewModelId,
    rejectRate: rawInput.rejectRate ?? 0.02,
    batchSize: rawInput.batchSize ?? 10,
    reviewImage: rawInput.reviewImage ?? { width: 1568, height: 1045 },
    animatedShare: rawInput.animatedShare ?? 0,
    framesPerAnimation: rawInput.framesPerAnimation ?? DEFAULT_ANIMATION_MAX_FRAMES,
    duplicateRate: rawInput.duplicateRate ?? 0,
    workflowLogLevel: rawInput.workflowLogLevel ?? ('ERROR' as const),
    logLevel: rawInput.logLevel ?? ('WARN' as const),
    analysis: rawInput.analysis ?? NO_COST_ANALYSIS,
  };
  validate(input);
  const estimate = estimateFor(input, definition);
  if (input.duplicateRate > 0) estimate.savings = savingsAgainst(estimate, estimateFor({ ...input, duplicateRate: 0 }, definition));
  return estimate;
}

function estimateFor(input: CostEstimate['input'], definition: AslDefinition): CostEstimate {
  const N = input.images;
  // Repeats (identical bytes, near-duplicates of rejected images) are judged by nobody: no
  // Rekognition call, no review, a shorter detect. The rest is every other image.
  const judged = 1 - input.duplicateRate;
  // An animation costs one DetectModerationLabels per judged frame, made one after another by detect.
  const extraCallsPerImage = input.animatedShare * (input.framesPerAnimation - 1);
  const hashMs = PERCEPTUAL_HASH_FULL_CORE_MS * Math.max(1, FULL_VCPU_MB / FUNCTION_PROFILES.detect.memoryMb);
  // The analyses run beside moderation (no time added), but the child-safety DetectFaces follows it.
  const childSafetyMs = input.analysis.faces === 'conditional' ? input.analysis.childSafetyShare * REKOGNITION_CALL_MS : 0;
  const detectMs = FUNCTION_PROFILES.detect.durationMs + hashMs + extraCallsPerImage * REKOGNITION_CALL_MS + childSafetyMs;
  const repeatDetectMs = FUNCTION_PROFILES.detect.durationMs - REKOGNITION_CALL_MS + hashMs;
  const review = input.reviewModelId !== null;
  const reviewedShare = review ? input.borderlineRate : 0;
  const price = (key: string) => PRICE_SOURCES[key]!.value;
  let bedrock: { input: number; output: number } | undefined;
  if (review) {
    bedrock = bedrockPrice(input.reviewModelId!);
    if (!bedrock) {
      throw new CostModelError(`no list price for Bedrock model ${input.reviewModelId} (known: ${Object.keys(PRICES.bedrock).join(', ')})`);
    }
  }

  // The paths, from the definition: what the Choice states see for each kind of image.
  const settings = { contextualReview: review ? 'enabled' : 'disabled' };
  const plainStates = pathThrough(definition, { job: {}, settings, detection: { verdict: 'APPROVE' } });
  const borderlineStates = pathThrough(definition, { job: {}, settings, detection: { verdict: 'BORDERLINE' } });
  const lambdaMs = (states: string[], rejectShare: number, detectTime: number) =>
    states.reduce((sum, state) => {
      if (state === 'Detect') return sum + detectTime;
      if (state === 'Review') return sum + FUNCTION_PROFILES.review.durationMs;
      if (state === 'Record') return sum + FUNCTION_PROFILES.record.durationMs;
      if (state === 'Apply') return sum + (1 - rejectShare) * FUNCTION_PROFILES.apply.durationMs + rejectShare * APPLY_QUARANTINE_MS;
      return sum;
    }, 0);
  const plainShare = 1 - reviewedShare;
  const rejectAmongPlain = plainShare > 0 ? Math.min(1, input.rejectRate / plainShare) : 0;
  const makePath = (name: string, states: string[], share: number, rejectShare: number, detectTime = detectMs): WorkflowPath => {
    const durationMs = lambdaMs(states, rejectShare, detectTime) + TRANSITION_OVERHEAD_MS * states.length;
    return { name, states, transitions: states.length, durationMs, billedMs: Math.ceil(durationMs / EXPRESS_ROUNDING_MS) * EXPRESS_ROUNDING_MS, share };
  };
  const firstPath = review ? 'not borderline' : input.duplicateRate > 0 ? 'judged' : 'every image';
  const paths = [makePath(firstPath, plainStates, judged * plainShare, rejectAmongPlain)];
  if (review && reviewedShare > 0) paths.push(makePath('borderline, contextual review', borderlineStates, judged * reviewedShare, 0));
  if (input.duplicateRate > 0) paths.push(makePath('repeat of an earlier decision', plainStates, input.duplicateRate, input.rejectRate, repeatDetectMs));

  const services: ServiceCost[] = [];
  const add = (service: string, items: LineItem[]) => {
    const monthlyUsd = items.reduce((sum, item) => sum + item.monthlyUsd, 0);
    services.push({ service, monthlyUsd, per1000Usd: N ? (monthlyUsd / N) * 1000 : 0, items });
  };
  const item = (what: string, quantity: number, unit: string, key: string, unitPrice = price(key)): LineItem => ({
    what,
    quantity,
    unit,
    unitPriceUsd: unitPrice,
    monthlyUsd: quantity * unitPrice,
    price: key,
  });

  // Rekognition: the judged images, every judged frame of an animation.
  const moderationCalls = N * judged * (1 + extraCallsPerImage);
  const analysisItems: LineItem[] = [];
  let counted = moderationCalls;
  for (const { api, calls } of analysisCalls(N * judged, input.analysis)) {
    analysisItems.push(...rekognitionTiers(calls, { after: counted, api }));
    counted += calls;
  }
  add('Rekognition', [...rekognitionTiers(moderationCalls), ...analysisItems]);

  // Lambda
  const batches = N / input.batchSize;
  const executionMs = paths.reduce((sum, p) => sum + p.share * p.durationMs, 0);
  let ingestMs: number;
  if (input.workflow === 'EXPRESS') {
    // The batch's executions run in parallel; the invocation lasts as long as the slowest.
    const reviewPath = paths.find((p) => p.name.startsWith('borderline'));
    const pBorderlineInBatch = 1 - (1 - judged * reviewedShare) ** input.batchSize;
    const slowest = reviewPath ? pBorderlineInBatch * reviewPath.durationMs + (1 - pBorderlineInBatch) * paths[0]!.durationMs : paths[0]!.durationMs;
    ingestMs = INGEST_OVERHEAD_MS + slowest;
  } else {
    ingestMs = STANDARD_INGEST_MS;
  }
  const invocations = { ingest: batches, detect: N, record: N, apply: N, review: N * judged * reviewedShare };
  const gbSeconds = {
    ingest: batches * (FUNCTION_PROFILES.ingest.memoryMb / 1024) * (ingestMs / 1000),
    detect: N * (FUNCTION_PROFILES.detect.memoryMb / 1024) * ((judged * detectMs + input.duplicateRate * repeatDetectMs) / 1000),
    review: N * judged * reviewedShare * (FUNCTION_PROFILES.review.memoryMb / 1024) * (FUNCTION_PROFILES.review.durationMs / 1000),
    record: N * (FUNCTION_PROFILES.record.memoryMb / 1024) * (FUNCTION_PROFILES.record.durationMs / 1000),
    apply: N * (FUNCTION_PROFILES.apply.memoryMb / 1024) * (((1 - input.rejectRate) * FUNCTION_PROFILES.apply.durationMs + input.rejectRate * APPLY_QUARANTINE_MS) / 1000),
  };
  const lambdaItems: LineItem[] = [];
  for (const step of ['ingest', 'detect', 'review', 'record', 'apply'] as const) {
    if (invocations[step] === 0) continue;
    lambdaItems.push(item(`${step}: invocations`, invocations[step], 'requests', 'lambdaRequest'));
    lambdaItems.push(item(`${step}: compute (${FUNCTION_PROFILES[step].memoryMb} MB arm64)`, gbSeconds[step], 'GB-s', 'lambdaArmGbSecond'));
  }
  add('Lambda', lambdaItems);

  // Step Functions
  if (input.workflow === 'EXPRESS') {
    const billedGbSeconds = paths.reduce((sum, p) => sum + N * p.share * (EXPRESS_MEMORY_MB / 1024) * (p.billedMs / 1000), 0);
    add('Step Functions (Express)', [
      item('executions', N, 'requests', 'sfnExpressRequest'),
      item(`duration at ${EXPRESS_MEMORY_MB} MB, each rounded up to ${EXPRESS_ROUNDING_MS} ms`, billedGbSeconds, 'GB-s', 'sfnExpressGbSecond'),
    ]);
  } else {
    const transitions = paths.reduce((sum, p) => sum + N * p.share * p.transitions, 0);
    add('Step Functions (Standard)', [item(`state transitions (${paths.map((p) => `${p.transitions} on ${p.name}`).join(', ')})`, transitions, 'transitions', 'sfnStandardTransition')]);
  }

  // SQS
  const idlePolls = IDLE_POLLERS * (SECONDS_PER_MONTH / LONG_POLL_SECONDS);
  add('SQS', [
    item('SendMessage (the S3 notification)', N, 'requests', 'sqsRequest'),
    item(`ReceiveMessage (batches of ${input.batchSize})`, batches, 'requests', 'sqsRequest'),
    item(`DeleteMessageBatch (batches of ${input.batchSize})`, batches, 'requests', 'sqsRequest'),
    item(`idle long polls (${IDLE_POLLERS} pollers × ${LONG_POLL_SECONDS} s, fixed)`, idlePolls, 'requests', 'sqsRequest'),
  ]);

  // DynamoDB
  const sizes = sampleDecisionItems(input.reviewModelId);
  const wru = (bytes: number) => Math.ceil(bytes / 1024);
  const categoryShare = Math.min(1, input.borderlineRate + input.rejectRate);
  // Clean approvals carry no label; rejected and held images three; reviewed ones the LLM's answer too.
  const labelledShare = Math.min(1, input.rejectRate + input.borderlineRate - reviewedShare);
  const cleanShare = Math.max(0, 1 - labelledShare - reviewedShare);
  const tableUnits = cleanShare * wru(sizes.clean) + labelledShare * wru(sizes.plain) + reviewedShare * wru(sizes.reviewed);
  // The indexes project keys and the filtered attributes only (table-schema.ts): each copy is one small
  // item. byImage and byStatus hold every record; byUploader every record but APPROVED ones (sparse; at
  // most the rejected and borderline share end otherwise); byCategory only when a rule decided (sparse).
  const notApprovedShare = Math.min(1, input.rejectRate + input.borderlineRate);
  const indexCopies = 2 + notApprovedShare + categoryShare;
  // Held for a person (REVIEW) is never repeated, so its bytes are not indexed; identical repeats are indexed already.
  const heldShare = review ? 0 : input.borderlineRate;
  const contentEntries = N * judged * (1 - heldShare);
  const knownBadWrites = N * judged * input.rejectRate * (1 - input.animatedShare) * KNOWN_BAD_KEYS_PER_REJECT;
  add('DynamoDB', [
    item(
      `decision writes: the table, ${wru(sizes.clean)} WRU for a clean approval (${sizes.clean} B), ${wru(sizes.plain)} with labels (${sizes.plain} B)${review ? `, ${wru(sizes.reviewed)} with a review (${sizes.reviewed} B)` : ''}`,
      N * tableUnits,
      'WRU',
      'dynamodbWrite',
    ),
    item(
      `decision writes: index copies of ${sizes.indexCopy} B (keys + status, uploader, category), ${wru(sizes.indexCopy)} WRU each: byImage + byStatus + byUploader (not APPROVED: ${(notApprovedShare * 100).toFixed(0)}%) + byCategory (${(categoryShare * 100).toFixed(0)}%)`,
      N * indexCopies * wru(sizes.indexCopy),
      'WRU',
      'dynamodbWrite',
    ),
    item('content index: the decided bytes (SHA-256 → job), one small PutItem per judged image', contentEntries, 'WRU', 'dynamodbWrite'),
    ...analysisWrites(N * judged, input.analysis).map((write) => item(write.what, write.units, 'WRU', 'dynamodbWrite')),
    item(`known bad: each rejected still's perceptual hash under ${KNOWN_BAD_KEYS_PER_REJECT} band keys`, knownBadWrites, 'WRU', 'dynamodbWrite'),
    item('detect: already decided? (a consistent Query of the job)', N, 'RRU', 'dynamodbRead'),
    item('detect: these bytes decided? (GetItem, eventually consistent)', N * 0.5, 'RRU', 'dynamodbRead'),
    item(`detect: a known-bad near-duplicate? (${KNOWN_BAD_QUERIES} Queries, eventually consistent)`, N * judged * KNOWN_BAD_QUERIES * 0.5, 'RRU', 'dynamodbRead'),
  ]);

  // S3
  // detect: one GET; Rekognition's GET of a still read by reference; apply: GetObjectTagging (tag) or HeadObject (reject); review: GET.
  const rekognitionGets = N * judged * (1 - input.animatedShare);
  const gets = N * 2 + rekognitionGets + N * judged * reviewedShare;
  // apply: PutObjectTagging (tag) or CopyObject (reject).
  const puts = N;
  add('S3', [
    item('GET: detect (the object, once)', N, 'requests', 's3Get'),
    item('GET: Rekognition reading the object (stills by reference)', rekognitionGets, 'requests', 's3Get'),
    item(`GET: apply GetObjectTagging (HeadObject for rejects)${review ? ', review GetObject' : ''}`, gets - N - rekognitionGets, 'requests', 's3Get'),
    item('PUT class: PutObjectTagging, or CopyObject to quarantine for rejects (DeleteObject is free); the serving gate needs the tag', puts, 'requests', 's3Put'),
  ]);

  // Bedrock
  if (review && bedrock) {
    const tokens = reviewInputTokens(input.reviewImage);
    const reviewed = N * judged * reviewedShare;
    add('Bedrock', [
      item(`input tokens (image ${tokens.image} + prompt ${tokens.prompt} per review)`, reviewed * (tokens.image + tokens.prompt), 'tokens', 'bedrockInput', bedrock.input / 1000),
      item(`output tokens (~${REVIEW_OUTPUT_TOKENS} per review: the tool call)`, reviewed * REVIEW_OUTPUT_TOKENS, 'tokens', 'bedrockOutput', bedrock.output / 1000),
    ]);
  }

  // CloudWatch Logs
  const tasksOn = (states: string[]) => states.filter((s) => definition.States[s]?.Type === 'Task').length;
  const sfnBytes =
    input.workflowLogLevel === 'ALL'
      ? paths.reduce((sum, p) => {
          const events = 2 + 2 * p.states.length + 3 * tasksOn(p.states);
          const perEvent = SFN_EVENT_BYTES + (input.workflow === 'EXPRESS' ? STATE_DOCUMENT_BYTES : 0);
          return sum + N * p.share * events * perEvent;
        }, 0)
      : 0;
  const lambdaInvocations = Object.values(invocations).reduce((a, b) => a + b, 0);
  add('CloudWatch Logs', [
    item(
      input.workflowLogLevel === 'ALL'
        ? `state machine log, level ALL${input.workflow === 'EXPRESS' ? ' with execution data' : ''}`
        : 'state machine log, level ERROR without execution data (failed states only; failures not counted)',
      sfnBytes / 1024 ** 3,
      'GB',
      'cloudwatchLogs',
    ),
    item(
      `function logs at ${input.logLevel}${input.logLevel === 'WARN' ? ' (nothing for an ordinary image)' : input.logLevel === 'INFO' ? ' (one line per invocation)' : ' (a line per invocation and START/END/REPORT)'}`,
      (lambdaInvocations * LAMBDA_LOG_BYTES_PER_INVOCATION[input.logLevel]) / 1024 ** 3,
      'GB',
      'cloudwatchLogs',
    ),
  ]);

  const monthlyUsd = services.reduce((sum, s) => sum + s.monthlyUsd, 0);
  const prices = [
    ...Object.values(PRICE_SOURCES).filter((p) => services.some((s) => s.items.some((i) => i.price === p.key))),
    ...(review ? bedrockSources(input.reviewModelId!) : []),
  ];
  return {
    input,
    services,
    monthlyUsd,
    per1000Usd: N ? (monthlyUsd / N) * 1000 : 0,
    perImageUsd: N ? monthlyUsd / N : 0,
    paths,
    assumptions: [...assumptions(input, paths, ingestMs, executionMs, sizes, hashMs), analysisAssumption(input.analysis)],
    prices,
    pricesAsOf: PRICES_AS_OF,
  };
}

function analysisAssumption(analysis: CostAnalysis): string {
  const apis = analysisCalls(1, analysis);
  if (apis.length === 0) return 'No analysis beside moderation (the policy has no labels, text or child-safety rule; --analyze labels,faces,text or --policy to count them).';
  const what = apis.map(({ api, calls }) => `${api} on ${calls === 1 ? 'every judged image' : `${(calls * 100).toFixed(1)}% of judged images (those with nudity or swimwear: --child-safety-share)`}`).join(', ');
  return `Analyses: ${what}; each call is billed as an image, in the same Group 2 monthly tiers as DetectModerationLabels (counted after it). They run beside moderation (no detect time added), except the child-safety DetectFaces (after it: ${REKOGNITION_CALL_MS} ms on those images); Rekognition also GETs a still read by reference once per call (not counted: $0.0004 per 1,000).`;
}

/** What the analyses add to the decision's writes: a larger item (whole KBs) and the label index's items. */
function analysisWrites(judgedImages: number, analysis: CostAnalysis): { what: string; units: number }[] {
  const writes: { what: string; units: number }[] = [];
  const faceShare = analysis.faces === 'always' ? 1 : analysis.faces === 'conditional' ? analysis.childSafetyShare : 0;
  const extraBytes = (analysis.labels ? ANALYSIS_RECORD_BYTES.labels : 0) + (analysis.text ? ANALYSIS_RECORD_BYTES.text : 0) + faceShare * ANALYSIS_RECORD_BYTES.faces;
  if (extraBytes > 0) writes.push({ what: `analysis summary in the decision item (~${Math.round(extraBytes)} B: ${Math.ceil(extraBytes / 1024)} WRU more, in the table only; the indexes project keys)`, units: judgedImages * Math.ceil(extraBytes / 1024) });
  if (analysis.labels) writes.push({ what: `label index (audit --label): ~${LABEL_INDEX_ITEMS_PER_IMAGE} small PutItems per image (labels and parents, at most 20)`, units: judgedImages * LABEL_INDEX_ITEMS_PER_IMAGE });
  return writes;
}

function savingsAgainst(withReuse: CostEstimate, without: CostEstimate): ReuseSavings {
  const byService: Record<string, number> = {};
  for (const s of without.services) byService[s.service] = s.monthlyUsd - (withReuse.services.find((w) => w.service === s.service)?.monthlyUsd ?? 0);
  const calls = (e: CostEstimate) => e.services.find((s) => s.service === 'Rekognition')!.items.reduce((sum, i) => sum + i.quantity, 0);
  const N = withReuse.input.images;
  const monthlyUsd = without.monthlyUsd - withReuse.monthlyUsd;
  return {
    reusedImages: N * withReuse.input.duplicateRate,
    rekognitionCallsAvoided: calls(without) - calls(withReuse),
    withoutReuseUsd: without.monthlyUsd,
    monthlyUsd,
    per1000Usd: N ? (monthlyUsd / N) * 1000 : 0,
    byService,
  };
}

function validate(input: CostEstimate['input']): void {
  if (!Number.isFinite(input.images) || input.images < 0) throw new CostModelError(`images must be ≥ 0, got ${input.images}`);
  for (const [name, value] of [['borderlineRate', input.borderlineRate], ['rejectRate', input.rejectRate], ['duplicateRate', input.duplicateRate]] as const) {
    if (!Number.isFinite(value) || value < 0 || value > 1) throw new CostModelError(`${name} must be from 0 to 1, got ${value}`);
  }
  if (input.borderlineRate + input.rejectRate > 1) throw new CostModelError('borderlineRate + rejectRate must not exceed 1');
  if (!Number.isInteger(input.batchSize) || input.batchSize < 1 || input.batchSize > 10_000) throw new CostModelError(`batchSize must be 1-10000, got ${input.batchSize}`);
  if (input.workflow !== 'EXPRESS' && input.workflow !== 'STANDARD') throw new CostModelError(`workflow must be EXPRESS or STANDARD, got ${input.workflow}`);
  if (input.workflowLogLevel !== 'ALL' && input.workflowLogLevel !== 'ERROR') throw new CostModelError(`workflowLogLevel must be ALL or ERROR, got ${input.workflowLogLevel}`);
  if (!['WARN', 'INFO', 'DEBUG'].includes(input.logLevel)) throw new CostModelError(`logLevel must be WARN, INFO or DEBUG, got ${input.logLevel}`);
  if (!Number.isFinite(input.animatedShare) || input.animatedShare < 0 || input.animatedShare > 1) {
    throw new CostModelError(`animatedShare must be from 0 to 1, got ${input.animatedShare}`);
  }
  if (!Number.isInteger(input.framesPerAnimation) || input.framesPerAnimation < 1 || input.framesPerAnimation > MAX_ANIMATION_MAX_FRAMES) {
    throw new CostModelError(`framesPerAnimation must be 1-${MAX_ANIMATION_MAX_FRAMES}, got ${input.framesPerAnimation}`);
  }
}

function assumptions(
  input: CostEstimate['input'],
  paths: WorkflowPath[],
  ingestMs: number,
  executionMs: number,
  sizes: { clean: number; plain: number; reviewed: number; indexCopy: number },
  hashMs: number,
): string[] {
  const f = FUNCTION_PROFILES;
  const review = input.reviewModelId !== null;
  const tokens = reviewInputTokens(input.reviewImage);
  const judgedPct = ((1 - input.duplicateRate) * 100).toFixed(1);
  return [
    `List prices, us-east-1, as of ${PRICES_AS_OF} (${REFERENCE}); free tiers not deducted; no retries or failures counted.`,
    input.animatedShare > 0
      ? `Every judged still reaches Rekognition once and each animation (${(input.animatedShare * 100).toFixed(1)}% of images) ${input.framesPerAnimation} times, once per judged frame, ${REKOGNITION_CALL_MS} ms more of detect each (UNUSABLE files that never do are ignored); tiers are applied to the month's ${Math.round(input.images * (1 - input.duplicateRate) * (1 + input.animatedShare * (input.framesPerAnimation - 1))).toLocaleString('en-US')} calls.`
      : `Every judged image reaches Rekognition once (UNUSABLE files that never do are ignored; animations would add a call per judged frame: --animated-share); tiers are applied to the month's volume.`,
    input.duplicateRate > 0
      ? `${(input.duplicateRate * 100).toFixed(1)}% of uploads repeat an earlier decision (bytes already decided under the policy, or a near-duplicate of a rejected image): no Rekognition call, no review, ${REKOGNITION_CALL_MS} ms less of detect; they are recorded and applied like any decision. ${judgedPct}% are judged.`
      : 'No upload repeats an earlier decision (--duplicate-rate: identical bytes and near-duplicates of rejected images skip Rekognition).',
    `${(input.borderlineRate * 100).toFixed(1)}% borderline, ${(input.rejectRate * 100).toFixed(1)}% rejected (quarantined), the rest tagged.`,
    review
      ? `Contextual review on with ${input.reviewModelId}: every judged borderline image goes to Bedrock once.`
      : 'Contextual review off (the construct\'s default): borderline images are held for a human (REVIEW) at no extra AWS cost.',
    `Workflow ${input.workflow}; paths counted from the definition: ${paths.map((p) => `${p.name} (${(p.share * 100).toFixed(1)}%): ${p.states.join(' → ')}`).join('; ')}.`,
    input.workflow === 'EXPRESS'
      ? `Express execution time = the path's Lambda time + ${TRANSITION_OVERHEAD_MS} ms per state, billed at ${EXPRESS_MEMORY_MB} MB rounded up to ${EXPRESS_ROUNDING_MS} ms: ${paths.map((p) => `${p.durationMs.toFixed(0)} → ${p.billedMs} ms`).join(', ')}.`
      : `Standard: one billed transition per state entered (${paths.map((p) => `${p.transitions} ${p.name}`).join(', ')}); ingest calls StartExecution and returns.`,
    `Lambda arm64, memory as the CDK construct sets it (functions/lib/pipeline-settings.ts, sized with npm run bench:detect-memory): ingest ${f.ingest.memoryMb} MB, detect ${f.detect.memoryMb} MB (${f.detect.durationMs} ms: ${f.detect.note}; the hash of a 1600×1200 JPEG takes ${PERCEPTUAL_HASH_FULL_CORE_MS} ms of a full vCPU, ${hashMs.toFixed(0)} ms at ${f.detect.memoryMb} MB), review ${f.review.memoryMb} MB (${f.review.durationMs} ms), record ${f.record.memoryMb} MB (${f.record.durationMs} ms), apply ${f.apply.memoryMb} MB (${f.apply.durationMs} ms, ${APPLY_QUARANTINE_MS} ms for a reject).`,
    input.workflow === 'EXPRESS'
      ? `Ingest: one invocation per batch of ${input.batchSize}; StartSyncExecution waits for the slowest execution of the batch: ~${ingestMs.toFixed(0)} ms per batch (mean execution ${executionMs.toFixed(0)} ms).`
      : `Ingest: one invocation per batch of ${input.batchSize}, ~${ingestMs} ms.`,
    `SQS: 1 SendMessage per image (bodies < 64 KB), 1 ReceiveMessage and 1 DeleteMessageBatch per batch, plus ${IDLE_POLLERS} idle long-polling pollers.`,
    `DynamoDB: a decision item of ~${sizes.clean} B for a clean approval (no label at the policy's MinConfidence), ~${sizes.plain} B with three labels and a rule (rejected, held), ${sizes.reviewed} B with an LLM review; 1 WRU per started KB. Each index the record lands in holds a copy of its keys and the three attributes the audit queries filter on (status, uploader, category: ~${sizes.indexCopy} B, 1 WRU whatever the record's size; audits read the rest from the table): byImage and byStatus always, byUploader unless the record is APPROVED (sparse; counted for every rejected and borderline image, an upper bound), byCategory when a rule decided. The content index: one ~200 B item per judged image (1 WRU), and each rejected still's perceptual hash under ${KNOWN_BAD_KEYS_PER_REJECT} band keys (1 WRU each); none of them is in an index. Detect reads the job (a consistent Query, 1 RRU), the bytes' entry (0.5 RRU) and, for a judged image, ${KNOWN_BAD_QUERIES} band Queries (0.5 RRU each; a band holds a few small items; repeats are counted as identical bytes, which stop before).`,
    'S3: detect GETs the object once (size, ETag and the bytes the header, the SHA-256 and the perceptual hash need; no HEAD, no range GET); Rekognition GETs each judged still it reads by reference; apply makes 1 GET-class (GetObjectTagging, which keeps the uploader\'s own tags) and 1 PUT-class request (PutObjectTagging: the serving gate serves an object only once tagged APPROVED, so this one cannot go); the upload itself is the uploader\'s.',
    ...(review
      ? [`Bedrock: image ${input.reviewImage.width}×${input.reviewImage.height} px ≈ ${tokens.image} tokens (w×h/750 after downscaling to 1568 px; Anthropic's rule, used as an approximation for every model) + ~${tokens.prompt} prompt tokens; ~${REVIEW_OUTPUT_TOKENS} output tokens.`]
      : []),
    (input.workflowLogLevel === 'ALL'
      ? `CloudWatch Logs: state machine level ALL (the construct's workflowLogLevel): ${SFN_EVENT_BYTES} B per event${input.workflow === 'EXPRESS' ? ` + a ${STATE_DOCUMENT_BYTES} B state document (execution data)` : ''}`
      : "CloudWatch Logs: state machine level ERROR without execution data (the construct's default; workflowLogLevel 'ALL' logs every state: --workflow-log-level all), so only failed states are logged, and failures are not counted") +
      `; functions at ${input.logLevel} (the construct's logLevel; --log-level): ${LAMBDA_LOG_BYTES_PER_INVOCATION[input.logLevel]} B per invocation (INFO: the handler's one line, ~${LAMBDA_LOG_BYTES_PER_INVOCATION.INFO} B; DEBUG: also Lambda's START/END/REPORT); ingestion only (storage after the month not counted).`,
  ];
}
