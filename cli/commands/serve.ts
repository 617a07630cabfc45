/**
 * `moderation serve`: the local stack until Ctrl-C, its endpoints printed so any AWS client
 * (the CLI, boto3, the AWS CLI) can use it; other `moderation` commands find it through
 * <home>/serve.json.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { dataHome, serveFile, type ServeInfo, type TargetNames } from '../target.ts';
import { UsageError } from '../output.ts';
import { webhookFromFlag, WEBHOOK_ENV_HELP } from '../webhook.ts';
import { analyzeFlag, parseFraction } from '../flags.ts';
import { DEFAULTS } from '../../functions/lib/config.ts';

interface ServeOptions {
  json?: boolean;
  policy?: string;
  home?: string;
  port?: string;
  bedrockModel?: string;
  corsOrigin?: string[];
  webhook?: string;
  qualitySample?: string;
  analyze?: string;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the local stack (S3, SQS, DynamoDB, Step Functions, Rekognition) until Ctrl-C')
    .option('--json', 'print the endpoints and names as one JSON line')
    .option('--policy <file|preset>', 'policy or policy set file (YAML/JSON) or preset, published as the live policy (default: what was last pushed here, else standard; change it live with `moderation policy push`)')
    .option('--port <n>', 'first port: s3 n, sqs n+1, dynamodb n+2, stepfunctions n+3, rekognition n+4, ssm n+5 (default: free ports)')
    .option('--bedrock-model <id>', 'review borderline images with this Bedrock model (needs AWS credentials)')
    .option('--webhook <url>', 'POST each decision event to this URL, signed with $MODERATION_WEBHOOK_SECRET (docs/events.md)')
    .option('--analyze <list>', 'also run these analyses on every image and record them: labels, faces, text (comma-separated; DetectLabels, DetectFaces, DetectText)')
    .option('--quality-sample <rate>', `share of automated APPROVED/REJECTED decisions also sent to the review queue for a blind check, 0 to 1 or a percentage (default ${DEFAULTS.qualitySampleRate})`)
    .addHelpText('after', `\n${WEBHOOK_ENV_HELP}`)
    .option('--home <dir>', 'data directory (default $MODERATION_HOME or ./.moderation)')
    .option(
      '--cors-origin <origin>',
      'let web pages from this origin (e.g. http://localhost:3000) call the endpoints; repeatable. Other cross-site browser requests get 403',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .action(async (options: ServeOptions) => {
      await serve(options);
    });
}

async function serve(options: ServeOptions): Promise<void> {
  const home = dataHome(options.home);
  let ports: Record<string, number> | undefined;
  if (options.port !== undefined) {
    const first = Number(options.port);
    if (!Number.isInteger(first) || first < 1024 || first > 65530) throw new UsageError(`--port must be an integer from 1024 to 65530, got "${options.port}"`);
    ports = { s3: first, sqs: first + 1, dynamodb: first + 2, stepfunctions: first + 3, rekognition: first + 4, ssm: first + 5 };
  }
  const webhook = webhookFromFlag(options.webhook);
  const { normalizeOrigin, InvalidOriginError } = await import('../../local/net.ts');
  const corsOrigins = (options.corsOrigin ?? []).map((origin) => {
    try {
      return normalizeOrigin(origin);
    } catch (err) {
      throw err instanceof InvalidOriginError ? new UsageError(`--cors-origin: ${err.message}`) : err;
    }
  });
  const { startLocalStack } = await import('../../local/stack.ts');
  const stack = await startLocalStack({
    home,
    policy: options.policy,
    ports,
    quiet: true,
    contextualReview: options.bedrockModel ? { modelId: options.bedrockModel } : undefined,
    corsOrigins,
    webhook,
    qualitySampleRate: options.qualitySample === undefined ? DEFAULTS.qualitySampleRate : parseFraction(options.qualitySample, '--quality-sample'),
    ...(options.analyze !== undefined ? { analyze: analyzeFlag(options.analyze) } : {}),
  } as never);
  const info: ServeInfo = { pid: process.pid, region: stack.region, endpoints: stack.endpoints, names: stack.names as TargetNames };
  mkdirSync(home, { recursive: true });
  writeFileSync(serveFile(home), JSON.stringify(info, null, 2));

  if (options.json) {
    process.stdout.write(`${JSON.stringify({ region: info.region, endpoints: info.endpoints, ...info.names })}\n`);
  } else {
    const lines = [
      `Local moderation stack running (data in ${home}). Ctrl-C to stop.`,
      '',
      ...Object.entries(info.endpoints).map(([service, url]) => `  ${service.padEnd(14)} ${url}`),
      '',
      `  uploads bucket     s3://${info.names.uploadsBucket}/${info.names.uploadsPrefix}`,
      `  quarantine bucket  s3://${info.names.quarantineBucket}`,
      `  decision table     ${info.names.decisionTable}`,
      `  intake queue       ${info.names.intakeQueueUrl}`,
      `  dead-letter queue  ${info.names.deadLetterQueueUrl}`,
      ...(info.names.appealQueueUrl ? [`  appeal queue       ${info.names.appealQueueUrl} (Moderation Appeal Request messages: docs/events.md)`] : []),
      `  live policy        SSM parameter ${stack.names.policyParameter} (moderation policy show | push <file>)`,
      `  decision events    ${webhook ? `POSTed to ${webhook.url} (signed); ` : ''}kept in ${home}/events (moderation events list)`,
      `  browser pages      ${corsOrigins.length ? `allowed from ${corsOrigins.join(', ')} (CORS); other origins refused` : 'cross-site requests refused (allow one with --cors-origin <origin>)'}`,
      '',
      'Any AWS client works against it, e.g.:',
      `  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --endpoint-url ${info.endpoints.s3} s3 cp photo.jpg s3://${info.names.uploadsBucket}/${info.names.uploadsPrefix}me/photo.jpg`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  if (!options.json) process.stderr.write('\nstopping…\n');
  rmSync(serveFile(home), { force: true });
  await stack.stop();
}
