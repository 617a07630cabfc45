/**
 * `moderation run <files|dirs...>`: uploads each file to the local uploads bucket and waits for
 * every decision. Unchanged files that already have a decision are not uploaded (or paid for)
 * again.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { resolveTarget, type Target } from '../target.ts';
import { currentDecision } from '../history.ts';
import { decisionStoreOf } from '../stores.ts';
import { progressBar, renderTable, UsageError, type Row } from '../output.ts';
import type { DecisionRecord, DecisionStatus } from '../../functions/lib/types.ts';
import type { AnalysisSummary } from '../../functions/lib/analysis.ts';
import { resolvePolicySet } from '../../functions/lib/policy-set.ts';
import { webhookFromFlag, WEBHOOK_ENV_HELP } from '../webhook.ts';
import { analyzeFlag, parseFraction } from '../flags.ts';
import { DEFAULTS } from '../../functions/lib/config.ts';

export interface RunOptions {
  json?: boolean;
  policy?: string;
  uploader: string;
  timeout: string;
  home?: string;
  bedrockModel?: string;
  webhook?: string;
  qualitySample?: string;
  /** Analyses to run on every image: labels, faces, text (functions/analysis.ts). */
  analyze?: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.heic': 'image/heic',
  '.svg': 'image/svg+xml',
};

export interface FileToModerate {
  path: string;
  key: string;
  md5: string;
}

export interface RunResult {
  key: string;
  file: string;
  status: DecisionStatus | 'PENDING';
  topLabel?: string;
  confidence?: number;
  decidedBy?: string;
  reason?: string;
  cached: boolean;
  jobId?: string;
  policyVersion?: string;
  /** The earlier job whose decision this one repeats (identical bytes, or a near-duplicate of a rejected image). */
  reusedFrom?: string;
  /** What --analyze (or the policy) found: labels, faces, text, and what is missing (the record's bounded summary). */
  analysis?: AnalysisSummary;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('moderate files through the embedded local pipeline and print each decision')
    .argument('<paths...>', 'image files or directories (searched recursively)')
    .option('--json', 'print one JSON object per image, then a summary object')
    .option('--policy <file|preset>', 'policy or policy set file (YAML/JSON) or preset: strict, standard, permissive (published as the live policy of the data directory)')
    .option('--uploader <id>', 'uploader id used in the object key (uploads/<uploader>/...)', 'local')
    .option('--timeout <seconds>', 'how long to wait for all decisions', '300')
    .option('--bedrock-model <id>', 'review borderline images with this Bedrock model (needs AWS credentials)')
    .option('--webhook <url>', 'POST each decision event to this URL, signed with $MODERATION_WEBHOOK_SECRET (docs/events.md)')
    .option('--analyze <list>', 'also run these analyses on every image and record them: labels, faces, text (comma-separated; DetectLabels, DetectFaces, DetectText)')
    .option('--quality-sample <rate>', `share of automated APPROVED/REJECTED decisions also sent to the review queue for a blind check, 0 to 1 or a percentage (default ${DEFAULTS.qualitySampleRate})`)
    .option('--home <dir>', 'data directory (default $MODERATION_HOME or ./.moderation)')
    .addHelpText('after', `\nExit codes: 0 every image decided and none FAILED; 2 some FAILED or undecided; 1 usage or start-up error.\n\n${WEBHOOK_ENV_HELP}`)
    .action(async (paths: string[], options: RunOptions) => {
      process.exitCode = await runCommand(paths, options);
    });
}

