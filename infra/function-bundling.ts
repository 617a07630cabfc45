/**
 * How each handler is bundled for Lambda (NodejsFunction with the local esbuild: there is no Docker
 * daemon): ESM for Node 22, the AWS SDK bundled at the version the tests ran, and sharp — native —
 * installed beside the bundle with its linux-arm64 build for the functions that decode images.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RemovalPolicy, type Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

const NPM_FOR_LAMBDA_ARM64 = {
  // The bundling's `npm ci` installs sharp's linux-arm64 build (pinned and integrity-checked by
  // package-lock.json), whatever machine synthesizes; from npm's cache when it is there.
  npm_config_os: 'linux',
  npm_config_cpu: 'arm64',
  npm_config_libc: 'glibc',
  npm_config_prefer_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};

export function bundlingOptions(nativeSharp: boolean): BundlingOptions {
  return {
    format: OutputFormat.ESM,
    target: 'node22',
    mainFields: ['module', 'main'],
    // Some CommonJS dependencies call require(); ESM output has none unless we make one.
    banner: "import { createRequire as __moderationCreateRequire } from 'node:module'; const require = __moderationCreateRequire(import.meta.url);",
    minify: true,
    keepNames: true,
    sourceMap: true,
    sourcesContent: false,
    // The SDK is bundled at the version the tests ran, not whatever the runtime image carries.
    bundleAwsSDK: true,
    // sharp is native: never bundled. Functions that use it get it installed beside the bundle with its
    // linux-arm64 binaries; the others do not import it.
    externalModules: ['sharp'],
    forceDockerBundling: false,
    ...(nativeSharp
      ? {
          nodeModules: ['sharp'],
          environment: NPM_FOR_LAMBDA_ARM64,
          commandHooks: {
            beforeBundling: () => [],
            beforeInstall: () => [],
            afterBundling: (_inputDir: string, outputDir: string) => [
              `node "${path.join(PROJECT_ROOT, 'infra', 'scripts', 'check-arm64-sharp.mjs')}" "${outputDir}"`,
            ],
          },
        }
      : {}),
  };
}

export interface OwnFunctionOptions {
  /** Prefix of the construct ids: `${id}Logs`, `${id}Role`, `${id}Function`. */
  id: string;
  /** The handler file under functions/. */
  entry: string;
  description: string;
  roleDescription: string;
  memorySize: number;
  timeout: Duration;
  logRetention?: logs.RetentionDays;
  logLevel?: string;
  /** POWERTOOLS_SERVICE_NAME: its logs and metrics are its own, not a moderation step's. */
  serviceName: string;
  environment: Record<string, string>;
}

/**
 * A function beside the workflow (the appeal intake, the decision events' publisher): Node 22 on ARM,
 * bundled without sharp, with an own log group (retained) and an own role that may write to it only;
 * the caller grants the rest to the role it gets back.
 */
export function ownFunction(scope: Construct, options: OwnFunctionOptions): { fn: NodejsFunction; role: iam.Role } {
  const logGroup = new logs.LogGroup(scope, `${options.id}Logs`, { retention: options.logRetention ?? logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.RETAIN });
  const role = new iam.Role(scope, `${options.id}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: options.roleDescription });
  logGroup.grantWrite(role);
  const fn = new NodejsFunction(scope, `${options.id}Function`, {
    description: options.description,
    entry: path.join(PROJECT_ROOT, 'functions', options.entry),
    handler: 'handler',
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: options.memorySize,
    timeout: options.timeout,
    role,
    logGroup,
    environment: {
      POWERTOOLS_SERVICE_NAME: options.serviceName,
      POWERTOOLS_METRICS_NAMESPACE: 'UploadModeration',
      POWERTOOLS_LOG_LEVEL: options.logLevel ?? 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
      ...options.environment,
    },
    bundling: bundlingOptions(false),
  });
  acknowledge(
    fn,
    'AwsSolutions-L1',
    'Node.js 22 is an LTS runtime that AWS supports; it is pinned on purpose, like every function of the pipeline (the esbuild target node22 follows it), and this rule flags anything but the newest runtime CDK knows.',
  );
  return { fn, role };
}
