/**
 * Handler configuration: environment variable names (set by the CDK construct in AWS and by the
 * local runtime on one machine) and a typed reader. The only place handlers read process.env.
 */
import { DEFAULT_STATUS_SHARDS } from '../store/table-schema.ts';
import { UserFacingError } from './errors.ts';
import { DEFAULT_EVENT_SOURCE } from './decision-event.ts';
import { parseSampleRate } from './quality.ts';
import { AnalysisListError, NO_ANALYSIS, parseAnalysisList, type AnalysisSet } from './analysis-policy.ts';

export const ENV = {
  decisionTable: 'DECISION_TABLE',
  uploadsBucket: 'UPLOADS_BUCKET',
  uploadsPrefix: 'UPLOADS_PREFIX',
  quarantineBucket: 'QUARANTINE_BUCKET',
  uploaderPattern: 'UPLOADER_PATTERN',
  /** A preset name (strict, standard, permissive) or the policy document itself (JSON or YAML). */
  policy: 'MODERATION_POLICY',
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  stateMachineArn: 'STATE_MACHINE_ARN',
  /** EXPRESS (StartSyncExecution) or STANDARD (StartExecution named by the job id). */
  workflowType: 'WORKFLOW_TYPE',
  reviewModelId: 'REVIEW_MODEL_ID',
  statusShards: 'STATUS_SHARDS',
  /** 'true' against emulators that only speak path-style S3 (the local runtime). */
  s3ForcePathStyle: 'S3_FORCE_PATH_STYLE',
  /** The EventBridge bus (name or ARN) the decision events go to (functions/publish-decisions.ts). */
  eventBusName: 'EVENT_BUS_NAME',
  /** The `source` of the decision events. */
  eventSource: 'EVENT_SOURCE',
  /** The share (0 to 1) of automated APPROVED/REJECTED decisions sampled blind for the review queue (functions/lib/quality.ts). */
  qualitySampleRate: 'QUALITY_SAMPLE_RATE',
  /**
   * `off`: every upload goes to Rekognition, even bytes already decided or a near-duplicate of a
   * rejected image (functions/content-reuse.ts). Anything else, or unset: decisions are reused.
   */
  reuseDecisions: 'REUSE_DECISIONS',
  /**
   * The analyses (labels, faces, text: DetectLabels, DetectFaces, DetectText) this deployment enables,
   * comma-separated, or `none` (the construct's `analysis` prop; the local stack's). A policy that
   * needs another is refused by the detect step. Unset: not restricted.
   */
  analysisEnabled: 'ANALYSIS_ENABLED',
  /** Analyses run on every image whatever the policy says (`moderation run|serve --analyze labels,faces,text`). */
  analyze: 'ANALYZE',
  /**
   * The SSM parameter that holds the live policy set (functions/lib/policy-set.ts; docs/operating.md,
   * "Live policy"). Unset: the policy is MODERATION_POLICY, fixed for the container's life.
   */
  policyParameter: 'POLICY_PARAMETER',
  /** How long the detect step trusts its copy of the live policy, 0 to 60 seconds (default 60). */
  policyCacheSeconds: 'POLICY_CACHE_SECONDS',
} as const;

export type WorkflowType = 'EXPRESS' | 'STANDARD';

export interface PipelineConfig {
  decisionTable: string;
  uploadsBucket?: string;
  uploadsPrefix: string;
  quarantineBucket: string;
  uploaderPattern: string;
  policy: string;
  deadLetterQueueUrl: string;
  stateMachineArn: string;
  workflowType: WorkflowType;
  reviewModelId: string;
  statusShards: number;
  s3ForcePathStyle: boolean;
  eventBusName: string;
  eventSource: string;
  qualitySampleRate: number;
  /** Repeat the decision of identical bytes and of near-duplicates of rejected images (default true). */
  reuseDecisions: boolean;
  /** The analyses this deployment enables; undefined: not restricted (functions/analysis.ts). */
  analysisEnabled?: AnalysisSet;
  /** Analyses run on every image whatever the policy says. */
  analyze: AnalysisSet;
  /** The live policy's SSM parameter name; undefined: MODERATION_POLICY is the policy. */
  policyParameter?: string;
  /** Seconds a read of the live policy is trusted (0-60). */
  policyCacheSeconds: number;
}

export const DEFAULTS = {
  uploadsPrefix: 'uploads/',
  uploaderPattern: 'uploads/{uploader}/',
  policy: 'standard',
  workflowType: 'EXPRESS' as WorkflowType,
  reviewModelId: 'amazon.nova-lite-v1:0',
  /**
   * What the construct and `moderation run|serve` set QUALITY_SAMPLE_RATE to unless told otherwise. A
   * handler without the variable samples nothing (readConfig): the setting is the deployment's.
   */
  qualitySampleRate: 0.01,
};

