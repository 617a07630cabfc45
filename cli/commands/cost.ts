/**
 * `moderation cost --images N --borderline-rate r`: the monthly AWS cost and the cost per 1,000
 * images, by service, from list prices and the architecture as configured; every assumption printed.
 * Offline: it reads no stack (see functions/lib/cost-model.ts).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CostModelError, estimateMonthlyCost, type AslDefinition, type CostAnalysis, type CostEstimate } from '../../functions/lib/cost-model.ts';
import { AnalysisListError, parseAnalysisList } from '../../functions/lib/analysis-policy.ts';
import { DEFAULTS } from '../../functions/lib/config.ts';
import { PRICES } from '../../functions/lib/pricing.ts';
import { parseChoice, parseFraction, parseInteger } from '../flags.ts';
import { renderTable, UsageError, type Row } from '../output.ts';
import { DEFINITION_FILE } from '../../functions/lib/pipeline-settings.ts';
import { DEFAULT_ANIMATION_MAX_FRAMES, MAX_ANIMATION_MAX_FRAMES, resolvePolicy } from '../../functions/lib/policy.ts';


interface CostFlags {
  images?: string;
  borderlineRate?: string;
  rejectRate?: string;
  workflow?: string;
  reviewModel?: string;
  review?: boolean;
  batchSize?: string;
  animatedShare?: string;
  framesPerAnimation?: string;
  duplicateRate?: string;
  workflowLogLevel?: string;
  logLevel?: string;
  json?: boolean;
  policy?: string;
  analyze?: string;
  childSafetyShare?: string;
}

export function registerCost(program: Command): void {
  program
    .command('cost')
    .description('estimate the monthly AWS cost and the cost per 1,000 images, by service, from list prices')
    .requiredOption('--images <n>', 'images moderated per month (e.g. 1000000 or 1_000_000)')
    .requiredOption('--borderline-rate <r>', 'share of images the policy finds borderline (0.05 or 5%)')
    .option('--workflow <type>', 'express (default) or standard')
    .option('--reject-rate <r>', 'share rejected and quarantined (default 0.02)')
    .option('--review-model <id>', `Bedrock model for contextual review of borderline images (default ${DEFAULTS.reviewModelId})`)
    .option('--no-review', 'contextual review off (the construct\'s default): borderline images wait for a human')
    .option('--batch-size <n>', 'intake messages per ingest invocation (default 10)')
    .option('--animated-share <r>', 'share of images that are animations or multi-page files, judged frame by frame (default 0)')
    .option('--frames-per-animation <n>', `Rekognition calls per animation (default ${DEFAULT_ANIMATION_MAX_FRAMES}, the policy's animation.maxFrames default)`)
    .option('--duplicate-rate <r>', 'share of uploads that repeat an earlier decision: bytes already decided, or near-duplicates of rejected images (default 0)')
    .option('--workflow-log-level <level>', "the state machine's log level: error (the construct's default) or all (every state, with execution data for express)")
    .option('--log-level <level>', "the functions' log level: warn (the construct's default), info or debug")
    .option('--policy <file|preset>', 'count the analyses this policy needs (labels and text rules, the child-safety rule); default: none')
    .option('--analyze <list>', 'count these analyses on every image: labels, faces, text (comma-separated; added to --policy\'s)')
    .option('--child-safety-share <r>', 'share of images with a nudity or swimwear label, on which the child-safety rule calls DetectFaces (default: the borderline rate plus the reject rate)')
    .option('--json', 'print the whole estimate (services, line items, paths, assumptions, prices) as JSON')
    .addHelpText(
      'after',
      `
Examples:
  moderation cost --images 1000000 --borderline-rate 0.05
  moderation cost --images 50000000 --borderline-rate 2% --workflow standard --review-model amazon.nova-pro-v1:0
  moderation cost --images 1000000 --borderline-rate 0.05 --no-review --json
  moderation cost --images 1000000 --borderline-rate 0.05 --animated-share 3% --frames-per-animation 6
  moderation cost --images 1000000 --borderline-rate 0.05 --duplicate-rate 10%
  moderation cost --images 1000000 --borderline-rate 0.05 --policy standard --analyze labels,text

Known Bedrock models: ${Object.keys(PRICES.bedrock).join(', ')} (and their us./eu./apac./global. inference profiles).
Prices are us-east-1 list prices transcribed on the date printed; most come from secondary sources:
check the AWS Pricing Calculator before budgeting.`,
    )
    .action((flags: CostFlags) => {
      costCommand(flags);
    });
}

function costCommand(flags: CostFlags): void {
  const images = parseInteger(flags.images ?? '', '--images', { min: 0, max: 1e12 });
  const borderlineRate = parseFraction(flags.borderlineRate ?? '', '--borderline-rate');
  const rejectRate = flags.rejectRate === undefined ? undefined : parseFraction(flags.rejectRate, '--reject-rate');
  const workflow = parseChoice(flags.workflow ?? 'express', '--workflow', ['express', 'standard'] as const).toUpperCase() as 'EXPRESS' | 'STANDARD';
  const batchSize = flags.batchSize === undefined ? undefined : parseInteger(flags.batchSize, '--batch-size', { min: 1, max: 10_000 });
  const animatedShare = flags.animatedShare === undefined ? undefined : parseFraction(flags.animatedShare, '--animated-share');
  const framesPerAnimation =
    flags.framesPerAnimation === undefined ? undefined : parseInteger(flags.framesPerAnimation, '--frames-per-animation', { min: 1, max: MAX_ANIMATION_MAX_FRAMES });
  const duplicateRate = flags.duplicateRate === undefined ? undefined : parseFraction(flags.duplicateRate, '--duplicate-rate');
  const workflowLogLevel =
    flags.workflowLogLevel === undefined ? undefined : (parseChoice(flags.workflowLogLevel.toLowerCase(), '--workflow-log-level', ['error', 'all'] as const).toUpperCase() as 'ERROR' | 'ALL');
  const logLevel =
    flags.logLevel === undefined ? undefined : (parseChoice(flags.logLevel.toLowerCase(), '--log-level', ['warn', 'info', 'debug'] as const).toUpperCase() as 'WARN' | 'INFO' | 'DEBUG');
  if (flags.review === false && flags.reviewModel) throw new UsageError('--review-model and --no-review contradict each other');
  const reviewModelId = flags.review === false ? null : (flags.reviewModel ?? DEFAULTS.reviewModelId);
  const definition = JSON.parse(readFileSync(DEFINITION_FILE, 'utf8')) as AslDefinition;
  let estimate: CostEstimate;
  try {
    const analysis = costAnalysis(flags, borderlineRate + (rejectRate ?? 0.02));
    estimate = estimateMonthlyCost({ images, borderlineRate, rejectRate, workflow, reviewModelId, batchSize, animatedShare, framesPerAnimation, duplicateRate, workflowLogLevel, logLevel, analysis }, definition);
  } catch (err) {
    if (err instanceof CostModelError) throw new UsageError(err.message);
    throw err;
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(estimate, null, 2)}\n`);
    return;
  }
  process.stdout.write(describeEstimate(estimate));
}

/** The analyses to count: what --policy needs, plus --analyze (on every image). */
function costAnalysis(flags: CostFlags, defaultShare: number): CostAnalysis {
  const needs = flags.policy === undefined ? undefined : resolvePolicy(flags.policy).analysis.needs;
  const forced = flags.analyze === undefined ? undefined : parseAnalysisFlag(flags.analyze);
  const share = flags.childSafetyShare === undefined ? Math.min(1, defaultShare) : parseFraction(flags.childSafetyShare, '--child-safety-share');
  const faces = forced?.faces || needs?.faces === 'always' ? 'always' : (needs?.faces ?? 'never');
  return { labels: Boolean(needs?.labels || forced?.labels), text: Boolean(needs?.text || forced?.text), faces, childSafetyShare: faces === 'conditional' ? share : 0 };
}

