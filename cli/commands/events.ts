/**
 * `moderation events list|show|redeliver|prune`: the local runtime's decision events (one per record of
 * the history; invariant 8) as kept in the outbox under `<home>/events/`, their webhook deliveries,
 * and sending again what failed. docs/events.md.
 *
 * Local only: on AWS the events go to EventBridge (failed webhook deliveries to the construct's
 * queue), and nothing is kept in a data directory.
 */
import type { Command } from 'commander';
import { dataHome } from '../target.ts';
import { parseChoice, parseInteger, parseWhen, plural } from '../flags.ts';
import { escapeLines, renderTable, UsageError, type Row } from '../output.ts';
import { shorten } from '../audit.ts';
import { webhookSecret, webhookTuning } from '../webhook.ts';
import { DELIVERY_STATUSES, EventOutbox, isFailedDelivery, PRUNABLE_STATUSES, type DeliveryStatus, type OutboxEntry } from '../../local/event-outbox.ts';
import { WebhookDelivery, webhookUrlProblem, type WebhookSettings } from '../../local/webhook-delivery.ts';

interface ListFlags {
  home?: string;
  failed?: boolean;
  status?: string;
  max?: string;
  json?: boolean;
}

interface ShowFlags {
  home?: string;
  json?: boolean;
}

interface RedeliverFlags {
  home?: string;
  id?: string[];
  unsent?: boolean;
  url?: string;
  attempts?: string;
  json?: boolean;
}