/** A pushed policy is in force everywhere within this many seconds (the detect step's cache of the live policy). */
export const MAX_POLICY_CACHE_SECONDS = 60;

export class ConfigurationError extends UserFacingError {
  override name = 'ConfigurationError';
}

/** Reads the configuration; a setting a handler needs but is missing fails when that handler asks for it. */
export function readConfig(env: Record<string, string | undefined> = process.env): PipelineConfig {
  const workflowType = (env[ENV.workflowType] ?? DEFAULTS.workflowType).toUpperCase();
  if (workflowType !== 'EXPRESS' && workflowType !== 'STANDARD') {
    throw new ConfigurationError(`${ENV.workflowType} must be EXPRESS or STANDARD, got "${workflowType}"`);
  }
  const shards = Number(env[ENV.statusShards] ?? DEFAULT_STATUS_SHARDS);
  if (!Number.isInteger(shards) || shards < 1 || shards > 100) {
    throw new ConfigurationError(`${ENV.statusShards} must be an integer from 1 to 100, got "${env[ENV.statusShards]}"`);
  }
  const qualitySampleRate = parseSampleRate(env[ENV.qualitySampleRate] ?? '0');
  if (qualitySampleRate === undefined) {
    throw new ConfigurationError(`${ENV.qualitySampleRate} must be a number from 0 to 1, got "${env[ENV.qualitySampleRate]}"`);
  }
  const policyCacheSeconds = Number(env[ENV.policyCacheSeconds] ?? MAX_POLICY_CACHE_SECONDS);
  if (!Number.isFinite(policyCacheSeconds) || policyCacheSeconds < 0 || policyCacheSeconds > MAX_POLICY_CACHE_SECONDS) {
    throw new ConfigurationError(`${ENV.policyCacheSeconds} must be a number of seconds from 0 to ${MAX_POLICY_CACHE_SECONDS}, got "${env[ENV.policyCacheSeconds]}"`);
  }
  const analysisList = (key: 'analysisEnabled' | 'analyze'): AnalysisSet | undefined => {
    const value = env[ENV[key]];
    if (value === undefined || (key === 'analyze' && !value.trim())) return undefined;
    try {
      return parseAnalysisList(value, ENV[key]);
    } catch (err) {
      if (err instanceof AnalysisListError) throw new ConfigurationError(err.message);
      throw err;
    }
  };
  const analysisEnabled = analysisList('analysisEnabled');
  const analyze = analysisList('analyze') ?? NO_ANALYSIS;
  return {
    ...(analysisEnabled ? { analysisEnabled } : {}),
    analyze,
    policyParameter: env[ENV.policyParameter]?.trim() || undefined,
    policyCacheSeconds,
    decisionTable: env[ENV.decisionTable] ?? '',
    uploadsBucket: env[ENV.uploadsBucket] || undefined,
    uploadsPrefix: env[ENV.uploadsPrefix] ?? DEFAULTS.uploadsPrefix,
    quarantineBucket: env[ENV.quarantineBucket] ?? '',
    uploaderPattern: env[ENV.uploaderPattern] ?? DEFAULTS.uploaderPattern,
    policy: env[ENV.policy] ?? DEFAULTS.policy,
    deadLetterQueueUrl: env[ENV.deadLetterQueueUrl] ?? '',
    stateMachineArn: env[ENV.stateMachineArn] ?? '',
    workflowType,
    reviewModelId: env[ENV.reviewModelId] ?? DEFAULTS.reviewModelId,
    statusShards: shards,
    s3ForcePathStyle: env[ENV.s3ForcePathStyle] === 'true',
    eventBusName: env[ENV.eventBusName] ?? '',
    eventSource: env[ENV.eventSource] || DEFAULT_EVENT_SOURCE,
    qualitySampleRate,
    reuseDecisions: (env[ENV.reuseDecisions] ?? '').trim().toLowerCase() !== 'off',
  };
}

/** A setting the calling handler cannot work without. */
export function required<K extends keyof PipelineConfig>(config: PipelineConfig, key: K): NonNullable<PipelineConfig[K]> {
  const value = config[key];
  if (value === undefined || value === '') {
    throw new ConfigurationError(`missing setting ${String(key)} (environment variable ${ENV[key as keyof typeof ENV] ?? key})`);
  }
  return value as NonNullable<PipelineConfig[K]>;
}

let handlerSettings: PipelineConfig | undefined;

/**
 * The configuration a handler container works with, read on first use (not at import), so
 * importing a handler module never freezes settings that the caller has yet to set: the local
 * runtime and the CLI import handler code before or after setting the environment.
 */
export function handlerConfig(): PipelineConfig {
  handlerSettings ??= readConfig();
  return handlerSettings;
}
