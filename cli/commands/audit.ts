/**
 * `moderation audit`: the decision history by image, by status and time window, by uploader, by
 * category; as a table, JSON or CSV; a page at a time with a resume cursor; `audit export <file>`
 * writes every matching row. Query only (see cli/audit.ts).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import {
  AUDIT_CSV_COLUMNS,
  AUDIT_TABLE_COLUMNS,
  csvRow,
  queryDecisions,
  resolveCategories,
  tableRow,
  type AuditOrder,
  type AuditQuery,
  type QueryPlan,
} from '../audit.ts';
import { addTargetOptions, parseChoice, parseInteger, parseStatuses, parseWhen, plural, withTarget, type TargetFlags } from '../flags.ts';
import { renderCsv, renderTable, UsageError } from '../output.ts';
import type { Target } from '../target.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { decisionStoreOf } from '../stores.ts';

export interface AuditFlags extends TargetFlags {
  key?: string;
  status?: string;
  uploader?: string;
  category?: string;
  policy?: string;
  since?: string;
  until?: string;
  order?: string;
  limit?: string;
  cursor?: string;
  format?: string;
  json?: boolean;
  /** A DetectLabels label: the label index (functions/store/label-index.ts), not the decision indexes. */
  label?: string;
}

const FORMATS = ['table', 'json', 'csv'] as const;
const EXPORT_FORMATS = ['csv', 'json', 'jsonl'] as const;

const EXAMPLES = `
Examples:
  moderation audit --key uploads/alice/cat.jpg                 the image's whole history, newest first
  moderation audit --status REJECTED --since 2026-11-01 --until 2026-11-30 --format csv
  moderation audit --status REJECTED,REVIEW,FAILED --since 7d  everything not approved in the last week
  moderation audit --uploader alice --status REJECTED
  moderation audit --policy kids --status REJECTED --since 7d  decided by the live policy set's "kids" policy
  moderation audit --label Person --since 7d                    images whose DetectLabels labels include Person
  moderation audit --category Violence --limit 20 --cursor <the cursor printed by the previous page>
  moderation audit export rejected-november.csv --status REJECTED --since 2026-11-01 --until 2026-11-30

--since/--until take a date (2026-11-01, UTC), a date-time (2026-11-01T12:00:00Z) or a duration ago
(7d, 24h, 30m); both bounds are inclusive and a date alone given to --until means the end of that day.
Without --key/--uploader/--category/--status every status is queried. Criteria besides the first of
--key, --uploader, --category, --status narrow the results (a filter on the same Query). No index
has the policy name: --policy is always such a filter, so alone it reads every decision in the window
(narrow it with --since, --status or --uploader).`;

function addFilterOptions(command: Command): Command {
  return command
    .option('--key <key>', "one image's history: a key in the uploads bucket, or s3://bucket/key")
    .option('--status <statuses>', 'APPROVED, REJECTED, REVIEW, UNUSABLE, FAILED (comma-separated for several)')
    .option('--uploader <id>', 'decisions about one uploader\'s images')
    .option('--category <name>', 'decided by a label in this moderation category (model 7 or 6.1 name)')
    .option('--policy <name>', 'decided under this policy name (a live policy set routes each upload to a named policy; a filter, no index)')
    .option('--since <when>', 'decided at or after (date, date-time, or e.g. 7d ago)')
    .option('--until <when>', 'decided at or before (a date alone: the end of that day)')
    .option('--order <order>', 'newest (default) or oldest first');
}

export function registerAudit(program: Command): void {
  const audit = addTargetOptions(
    addFilterOptions(
      program
        .command('audit')
        .description('query the decision history: by image, status and time window, uploader or category'),
    )
      .option('--label <name>', 'automated decisions whose image has this DetectLabels label or parent (e.g. Person; any case): the label index')
      .option('--limit <n>', 'rows per page (default 100)')
      .option('--cursor <cursor>', 'continue after the page that printed this cursor')
      .option('--format <format>', 'table (default), json or csv')
      .option('--json', 'same as --format json: {"items": [...], "nextCursor": ...}'),
  )
    .addHelpText('after', EXAMPLES)
    .action(async (flags: AuditFlags) => {
      await auditCommand(flags);
    });

  addTargetOptions(
    addFilterOptions(
      audit
        .command('export')
        .description('write every matching decision to a file (csv, json or jsonl, from the extension or --format)')
        .argument('<file>', "output file, or '-' for standard output"),
    )
      .option('--limit <n>', 'at most this many rows (default: all)')
      .option('--cursor <cursor>', 'start after the page that printed this cursor')
      .option('--format <format>', 'csv, json (an array) or jsonl (one object per line); default from the extension, else csv'),
  )
    .addHelpText('after', '\nTakes the same filters as `moderation audit` (see moderation audit --help).')
    .action(async (file: string, flags: AuditFlags, command: Command) => {
      // Filters written before `export` are parsed by `audit` itself: take both.
      const merged = { ...definedOnly(command.parent?.opts() ?? {}), ...definedOnly(flags as Record<string, unknown>) } as AuditFlags;
      await exportCommand(file, merged);
    });
}