interface PruneFlags {
  home?: string;
  olderThan?: string;
  status?: string[];
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const LISTED_STATUSES = DELIVERY_STATUSES;

export function registerEvents(program: Command): void {
  const events = program
    .command('events')
    .description('decision events of the local runtime (one per decision) and their webhook deliveries')
    .addHelpText(
      'after',
      `
Examples:
  moderation events list
  moderation events list --failed               deliveries that failed (given up, or waiting to retry)
  moderation events show 5d41402abc4b
  moderation events redeliver                   send every failed delivery again
  moderation events redeliver --id 5d41402abc4b --url https://example.com/hook
  moderation events redeliver --unsent --url http://127.0.0.1:8080/hook
  moderation events prune --older-than 7d       remove delivered and unsent events decided before then

Every decision record (automated, human, failure) has one event, kept in <home>/events/ whether or not
a webhook is set (\`moderation run|serve --webhook <url>\`). Requests are signed with
$MODERATION_WEBHOOK_SECRET; receivers deduplicate on X-Moderation-Event-Id. Local only: a deployed
stack publishes to Amazon EventBridge instead (docs/events.md).`,
    );

  events
    .command('list')
    .description('the decision events, oldest first, with their delivery state')
    .option('--failed', 'only deliveries that failed: given up, or pending after a failed attempt')
    .option('--status <status>', `only this delivery state: ${LISTED_STATUSES.join(', ')}`)
    .option('--max <n>', 'the newest n only')
    .option('--home <dir>', 'local data directory (default $MODERATION_HOME or ./.moderation)')
    .option('--json', 'print a JSON array of the outbox entries (event and delivery)')
    .action((flags: ListFlags) => {
      listCommand(flags);
    });

  events
    .command('show')
    .description('one event (its JSON, exactly the webhook body) and its delivery')
    .argument('<id>', 'event id, or a unique prefix of 8+ characters')
    .option('--home <dir>', 'local data directory (default $MODERATION_HOME or ./.moderation)')
    .option('--json', 'print the outbox entry as JSON')
    .action((id: string, flags: ShowFlags) => {
      showCommand(id, flags);
    });

  events
    .command('redeliver')
    .description('send events to their webhook again: by default every failed delivery')
    .option('--id <id>', 'this event (id or unique prefix of 8+ characters), delivered or not; repeatable', collect)
    .option('--unsent', 'also events recorded while no webhook was set (needs --url)')
    .option('--url <url>', 'send to this webhook instead of the one each event was meant for')
    .option('--attempts <n>', 'attempts per event, with backoff on timeouts and 5xx (default 3)')
    .option('--home <dir>', 'local data directory (default $MODERATION_HOME or ./.moderation)')
    .option('--json', 'print one JSON object per event: id, key, delivery state, attempts, last error')
    .addHelpText('after', '\nExit codes: 0 every event delivered (or nothing to send); 2 some failed; 1 usage error.')
    .action(async (flags: RedeliverFlags) => {
      process.exitCode = await redeliverCommand(flags);
    });

  events
    .command('prune')
    .description('remove old events that are owed to nobody (delivered, or recorded with no webhook set); the decisions stay in the table')
    .requiredOption('--older-than <when>', 'events decided before this date or duration ago (7d, 2026-11-01)')
    .option('--status <status>', `only this delivery state: ${PRUNABLE_STATUSES.join(', ')} (repeatable; default both)`, collect)
    .option('--home <dir>', 'local data directory (default $MODERATION_HOME or ./.moderation)')
    .option('--json', 'print {"removed": n, "ids": [...]}')
    .addHelpText('after', `\nPending, failed and uncommitted events are never pruned. The stack itself prunes delivered events older than 30 days at start.`)
    .action((flags: PruneFlags) => {
      pruneCommand(flags);
    });
}

function pruneCommand(flags: PruneFlags): void {
  const home = dataHome(flags.home);
  const before = parseWhen(flags.olderThan!, '--older-than');
  const statuses = (flags.status ?? [...PRUNABLE_STATUSES]).map((s) => parseChoice(s, '--status', PRUNABLE_STATUSES));
  const removed = EventOutbox.at(home).prune(before, statuses);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ removed: removed.length, ids: removed })}\n`);
    return;
  }
  process.stdout.write(`removed ${plural(removed.length, 'event')} (${statuses.join(', ')}) decided before ${before.toISOString()}\n`);
}

export interface ListQuery {
  failed?: boolean;
  status?: DeliveryStatus;
  max?: number;
}

/** The outbox's entries matching a query, oldest first (uncommitted ones only when asked by status). */
export function listEvents(home: string, query: ListQuery = {}): OutboxEntry[] {
  let entries = EventOutbox.at(home)
    .list()
    .filter((e) => (query.status ? e.delivery.status === query.status : e.delivery.status !== 'uncommitted'));
  if (query.failed) entries = entries.filter(isFailedDelivery);
  if (query.max !== undefined) entries = entries.slice(-query.max);
  return entries;
}

function listCommand(flags: ListFlags): void {
  const home = dataHome(flags.home);
  const status = flags.status === undefined ? undefined : parseChoice(flags.status, '--status', LISTED_STATUSES);
  const max = flags.max === undefined ? undefined : parseInteger(flags.max, '--max', { min: 1 });
  const entries = listEvents(home, { failed: flags.failed, status, max });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
    return;
  }
  if (entries.length === 0) {
    process.stdout.write(flags.failed ? 'no failed deliveries\n' : `no events in ${EventOutbox.at(home).directory}\n`);
    return;
  }
  const rows: Row[] = entries.map((e) => ({
    event: e.event.id.slice(0, 12),
    'decided at': e.event.decidedAt,
    type: e.event.type,
    status: e.event.status,
    key: e.event.key,
    delivery: e.delivery.status,
    attempts: e.delivery.attempts,
    'last error': shorten(e.delivery.lastError ?? '', 60),
  }));
  process.stdout.write(`${renderTable(rows, ['event', 'decided at', 'type', 'status', 'key', 'delivery', 'attempts', 'last error'])}\n`);
  const failed = entries.filter(isFailedDelivery).length;
  process.stdout.write(`\n${plural(entries.length, 'event')}${failed ? `, ${failed} failed: send again with \`moderation events redeliver\`` : ''}\n`);
}

/** The one entry an id or a unique prefix (8+ hexadecimal characters) names; UsageError otherwise. */
export function resolveEventId(outbox: EventOutbox, text: string): OutboxEntry {
  const prefix = text.trim().toLowerCase();
  if (!/^[0-9a-f]{8,64}$/.test(prefix)) throw new UsageError(`an event id is 64 hexadecimal characters, or a unique prefix of at least 8 (see \`moderation events list\`), got "${text}"`);
  const ids = outbox.idsStartingWith(prefix);
  if (ids.length === 0) throw new UsageError(`no event id starts with ${prefix} in ${outbox.directory}`);
  if (ids.length > 1) throw new UsageError(`event id prefix ${prefix} is ambiguous: type more characters`);
  return outbox.get(ids[0]!)!;
}

