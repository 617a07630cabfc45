/**
 * Where a command works: the embedded local stack (the default), a running `moderation serve`, or
 * a deployed CloudFormation stack (names from its outputs, credentials from the usual AWS chain).
 * Commands get names and ready clients and do not care which.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DEFAULT_STATUS_SHARDS } from '../functions/store/table-schema.ts';
import { DEFAULTS } from '../functions/lib/config.ts';
import { UsageError } from './output.ts';
import { localClientConfig, type LocalEndpoints } from '../local/client-config.ts';

export interface TargetNames {
  uploadsBucket: string;
  uploadsPrefix: string;
  quarantineBucket: string;
  intakeQueueUrl: string;
  deadLetterQueueUrl: string;
  decisionTable: string;
  stateMachineArn?: string;
  statusShards: number;
  /** The live policy's SSM parameter (`moderation policy push|show`); absent on stacks deployed before it existed. */
  policyParameter?: string;
  /** Its SSM tier, Standard (4 KB) or Advanced (8 KB). */
  policyParameterTier?: string;
  /** The analyses the target enables (labels,faces,text, or none); absent on stacks deployed before they existed. */
  analysisEnabled?: string;
  /** Where the platform sends appeal requests (local stacks, and deployed ones with appeals on). */
  appealQueueUrl?: string;
}

export interface Endpoints {
  s3?: string;
  sqs?: string;
  dynamodb?: string;
  stepfunctions?: string;
  rekognition?: string;
  ssm?: string;
}

export interface Target {
  kind: 'embedded' | 'serve' | 'deployed';
  description: string;
  region: string;
  names: TargetNames;
  endpoints: Endpoints;
  s3: S3Client;
  sqs: SQSClient;
  dynamodb: DynamoDBDocumentClient;
  sfn: SFNClient;
  ssm: SSMClient;
  /** Stops what the target started (the embedded stack) and releases clients. */
  close(): Promise<void>;
}

export interface TargetOptions {
  /** A deployed stack's name (or $MODERATION_STACK). */
  stack?: string;
  /** The local data directory (or $MODERATION_HOME, default ./.moderation). */
  home?: string;
  /** Start the embedded stack with these options when no serve is running. */
  embedded?: Record<string, unknown>;
}

export function dataHome(home?: string): string {
  return resolve(home ?? process.env.MODERATION_HOME ?? '.moderation');
}

/** What `serve` writes so other commands find it. */
export function serveFile(home: string): string {
  return join(home, 'serve.json');
}

export interface ServeInfo {
  pid: number;
  region: string;
  endpoints: Endpoints;
  names: TargetNames;
}

/** Clients for a target: the local stack's configuration (local/client-config.ts), or the AWS defaults. */
export function clientsFor(region: string, endpoints: Endpoints, local: boolean) {
  const config = local
    ? localClientConfig({ region, endpoints: endpoints as LocalEndpoints })
    : { s3: { region }, sqs: { region }, dynamodb: { region }, stepfunctions: { region }, ssm: { region } };
  return {
    s3: new S3Client(config.s3),
    sqs: new SQSClient(config.sqs),
    dynamodb: DynamoDBDocumentClient.from(new DynamoDBClient(config.dynamodb), {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
    }),
    sfn: new SFNClient(config.stepfunctions),
    ssm: new SSMClient(config.ssm),
  };
}

function destroy(clients: ReturnType<typeof clientsFor>): void {
  clients.s3.destroy();
  clients.sqs.destroy();
  clients.dynamodb.destroy();
  clients.sfn.destroy();
  clients.ssm.destroy();
}

function runningServe(home: string): ServeInfo | undefined {
  const file = serveFile(home);
  if (!existsSync(file)) return undefined;
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as ServeInfo;
    process.kill(info.pid, 0);
    return info;
  } catch {
    return undefined;
  }
}

export async function resolveTarget(options: TargetOptions = {}): Promise<Target> {
  const stackName = options.stack ?? process.env.MODERATION_STACK;
  if (stackName) return deployedTarget(stackName);

  const home = dataHome(options.home);
  const serve = runningServe(home);
  if (serve) {
    const clients = clientsFor(serve.region, serve.endpoints, true);
    return {
      kind: 'serve',
      description: `local stack served by pid ${serve.pid} (${home})`,
      region: serve.region,
      names: serve.names,
      endpoints: serve.endpoints,
      ...clients,
      close: async () => destroy(clients),
    };
  }

  const { startLocalStack } = await import('../local/stack.ts');
  // The pipeline's own default sample rate, as `moderation serve` and the construct use (local/stack.ts defaults to 0 for tests).
  const stack = await startLocalStack({ home, quiet: true, qualitySampleRate: DEFAULTS.qualitySampleRate, ...(options.embedded ?? {}) } as never);
  const clients = clientsFor(stack.region, stack.endpoints, true);
  return {
    kind: 'embedded',
    description: `embedded local stack (${home})`,
    region: stack.region,
    names: stack.names as TargetNames,
    endpoints: stack.endpoints,
    ...clients,
    close: async () => {
      destroy(clients);
      await stack.stop();
    },
  };
}

async function deployedTarget(stackName: string): Promise<Target> {
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  const cloudformation = new CloudFormationClient(region ? { region } : {});
  let outputs: Record<string, string>;
  try {
    const { Stacks } = await cloudformation.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = Object.fromEntries((Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
  } catch (err) {
    throw new UsageError(`cannot read the outputs of stack "${stackName}": ${(err as Error).message}`);
  } finally {
    cloudformation.destroy();
  }
  const need = (key: string, env: string): string => {
    const value = process.env[env] ?? outputs[key];
    if (!value) throw new UsageError(`stack "${stackName}" has no output ${key} (or set ${env})`);
    return value;
  };
  const names: TargetNames = {
    uploadsBucket: need('UploadsBucketName', 'MODERATION_UPLOADS_BUCKET'),
    uploadsPrefix: process.env.MODERATION_UPLOADS_PREFIX ?? outputs.UploadsPrefix ?? 'uploads/',
    quarantineBucket: need('QuarantineBucketName', 'MODERATION_QUARANTINE_BUCKET'),
    intakeQueueUrl: need('IntakeQueueUrl', 'MODERATION_INTAKE_QUEUE_URL'),
    deadLetterQueueUrl: need('DeadLetterQueueUrl', 'MODERATION_DLQ_URL'),
    decisionTable: need('DecisionTableName', 'MODERATION_TABLE'),
    stateMachineArn: outputs.StateMachineArn,
    statusShards: Number(outputs.StatusShards ?? DEFAULT_STATUS_SHARDS),
    ...(outputs.AnalysisEnabled ? { analysisEnabled: outputs.AnalysisEnabled } : {}),
    policyParameter: process.env.MODERATION_POLICY_PARAMETER ?? outputs.PolicyParameterName,
    policyParameterTier: outputs.PolicyParameterTier,
  };
  const actualRegion = outputs.Region ?? region ?? 'us-east-1';
  const clients = clientsFor(actualRegion, {}, false);
  return {
    kind: 'deployed',
    description: `stack ${stackName} (${actualRegion})`,
    region: actualRegion,
    names,
    endpoints: {},
    ...clients,
    close: async () => destroy(clients),
  };
}