function definedOnly(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}

/** The query the flags describe (validated; the bucket defaults to the target's uploads bucket). */
export function auditQueryFromFlags(flags: AuditFlags, uploadsBucket: string, now = new Date()): AuditQuery {
  const query: AuditQuery = {};
  if (flags.key !== undefined) {
    const key = flags.key.trim();
    if (!key) throw new UsageError('--key must not be empty');
    const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(key);
    query.image = s3 ? { bucket: s3[1]!, key: s3[2]! } : { bucket: uploadsBucket, key };
  }
  if (flags.status !== undefined) query.statuses = parseStatuses(flags.status);
  if (flags.uploader !== undefined) {
    if (!flags.uploader.trim()) throw new UsageError('--uploader must not be empty');
    query.uploader = flags.uploader.trim();
  }
  if (flags.category !== undefined) query.categories = resolveCategories(flags.category);
  if (flags.policy !== undefined) {
    if (!flags.policy.trim()) throw new UsageError('--policy must not be empty');
    query.policy = flags.policy.trim();
  }
  if (flags.since !== undefined) query.since = parseWhen(flags.since, '--since', { now });
  if (flags.until !== undefined) query.until = parseWhen(flags.until, '--until', { endOfDay: true, now });
  if (query.since && query.until && query.since > query.until) {
    throw new UsageError(`--since ${flags.since} is after --until ${flags.until}`);
  }
  if (flags.order !== undefined) query.order = parseChoice(flags.order, '--order', ['newest', 'oldest'] as const) as AuditOrder;
  if (flags.cursor !== undefined) query.cursor = flags.cursor;
  return query;
}

async function auditCommand(flags: AuditFlags): Promise<void> {
  const format = flags.json ? 'json' : parseChoice(flags.format ?? 'table', '--format', FORMATS);
  const limit = parseInteger(flags.limit ?? '100', '--limit', { min: 1, max: 10_000 });
  if (flags.label !== undefined) return labelAudit(flags, format, limit);
  // Validate before starting anything.
  auditQueryFromFlags(flags, 'bucket');
  await withTarget(flags, async (target) => {
    const query = { ...auditQueryFromFlags(flags, target.names.uploadsBucket), limit };
    const page = await queryDecisions(target, query);
    writePage(page, format, {
      none: `no decisions match (${describePlan(page.plan)})`,
      summary: `${plural(page.items.length, 'decision')}, ${query.order === 'oldest' ? 'oldest' : 'newest'} first (${describePlan(page.plan)}, ${target.description})`,
    });
  });
}

/**
 * One page of an audit in the chosen format: JSON with its cursor; CSV; or a table with `lines.summary`
 * under it (`lines.none` when empty). Outside JSON, a cursor is a hint on stderr.
 */
