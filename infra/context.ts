/**
 * Deploy-time settings from CDK context: `npx cdk deploy -c workflowType=STANDARD -c contextualReview=true`,
 * or the "context" block of cdk.json. Values given with -c arrive as strings; cdk.json may hold
 * booleans and numbers. Unknown keys are ignored (CDK's own flags live in the same context).
 */
import type { LogLevel, WorkflowLogLevel } from './pipeline-props.ts';
import type { ModerationStackProps } from './moderation-stack.ts';

export const DEFAULT_STACK_NAME = 'UploadModeration';

/** The context keys this app reads, with what each one sets. */
export const CONTEXT_KEYS = {
  stackName: `CloudFormation stack name (default ${DEFAULT_STACK_NAME}); the CLI's --stack`,
  policy: 'strict | standard | permissive, a path to a YAML/JSON policy file, or the policy itself',
  uploadsPrefix: "key prefix to moderate (default 'uploads/'; '' for the whole bucket)",
  workflowType: 'EXPRESS (default) or STANDARD',
  contextualReview: 'true to send borderline images to Bedrock (default false)',
  reviewModelId: 'Bedrock model or inference profile id for contextual review',
  uploaderPattern: "where the uploader id sits in the key (default 'uploads/{uploader}/')",
  maxConcurrency: 'maximum concurrent ingest invocations, 2-1000 (default 5)',
  batchSize: 'intake messages per ingest invocation (default 10)',
  statusShards: 'write shards of the status index (default 8)',
  qualitySampleRate: 'share (0 to 1) of APPROVED/REJECTED decisions also sent to the review queue for a blind check (default 0.01)',
  logLevel: 'DEBUG | INFO | WARN | ERROR (default WARN; INFO logs a line per step per image, DEBUG also Lambda\'s START/END/REPORT)',
  workflowLogLevel: 'ALL | ERROR | FATAL | OFF: what the state machine logs (default ERROR; ALL logs every state, with execution data for EXPRESS)',
  reuseDecisions: 'false to send every upload to Rekognition, even bytes already decided (default true)',
  alarmTopicArn: 'existing SNS topic for alarm notifications',
  uploadsBucketName: 'existing bucket to moderate instead of creating one',
  servingGate: 'false to leave out the bucket policy that serves only APPROVED objects (default true)',
  events: 'false for no decision events (default true: one Moderation Decision event per record on EventBridge)',
  eventBusName: 'event bus (name or ARN) for the decision events (default: the account default bus)',
  eventSource: "source of the decision events (default 'upload-moderation')",
  flaggedTopic: 'true to send REJECTED and REVIEW decisions to a new SNS topic (default false)',
  webhookUrl: 'https:// URL that gets one POST per decision event (an EventBridge API destination)',
  appeals: 'true to accept the platform\'s appeals: an SQS queue, and Moderation Appeal Request events on the bus (default false)',
  appealSource: "source the appeal request events must have (default 'upload-platform.appeals')",
} as const;

export type ContextKey = keyof typeof CONTEXT_KEYS;

export interface AppSettings extends ModerationStackProps {
  stackName: string;
}

/** Reads the app's settings; throws one error naming every bad value. */
export function settingsFromContext(get: (key: ContextKey) => unknown): AppSettings {
  const problems: string[] = [];
  const text = (key: ContextKey): string | undefined => {
    const value = get(key);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') {
      problems.push(`${key} must be a string, got ${JSON.stringify(value)}`);
      return undefined;
    }
    return value;
  };
  const nonEmpty = (key: ContextKey): string | undefined => {
    const value = text(key);
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const integer = (key: ContextKey): number | undefined => {
    const value = get(key);
    if (value === undefined || value === null || value === '') return undefined;
    const number = typeof value === 'number' ? value : Number(String(value).trim());
    if (!Number.isInteger(number)) {
      problems.push(`${key} must be an integer, got ${JSON.stringify(value)}`);
      return undefined;
    }
    return number;
  };
  const fraction = (key: ContextKey): number | undefined => {
    const value = get(key);
    if (value === undefined || value === null || value === '') return undefined;
    const number = typeof value === 'number' ? value : Number(String(value).trim());
    if (!Number.isFinite(number)) {
      problems.push(`${key} must be a number, got ${JSON.stringify(value)}`);
      return undefined;
    }
    return number;
  };
  const flag = (key: ContextKey): boolean | undefined => {
    const value = get(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value === 'boolean') return value;
    const normalized = String(value).trim().toLowerCase();
    if (['true', 'yes', '1', 'on', 'enabled'].includes(normalized)) return true;
    if (['false', 'no', '0', 'off', 'disabled'].includes(normalized)) return false;
    problems.push(`${key} must be true or false, got ${JSON.stringify(value)}`);
    return undefined;
  };
  const oneOf = <T extends string>(key: ContextKey, allowed: readonly T[]): T | undefined => {
    const value = nonEmpty(key)?.toUpperCase();
    if (value === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(value)) {
      problems.push(`${key} must be one of ${allowed.join(', ')}, got ${JSON.stringify(get(key))}`);
      return undefined;
    }
    return value as T;
  };

  // Undefined unless the context says something about them (the construct's defaults then apply).
  const decisionEvents = () => {
    const on = flag('events');
    const options = { source: nonEmpty('eventSource'), flaggedTopic: flag('flaggedTopic'), webhookUrl: nonEmpty('webhookUrl') };
    if (on === false) return false as const;
    return Object.values(options).some((v) => v !== undefined) ? options : undefined;
  };

  const appealIntake = () => {
    const on = flag('appeals');
    const source = nonEmpty('appealSource');
    if (!on) return on;
    return source ? { source } : true;
  };

  const settings: AppSettings = {
    stackName: nonEmpty('stackName') ?? DEFAULT_STACK_NAME,
    pipeline: {
      policy: nonEmpty('policy'),
      // '' is meaningful here: the whole bucket.
      uploadsPrefix: text('uploadsPrefix'),
      workflowType: oneOf('workflowType', ['EXPRESS', 'STANDARD'] as const),
      contextualReview: flag('contextualReview'),
      reviewModelId: nonEmpty('reviewModelId'),
      uploaderPattern: nonEmpty('uploaderPattern'),
      maxConcurrency: integer('maxConcurrency'),
      batchSize: integer('batchSize'),
      statusShards: integer('statusShards'),
      qualitySampleRate: fraction('qualitySampleRate'),
      logLevel: oneOf<LogLevel>('logLevel', ['DEBUG', 'INFO', 'WARN', 'ERROR']),
      workflowLogLevel: oneOf<WorkflowLogLevel>('workflowLogLevel', ['ALL', 'ERROR', 'FATAL', 'OFF']),
      reuseDecisions: flag('reuseDecisions'),
      servingGate: flag('servingGate'),
      events: decisionEvents(),
      appeals: appealIntake(),
    },
    eventBusName: nonEmpty('eventBusName'),
    alarmTopicArn: nonEmpty('alarmTopicArn'),
    existingUploadsBucketName: nonEmpty('uploadsBucketName'),
  };
  if (problems.length) throw new Error(`invalid CDK context: ${problems.join('; ')}`);
  return settings;
}
