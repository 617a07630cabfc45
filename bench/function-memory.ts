/**
 * `npm run bench:function-memory`: the memory the functions that only call AWS APIs (ingest, record,
 * apply, fail, settle) need, to size FUNCTION_MEMORY_MB (functions/lib/pipeline-settings.ts).
 *
 * Each handler is bundled the way the CDK bundles it (infra/function-bundling.ts: esbuild, ESM,
 * minified, the AWS SDK inside), loaded in a fresh `node`, and invoked once with a realistic state
 * document against AWS endpoints that refuse the connection (AWS_ENDPOINT_URL=http://127.0.0.1:9):
 * the SDK clients are built, the requests signed and sent, the error handled, as far as an invocation
 * goes without an answer. The process's peak RSS is printed; Lambda's Node.js runtime adds its own
 * bootstrap (measured by AWS as ~20-30 MB over a bare `node` on Node.js 22), which the sizing adds.
 *
 * Usage: npm run bench:function-memory -- [--json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { PROJECT_ROOT } from '../infra/function-bundling.ts';
import { benchArgs } from './args.ts';
import { machineLine } from './machine.ts';

const values = benchArgs(import.meta.url, { json: { type: 'boolean', default: false } });
const dir = mkdtempSync(join(tmpdir(), 'function-memory-'));
const now = new Date().toISOString();
const job = { jobId: 'c'.repeat(40), bucket: 'uploads', key: 'uploads/u-1/photo.jpg', eTag: 'd41d8cd98f00b204e9800998ecf8427e', uploader: 'u-1', eventTime: now, receivedAt: now };
const detection = {
  verdict: 'APPROVE',
  labels: [],
  flagged: [],
  policyVersion: 'standard@3f2a9c1b5d7e',
  source: 's3-object',
  fingerprint: { contentHash: 'e'.repeat(64), perceptualHash: '0123456789abcdef' },
  durationMs: 600,
};
const sqsRecord = {
  messageId: '1',
  receiptHandle: 'r',
  body: JSON.stringify({ Records: [{ eventVersion: '2.1', eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', eventTime: now, s3: { bucket: { name: 'uploads' }, object: { key: 'uploads/u-1/photo.jpg', size: 1000, eTag: 'abc', sequencer: '01' } } }] }),
  attributes: { ApproximateReceiveCount: '1' },
  messageAttributes: {},
  md5OfBody: '',
  eventSource: 'aws:sqs',
  eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:intake',
  awsRegion: 'us-east-1',
};
const events: Record<string, unknown> = {
  ingest: { Records: Array.from({ length: 10 }, (_, i) => ({ ...sqsRecord, messageId: String(i) })) },
  record: { job, settings: { contextualReview: 'disabled' }, detection },
  apply: { job, detection, decision: { status: 'APPROVED', decidedBy: 'rekognition', decidedAt: now, duplicate: false } },
  fail: { job, error: { Error: 'Throttled', Cause: 'Rekognition throttled the request' } },
  settle: { source: 'aws.states', 'detail-type': 'Step Functions Execution Status Change', detail: { status: 'TIMED_OUT', executionArn: 'arn:aws:states:us-east-1:123456789012:execution:m:x', input: JSON.stringify({ job }) } },
};

const rows: { function: string; bundleKb: number; peakRssMb: number; outcome: string }[] = [];
for (const name of Object.keys(events)) {
  const outfile = join(dir, `${name}.mjs`);
  await build({
    entryPoints: [join(PROJECT_ROOT, 'functions', `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify: true,
    keepNames: true,
    external: ['sharp'],
    mainFields: ['module', 'main'],
    banner: { js: "import { createRequire as __moderationCreateRequire } from 'node:module'; const require = __moderationCreateRequire(import.meta.url);" },
    logLevel: 'error',
  });
  const runner = join(dir, `${name}-run.mjs`);
  writeFileSync(
    runner,
    `const { handler } = await import(${JSON.stringify(outfile)});
let outcome = 'returned';
try { await handler(${JSON.stringify(events[name])}, { functionName: '${name}', awsRequestId: 'r', getRemainingTimeInMillis: () => 60000 }); } catch (err) { outcome = 'threw ' + err.name; }
const hwm = /VmHWM:\\s+(\\d+) kB/.exec((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'));
process.stdout.write(JSON.stringify({ peakRssMb: Math.round((hwm ? Number(hwm[1]) : process.resourceUsage().maxRSS) / 1024), outcome }) + '\\n');`,
  );
  const out = spawnSync(process.execPath, [runner], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_MAX_ATTEMPTS: '1',
      DECISION_TABLE: 'decisions',
      QUARANTINE_BUCKET: 'quarantine',
      DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:9/123456789012/dlq',
      STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:m',
      UPLOADS_BUCKET: 'uploads',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
  const line = out.stdout.trim().split('\n').at(-1) ?? '';
  const { statSync } = await import('node:fs');
  try {
    rows.push({ function: name, bundleKb: Math.round(statSync(outfile).size / 1024), ...(JSON.parse(line) as { peakRssMb: number; outcome: string }) });
  } catch {
    rows.push({ function: name, bundleKb: Math.round(statSync(outfile).size / 1024), peakRssMb: NaN, outcome: `crashed: ${out.stderr.slice(-200)}` });
  }
}
const bare = spawnSync(process.execPath, ['-e', "process.stdout.write(String(Math.round(Number(/VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024)))"], { encoding: 'utf8' }).stdout;
rmSync(dir, { recursive: true, force: true });

if (values.json) {
  process.stdout.write(`${JSON.stringify({ date: new Date().toISOString(), bareNodeMb: Number(bare), rows }, null, 2)}\n`);
} else {
  process.stdout.write(`machine: ${machineLine()}; date ${new Date().toISOString()}\n`);
  process.stdout.write(`a bare node process: ${bare} MB peak RSS\n\nfunction  bundle    peak RSS  invocation\n`);
  for (const r of rows) process.stdout.write(`${r.function.padEnd(8)}  ${`${r.bundleKb} KB`.padStart(7)}  ${`${r.peakRssMb} MB`.padStart(8)}  ${r.outcome}\n`);
}