function showCommand(id: string, flags: ShowFlags): void {
  const entry = resolveEventId(EventOutbox.at(dataHome(flags.home)), id);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(entry, null, 2)}\n`);
    return;
  }
  const d = entry.delivery;
  const lines = [
    `event      ${entry.event.id}`,
    `record     ${entry.event.recordId}`,
    `delivery   ${d.status}${d.url ? ` to ${d.url}` : ''}, ${plural(d.attempts, 'attempt')}${d.deliveredAt ? `, delivered ${d.deliveredAt}` : ''}${d.lastError ? `, last error: ${d.lastError}` : ''}`,
    '',
    JSON.stringify(entry.event, null, 2),
    '',
  ];
  process.stdout.write(escapeLines(lines.join('\n')));
}

export interface RedeliverOptions {
  ids?: string[];
  unsent?: boolean;
  /** Send to this URL instead of each event's own. */
  url?: string;
  secret: string;
  settings?: Partial<WebhookSettings>;
}

export interface RedeliveryResult {
  id: string;
  key: string;
  url?: string;
  delivery: DeliveryStatus;
  attempts: number;
  lastError?: string;
}

/**
 * Sends the chosen events again and waits for each to be delivered or given up. The choice: `ids`
 * (whatever their state), else every failed delivery (and with `unsent`, those never sent).
 */
export async function redeliverEvents(home: string, options: RedeliverOptions): Promise<RedeliveryResult[]> {
  const outbox = EventOutbox.at(home);
  const chosen = options.ids?.length
    ? [...new Map(options.ids.map((id) => resolveEventId(outbox, id)).map((e) => [e.event.id, e])).values()]
    : outbox.list().filter((e) => isFailedDelivery(e) || (options.unsent && e.delivery.status === 'unsent'));
  const uncommitted = chosen.find((e) => e.delivery.status === 'uncommitted');
  if (uncommitted) throw new UsageError(`event ${uncommitted.event.id.slice(0, 12)} is not committed (its write has no answer yet): start the stack on ${home} to settle it`);
  const without = chosen.filter((e) => !(options.url ?? e.delivery.url));
  if (without.length) throw new UsageError(`${plural(without.length, 'event')} ${without.length === 1 ? 'was' : 'were'} recorded without a webhook: pass --url <url>`);

  // One worker per URL; each event gets a fresh budget of attempts.
  const byUrl = new Map<string, OutboxEntry[]>();
  for (const entry of chosen) {
    const url = options.url ?? entry.delivery.url!;
    byUrl.set(url, [...(byUrl.get(url) ?? []), entry]);
  }
  await Promise.all(
    [...byUrl].map(async ([url, entries]) => {
      const worker = new WebhookDelivery(outbox, { ...options.settings, url, secret: options.secret });
      for (const entry of entries) worker.enqueue(entry.event.id, { force: true });
      // Each attempt has a timeout and each event a number of attempts: this ends.
      await worker.drain(Number.POSITIVE_INFINITY);
      await worker.stop();
    }),
  );
  return chosen.map((e) => {
    const now = outbox.get(e.event.id)!;
    return { id: e.event.id, key: e.event.key, url: now.delivery.url, delivery: now.delivery.status, attempts: now.delivery.attempts, lastError: now.delivery.lastError };
  });
}

async function redeliverCommand(flags: RedeliverFlags): Promise<number> {
  const home = dataHome(flags.home);
  if (flags.url !== undefined) {
    const problem = webhookUrlProblem(flags.url.trim());
    if (problem) throw new UsageError(`--url: ${problem}`);
  }
  const attempts = parseInteger(flags.attempts ?? '3', '--attempts', { min: 1, max: 100 });
  const secret = webhookSecret(process.env, 'redelivery');
  const results = await redeliverEvents(home, {
    ids: flags.id,
    unsent: flags.unsent,
    url: flags.url?.trim(),
    secret,
    settings: { ...webhookTuning(), attempts },
  });
  if (flags.json) {
    for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`);
  } else if (results.length === 0) {
    process.stdout.write(flags.unsent ? 'nothing to send: no failed or unsent events\n' : 'nothing to send: no failed deliveries\n');
  } else {
    const rows: Row[] = results.map((r) => ({ event: r.id.slice(0, 12), key: r.key, delivery: r.delivery, attempts: r.attempts, 'last error': shorten(r.lastError ?? '', 60) }));
    process.stdout.write(`${renderTable(rows, ['event', 'key', 'delivery', 'attempts', 'last error'])}\n`);
    const delivered = results.filter((r) => r.delivery === 'delivered').length;
    process.stdout.write(`\n${delivered} of ${plural(results.length, 'event')} delivered\n`);
  }
  return results.every((r) => r.delivery === 'delivered') ? 0 : 2;
}