function writePage(page: { items: DecisionRecord[]; nextCursor?: string }, format: (typeof FORMATS)[number], lines: { none: string; summary: string }): void {
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify({ items: page.items, nextCursor: page.nextCursor ?? null }, null, 2)}\n`);
    return;
  }
  if (format === 'csv') {
    process.stdout.write(`${renderCsv(page.items.map(csvRow), AUDIT_CSV_COLUMNS)}\n`);
  } else if (page.items.length === 0) {
    process.stdout.write(`${lines.none}\n`);
  } else {
    process.stdout.write(`${renderTable(page.items.map(tableRow), AUDIT_TABLE_COLUMNS)}\n`);
    process.stdout.write(`\n${lines.summary}\n`);
  }
  if (page.nextCursor) process.stderr.write(`more decisions match: repeat the command with --cursor ${page.nextCursor}\n`);
}

/**
 * `audit --label <name>`: the automated decisions whose image has the label (or a parent of it), from
 * the label index (docs/auditing.md, "By label"), with the time window, order and paging of any audit.
 */
async function labelAudit(flags: AuditFlags, format: (typeof FORMATS)[number], limit: number): Promise<void> {
  const label = flags.label!.trim();
  if (!label) throw new UsageError('--label must not be empty');
  const others = (['key', 'status', 'uploader', 'category', 'policy'] as const).filter((flag) => (flags as Record<string, unknown>)[flag] !== undefined);
  if (others.length) {
    throw new UsageError(`--label cannot be combined with ${others.map((flag) => `--${flag}`).join(', ')}: it has its own index (combine it with --since, --until, --order, --limit, --cursor)`);
  }
  const since = flags.since === undefined ? undefined : parseWhen(flags.since, '--since');
  const until = flags.until === undefined ? undefined : parseWhen(flags.until, '--until', { endOfDay: true });
  if (since && until && since > until) throw new UsageError(`--since ${flags.since} is after --until ${flags.until}`);
  const order = flags.order === undefined ? undefined : (parseChoice(flags.order, '--order', ['newest', 'oldest'] as const) as 'newest' | 'oldest');
  await withTarget(flags, async (target) => {
    const page = await decisionStoreOf(target).labels.find({ label, since, until, order, limit, cursor: flags.cursor });
    writePage(page, format, {
      none: `no decisions found the label "${label}" (label index, ${page.plan.partitions.length} partitions)`,
      summary: `${plural(page.items.length, 'decision')} with the label "${label}", ${order === 'oldest' ? 'oldest' : 'newest'} first (label index, ${page.plan.partitions.length} partitions merged by time, ${target.description})`,
    });
  });
}

export function describePlan(plan: QueryPlan): string {
  const partitions = plan.partitions.length === 1 ? `partition ${plan.partitions[0]}` : `${plan.partitions.length} partitions merged by time`;
  return `index ${plan.indexes.join(' + ')}, ${partitions}${plan.filters.length ? `, filtered by ${plan.filters.join(', ')}` : ''}`;
}

async function exportCommand(file: string, flags: AuditFlags): Promise<void> {
  const format = parseChoice(flags.format ?? formatFromExtension(file), '--format', EXPORT_FORMATS);
  const max = flags.limit === undefined ? Number.POSITIVE_INFINITY : parseInteger(flags.limit, '--limit', { min: 1 });
  auditQueryFromFlags(flags, 'bucket');
  await withTarget(flags, async (target) => {
    const query = auditQueryFromFlags(flags, target.names.uploadsBucket);
    const { count, nextCursor } = await exportDecisions(target, query, file, format, max);
    process.stderr.write(`wrote ${plural(count, 'decision')} to ${file === '-' ? 'standard output' : file} (${format})\n`);
    if (nextCursor) process.stderr.write(`more decisions match: repeat with --cursor ${nextCursor}\n`);
  });
}

function formatFromExtension(file: string): string {
  const extension = extname(file).toLowerCase();
  if (extension === '.json') return 'json';
  if (extension === '.jsonl' || extension === '.ndjson') return 'jsonl';
  return 'csv';
}

/** Streams every matching decision (page by page) into the file. */
export async function exportDecisions(
  target: Pick<Target, 'dynamodb' | 'names'>,
  query: AuditQuery,
  file: string,
  format: (typeof EXPORT_FORMATS)[number],
  max = Number.POSITIVE_INFINITY,
): Promise<{ count: number; nextCursor?: string }> {
  const out: NodeJS.WritableStream = file === '-' ? process.stdout : createWriteStream(file);
  // A reader that stops early (`| head`) closes the pipe: stop exporting, quietly.
  let closed = false;
  const onError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') closed = true;
  };
  if (out === process.stdout) process.stdout.on('error', onError);
  const write = (text: string) =>
    new Promise<void>((resolve, reject) => {
      if (closed) return resolve();
      if (out.write(text)) resolve();
      else out.once('drain', resolve).once('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? resolve() : reject(err)));
    });
  let count = 0;
  let cursor = query.cursor;
  let nextCursor: string | undefined;
  if (format === 'csv') await write(`${renderCsv([], AUDIT_CSV_COLUMNS)}\n`);
  if (format === 'json') await write('[');
  try {
    do {
      const page = await queryDecisions(target, { ...query, cursor, limit: Math.min(500, max - count) });
      for (const record of page.items) await write(serialise(record, format, count++));
      cursor = page.nextCursor;
      nextCursor = count >= max ? page.nextCursor : undefined;
    } while (cursor && count < max && !closed);
    if (format === 'json') await write(count ? '\n]\n' : ']\n');
  } finally {
    if (out === process.stdout) process.stdout.off('error', onError);
    if (out !== process.stdout) await new Promise<void>((resolve, reject) => (out as WriteStream).end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
  return { count, nextCursor };
}

function serialise(record: DecisionRecord, format: (typeof EXPORT_FORMATS)[number], index: number): string {
  if (format === 'jsonl') return `${JSON.stringify(record)}\n`;
  if (format === 'json') return `${index ? ',' : ''}\n${JSON.stringify(record)}`;
  // renderCsv's first line is the header; the rest is the row.
  return `${renderCsv([csvRow(record)], AUDIT_CSV_COLUMNS).split('\n').slice(1).join('\n')}\n`;
}