function parseAnalysisFlag(value: string) {
  try {
    return parseAnalysisList(value, '--analyze');
  } catch (err) {
    if (err instanceof AnalysisListError) throw new UsageError(err.message);
    throw err;
  }
}

export function usd(value: number): string {
  if (value === 0) return '$0.00';
  if (Math.abs(value) >= 100) return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  if (Math.abs(value) >= 0.01) return `$${value.toFixed(2)}`;
  return `$${value.toPrecision(2)}`;
}

function quantity(value: number): string {
  if (value >= 1000) return Math.round(value).toLocaleString('en-US');
  return Number(value.toPrecision(4)).toString();
}

export function describeEstimate(estimate: CostEstimate): string {
  const { input } = estimate;
  const lines: string[] = [];
  lines.push(
    `${input.images.toLocaleString('en-US')} images/month, ${pct(input.borderlineRate)} borderline, ${pct(input.rejectRate)} rejected; ` +
      `${input.workflow} workflow; contextual review ${input.reviewModelId ? `on (${input.reviewModelId})` : 'off'}` +
      (input.animatedShare > 0 ? `; ${pct(input.animatedShare)} animations, ${input.framesPerAnimation} frames judged each` : '') +
      (input.duplicateRate > 0 ? `; ${pct(input.duplicateRate)} repeats of earlier decisions` : ''),
    '',
  );
  const serviceRows: Row[] = estimate.services.map((s) => ({
    service: s.service,
    'per month': usd(s.monthlyUsd),
    'per 1,000 images': usd(s.per1000Usd),
    share: estimate.monthlyUsd ? pct(s.monthlyUsd / estimate.monthlyUsd) : '-',
  }));
  serviceRows.push({ service: 'Total', 'per month': usd(estimate.monthlyUsd), 'per 1,000 images': usd(estimate.per1000Usd), share: '100%' });
  lines.push(renderTable(serviceRows, ['service', 'per month', 'per 1,000 images', 'share']), '');
  const overhead = estimate.services.filter((s) => s.service !== 'Rekognition' && s.service !== 'Bedrock').reduce((sum, s) => sum + s.per1000Usd, 0);
  lines.push(`Around Rekognition (everything but Rekognition and Bedrock): $${overhead.toFixed(4)} per 1,000 images.`, '');
  if (estimate.savings) {
    const saved = estimate.savings;
    const parts = Object.entries(saved.byService)
      .filter(([, value]) => Math.abs(value) >= 0.005)
      .map(([service, value]) => `${service} ${usd(value)}`);
    lines.push(
      `Reused decisions: ${Math.round(saved.reusedImages).toLocaleString('en-US')} uploads repeat an earlier decision, ${Math.round(saved.rekognitionCallsAvoided).toLocaleString('en-US')} Rekognition calls not made: ` +
        `${usd(saved.monthlyUsd)} less per month (${usd(saved.per1000Usd)} per 1,000 images) than ${usd(saved.withoutReuseUsd)} without them${parts.length ? ` (${parts.join(', ')})` : ''}.`,
      '',
    );
  }

  const itemRows: Row[] = estimate.services.flatMap((s) =>
    s.items.map((item) => ({
      service: s.service,
      item: item.what,
      quantity: `${quantity(item.quantity)} ${item.unit}`,
      'unit price': `$${Number(item.unitPriceUsd.toPrecision(4))}`,
      'per month': usd(item.monthlyUsd),
    })),
  );
  lines.push('Line items:', renderTable(itemRows, ['service', 'per month', 'quantity', 'unit price', 'item']), '');

  lines.push('Assumptions:', ...estimate.assumptions.map((a) => `  - ${a}`), '');
  lines.push(`Prices (us-east-1 list prices as of ${estimate.pricesAsOf}):`);
  lines.push(
    renderTable(
      estimate.prices.map((p) => ({ price: p.what, value: `${Number(p.value.toPrecision(4))} ${p.unit}`, source: `${p.sourceKind}: ${p.source}` })),
      ['price', 'value', 'source'],
    ),
    '',
  );
  return lines.join('\n');
}

function pct(fraction: number): string {
  const value = fraction * 100;
  return `${value >= 10 || value === 0 ? value.toFixed(0) : value.toFixed(1)}%`;
}