export async function runCommand(paths: string[], options: RunOptions): Promise<number> {
  const timeoutMs = Number(options.timeout) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got "${options.timeout}"`);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(options.uploader)) throw new UsageError(`--uploader must be 1-64 letters, digits, '.', '_' or '-', got "${options.uploader}"`);
  // A bad policy is a usage error: say so before starting anything.
  const policies = resolvePolicySet(options.policy ?? 'standard');
  const policyVersions = new Set(Object.values(policies.policies).map((p) => p.version));
  const webhook = webhookFromFlag(options.webhook);
  const analyze = analyzeFlag(options.analyze);
  const qualitySampleRate = options.qualitySample === undefined ? DEFAULTS.qualitySampleRate : parseFraction(options.qualitySample, '--quality-sample');
  const files = collectFiles(paths, options.uploader);
  if (files.length === 0) throw new UsageError(`no files found in ${paths.join(', ')}`);

  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (!options.json) log(`Starting the local pipeline (${files.length} file${files.length === 1 ? '' : 's'})…`);
  const target = await resolveTarget({
    home: options.home,
    embedded: {
      policy: options.policy,
      contextualReview: options.bedrockModel ? { modelId: options.bedrockModel } : undefined,
      // At the end, up to 10 s for the deliveries to finish; what is left is sent at the next start
      // with a webhook, or by `moderation events redeliver`.
      webhook: webhook ? { ...webhook, drainOnStopMs: 10_000 } : undefined,
      qualitySampleRate,
      ...(analyze ? { analyze } : {}),
    },
  });
  if (target.kind === 'serve' && (options.policy || options.bedrockModel || options.qualitySample !== undefined || analyze)) {
    log('note: a `moderation serve` is running; its policy, review, sampling and analysis settings apply, not --policy / --bedrock-model / --quality-sample / --analyze (change its policy live with `moderation policy push`).');
  }
  if (target.kind === 'serve' && webhook) log("note: a `moderation serve` is running; decision events go to its webhook (serve --webhook), not --webhook.");
  try {
    const results = await moderate(target, files, timeoutMs, Boolean(options.json));
    print(results, Boolean(options.json));
    const stale = results.filter((r) => r.cached && r.policyVersion && !policyVersions.has(r.policyVersion)).length;
    if (stale && !options.json) {
      log(`note: ${stale} image(s) were decided in an earlier run under another policy version; one object version gets one decision. Use --home <new dir> to decide them again under this policy.`);
    }
    return results.some((r) => r.status === 'FAILED' || r.status === 'PENDING') ? 2 : 0;
  } finally {
    await target.close();
  }
}

/** Files under the given paths, with the object key each gets: uploads/<uploader>/<path relative to the argument>. */
export function collectFiles(paths: string[], uploader: string): FileToModerate[] {
  const files: FileToModerate[] = [];
  for (const given of paths) {
    const root = resolve(given);
    let stats;
    try {
      stats = statSync(root);
    } catch {
      throw new UsageError(`no such file or directory: ${given}`);
    }
    const add = (path: string, relativeName: string) => {
      const body = readFileSync(path);
      files.push({ path, key: `uploads/${uploader}/${relativeName.split('\\').join('/')}`, md5: createHash('md5').update(body).digest('hex') });
    };
    if (stats.isFile()) {
      add(root, basename(root));
      continue;
    }
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        if (entry.name.startsWith('.')) continue;
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.isFile() && !/^(readme|license)(\.|$)/i.test(entry.name)) add(path, relative(root, path));
      }
    };
    walk(root);
  }
  return files;
}

async function moderate(target: Target, files: FileToModerate[], timeoutMs: number, json: boolean): Promise<RunResult[]> {
  const { s3, names } = target;
  const history = decisionStoreOf(target);
  const results = new Map<string, RunResult>();
  const waiting = new Map<string, FileToModerate>();
  const progress = progressBar(files.length, 'moderating', !json && Boolean(process.stderr.isTTY));

  // Unchanged and already decided: report the decision instead of moderating (and paying) again.
  // The history, not the bucket, is the reference: a rejected file is no longer in the bucket.
  for (const file of files) {
    const previous = await currentDecision(history, names.uploadsBucket, file.key, file.md5);
    if (previous && previous.status !== 'FAILED') {
      results.set(file.key, toResult(file, previous, true));
      progress.tick(file.key);
      continue;
    }
    await s3.send(
      new PutObjectCommand({
        Bucket: names.uploadsBucket,
        Key: file.key,
        Body: readFileSync(file.path),
        ContentType: CONTENT_TYPES[extname(file.path).toLowerCase()] ?? 'application/octet-stream',
      }),
    );
    waiting.set(file.key, file);
  }

  const deadline = Date.now() + timeoutMs;
  while (waiting.size > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    for (const [key, file] of waiting) {
      const decision = await currentDecision(history, names.uploadsBucket, key, file.md5);
      // FAILED is terminal only once the job is in the DLQ; a later replay may still decide it.
      if (decision) {
        results.set(key, toResult(file, decision, false));
        waiting.delete(key);
        progress.tick(key);
      }
    }
  }
  progress.done();
  for (const [key, file] of waiting) results.set(key, { key, file: file.path, status: 'PENDING', cached: false, reason: 'no decision before the timeout' });
  return files.map((file) => results.get(file.key)!);
}

function toResult(file: FileToModerate, record: DecisionRecord, cached: boolean): RunResult {
  const top = record.rule ?? (record.labels?.[0] ? { label: record.labels[0].name, confidence: record.labels[0].confidence } : undefined);
  return {
    key: file.key,
    file: file.path,
    status: record.status,
    topLabel: top?.label,
    confidence: top?.confidence === undefined ? undefined : Math.round(top.confidence * 10) / 10,
    decidedBy: record.decidedBy,
    reason: record.reason,
    cached,
    jobId: record.jobId,
    policyVersion: record.policyVersion,
    ...(record.reusedFrom ? { reusedFrom: record.reusedFrom } : {}),
    ...(record.analysis ? { analysis: record.analysis } : {}),
  };
}

function print(results: RunResult[], json: boolean): void {
  const counts: Record<string, number> = {};
  for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
  if (json) {
    for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`);
    process.stdout.write(`${JSON.stringify({ summary: { images: results.length, ...counts, cached: results.filter((r) => r.cached).length, reused: results.filter((r) => r.reusedFrom).length } })}\n`);
    return;
  }
  const rows: Row[] = results.map((r) => ({
    key: r.key,
    status: r.status,
    'top label': r.topLabel ?? '-',
    confidence: r.confidence === undefined ? '-' : `${r.confidence.toFixed(1)}%`,
    'decided by': r.cached ? `${r.decidedBy} (earlier run)` : r.decidedBy ?? '-',
    reason: r.reason,
  }));
  process.stdout.write(`${renderTable(rows, ['key', 'status', 'top label', 'confidence', 'decided by', 'reason'])}\n`);
  const summary = Object.entries(counts)
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');
  process.stdout.write(`\n${results.length} image${results.length === 1 ? '' : 's'}: ${summary}\n`);
}
