/**
 * How throughput follows the settings, and which limit comes next. Pure arithmetic over Little's
 * law, checked against the local load runs (docs/reliability.md, Throttling; docs/performance.md,
 * The scale model):
 *
 *   executions in flight  = maxConcurrency × batchSize        (Express: each ingest call waits for its batch)
 *   attempted calls / s   = in flight ÷ seconds per execution
 *   decisions / s         = min(Rekognition quota, attempted, every other limit below)
 *
 * The other limits, each with the request rate it implies: Lambda concurrency (detect, record and
 * apply run one after another inside an execution, so concurrent functions ≈ executions in flight,
 * plus the ingest calls), DynamoDB's per-partition write rate on the busiest index partition (one
 * very active uploader: the byUploader partition takes every one of their decisions), and Step
 * Functions' execution start rate. SQS standard queues have no practical throughput limit here.
 */

export interface ScaleInput {
  /** Rekognition DetectModerationLabels transactions per second (the account's quota in the Region). */
  rekognitionTps: number;
  /** The SQS event source's maximum concurrency (ingest invocations at once). */
  maxConcurrency: number;
  /** Messages per ingest invocation. */
  batchSize: number;
  /** Seconds one execution takes when nothing is throttled (measured: ~0.4 s locally, ~0.7 s on AWS). */
  executionSeconds: number;
  /** Rekognition calls per image (1; more for animations judged frame by frame). */
  callsPerImage?: number;
  /** The account's Lambda concurrency available to this pipeline (default 1,000, the default account quota). */
  lambdaConcurrency?: number;
  /** Share of all decisions made for the single most active uploader (0-1). */
  hottestUploaderShare?: number;
  /** Write units one decision takes in an index partition (item size rounded up per KB). */
  writeUnitsPerDecision?: number;
  /** Step Functions Express start rate quota per second (StartSyncExecution). */
  executionStartRate?: number;
}

export type Limit = 'rekognition quota' | 'concurrency (maxConcurrency × batchSize)' | 'Lambda concurrency' | 'hot uploader partition' | 'Step Functions start rate';

export interface ScaleEstimate {
  executionsInFlight: number;
  /** Decisions per second each limit allows on its own. */
  ceilings: Record<Limit, number>;
  /** What the pipeline sustains: the lowest ceiling. */
  decisionsPerSecond: number;
  /** The ceiling that binds. */
  limitedBy: Limit;
  /** The one after it: what to raise next. */
  nextLimit: Limit;
  /**
   * The maxConcurrency that keeps the quota busy without a retry storm: ⌈quota × seconds per
   * execution × 1.2 ÷ batchSize⌉ (20 % headroom; measured: 98 % of the quota at this size, 77 % at 4×).
   */
  recommendedMaxConcurrency: number;
  /** Attempted Rekognition calls per second over the quota (> 1: requests are throttled and retried). */
  oversubscription: number;
}

/** DynamoDB's documented per-partition write throughput (1,000 write units per second). */
export const PARTITION_WRITE_UNITS_PER_SECOND = 1_000;

export function estimateScale(input: ScaleInput): ScaleEstimate {
  for (const [name, value] of Object.entries(input)) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
  const callsPerImage = input.callsPerImage ?? 1;
  const inFlight = input.maxConcurrency * input.batchSize;
  const attemptedCalls = inFlight / input.executionSeconds;
  const ceilings: Record<Limit, number> = {
    'rekognition quota': input.rekognitionTps / callsPerImage,
    'concurrency (maxConcurrency × batchSize)': attemptedCalls,
    // Each execution holds one step function at a time, and each ingest call holds one more.
    'Lambda concurrency': ((input.lambdaConcurrency ?? 1_000) - input.maxConcurrency) / input.executionSeconds,
    'hot uploader partition': PARTITION_WRITE_UNITS_PER_SECOND / (input.writeUnitsPerDecision ?? 2) / (input.hottestUploaderShare ?? 0.01),
    'Step Functions start rate': input.executionStartRate ?? 6_000,
  };
  const ordered = (Object.entries(ceilings) as Array<[Limit, number]>).sort((a, b) => a[1] - b[1]);
  return {
    executionsInFlight: inFlight,
    ceilings,
    decisionsPerSecond: ordered[0]![1],
    limitedBy: ordered[0]![0],
    nextLimit: ordered[1]![0],
    recommendedMaxConcurrency: Math.max(1, Math.ceil((input.rekognitionTps * input.executionSeconds * 1.2) / input.batchSize)),
    oversubscription: (attemptedCalls * callsPerImage) / input.rekognitionTps,
  };
}
