/**
 * How each handler is bundled for Lambda (NodejsFunction with the local esbuild: there is no Docker
 * daemon): ESM for Node 22, the AWS SDK bundled at the version the tests ran, and sharp — native —
 * installed beside the bundle with its linux-arm64 build for the functions that decode images.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';

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
