/**
 * `moderation cost --images N --borderline-rate r`: the monthly AWS cost and the cost per 1,000
 * images, by service, from list prices and the architecture as configured; every assumption printed.
 * Offline: it reads no stack (see functions/lib/cost-model.ts).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CostModelError, estimateMonthlyCost, type AslDefinition, type CostEstimate } from '../../functions/lib/cost-model.ts';
import { DEFAULTS } from '../../functions/lib/config.ts';
import { PRICES } from '../../functions/lib/pricing.ts';
import { parseChoice, parseFraction, parseInteger } from '../flags.ts';
import { renderTable, UsageError, type Row } from '../output.ts';
import { DEFINITION_FILE } from '../../functions/lib/pipeline-settings.ts';


interface CostFlags {
  images?: string;
  borderlineRate?: string;
  rejectRate?: string;
  workflow?: string;
  reviewModel?: string;
  review?: boolean;
  batchSize?: string;
  json?: boolean;
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
    .option('--json', 'print the whole estimate (services, line items, paths, assumptions, prices) as JSON')
    .addHelpText(
      'after',
      `
Examples:
  moderation cost --images 1000000 --borderline-rate 0.05
  moderation cost --images 50000000 --borderline-rate 2% --workflow standard --review-model amazon.nova-pro-v1:0
  moderation cost --images 1000000 --borderline-rate 0.05 --no-review --json

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
  if (flags.review === false && flags.reviewModel) throw new UsageError('--review-model and --no-review contradict each other');
  const reviewModelId = flags.review === false ? null : (flags.reviewModel ?? DEFAULTS.reviewModelId);
  const definition = JSON.parse(readFileSync(DEFINITION_FILE, 'utf8')) as AslDefinition;
  let estimate: CostEstimate;
  try {
    estimate = estimateMonthlyCost({ images, borderlineRate, rejectRate, workflow, reviewModelId, batchSize }, definition);
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
      `${input.workflow} workflow; contextual review ${input.reviewModelId ? `on (${input.reviewModelId})` : 'off'}`,
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
