/**
 * The local event outbox: one file per decision event under `<home>/events/`, named by the event id
 * (`<id>.json`), holding the event and its delivery state. Files are written atomically (a temporary
 * file renamed over the old one), so a crash leaves either the old state or the new one.
 *
 * An entry is `uncommitted` from just before the decision's PutItem reaches the table until the
 * table answers (local/decision-events.ts): a crash in between is settled at the next start by
 * reading the table. Then it is `pending` (a webhook is configured: deliver it), `delivered`,
 * `failed` (retries exhausted, or the receiver refused it with a 4xx), or `unsent` (no webhook was
 * configured when it was recorded; `moderation events redeliver --url` sends it).
 *
 * The local runtime writes here; `moderation events list|show|redeliver` read and update it.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ModerationDecisionEvent } from '../functions/lib/decision-event.ts';

export type DeliveryStatus = 'uncommitted' | 'pending' | 'delivered' | 'failed' | 'unsent';

export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['uncommitted', 'pending', 'delivered', 'failed', 'unsent'];

export interface DeliveryState {
  status: DeliveryStatus;
  /** The webhook it is (or was last) sent to. */
  url?: string;
  /** HTTP attempts so far. */
  attempts: number;
  /** When the event was written here (ISO 8601). */
  createdAt: string;
  lastAttemptAt?: string;
  /** When the next attempt is due (pending after a failed attempt). */
  nextAttemptAt?: string;
  /** What the last failed attempt got: an HTTP status and a line of its body, a timeout, a network error. */
  lastError?: string;
  /** The HTTP status of the last attempt. */
  responseStatus?: number;
  deliveredAt?: string;
}

export interface OutboxEntry {
  event: ModerationDecisionEvent;
  /** The decision table's key of the record the event tells. */
  recordKey: { pk: string; sk: string };
  delivery: DeliveryState;
}

const ID = /^[0-9a-f]{64}$/;

/**
 * What pruning may remove: events the platform got (`delivered`) and events recorded with no
 * webhook set (`unsent`, the local history of a run). Never `pending`, `failed` or
 * `uncommitted`: those are still owed to someone.
 */
export const PRUNABLE_STATUSES: readonly DeliveryStatus[] = ['delivered', 'unsent'];

/** How long the local runtime keeps delivered events before it prunes them at start. */
export const DELIVERED_RETENTION_DAYS = 30;

/** `<home>/events`. */
export function outboxDirectory(home: string): string {
  return join(home, 'events');
}

export class EventOutbox {
  constructor(readonly directory: string) {}

  static at(home: string): EventOutbox {
    return new EventOutbox(outboxDirectory(home));
  }

  get(id: string): OutboxEntry | undefined {
    if (!ID.test(id)) return undefined;
    try {
      return JSON.parse(readFileSync(this.path(id), 'utf8')) as OutboxEntry;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Every entry, oldest decision first (uncommitted ones included: filter by delivery.status). */
  list(): OutboxEntry[] {
    const entries: OutboxEntry[] = [];
    for (const id of this.ids()) {
      const entry = this.get(id);
      if (entry) entries.push(entry);
    }
    return entries.sort((a, b) => a.event.decidedAt.localeCompare(b.event.decidedAt) || a.event.id.localeCompare(b.event.id));
  }

  /** Ids that start with `prefix` (what `events list` prints is a prefix), from the file names alone. */
  idsStartingWith(prefix: string): string[] {
    const p = prefix.toLowerCase();
    return this.ids().filter((id) => id.startsWith(p));
  }

  /** The ids of the entries on disk (their file names), unread. */
  private ids(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.directory);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names.filter((name) => name.endsWith('.json') && ID.test(name.slice(0, -5))).map((name) => name.slice(0, -5));
  }

  /** Writes the entry atomically (temporary file, then rename). */
  save(entry: OutboxEntry): void {
    const id = entry.event.id;
    if (!ID.test(id)) throw new Error(`not an event id: ${id}`);
    mkdirSync(this.directory, { recursive: true });
    const temporary = join(this.directory, `.${id}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    writeFileSync(temporary, `${JSON.stringify(entry, null, 1)}\n`);
    renameSync(temporary, this.path(id));
  }

  /** Reads, changes and saves one entry; returns it (undefined when there is none). */
  update(id: string, change: (entry: OutboxEntry) => void): OutboxEntry | undefined {
    const entry = this.get(id);
    if (!entry) return undefined;
    change(entry);
    this.save(entry);
    return entry;
  }

  /**
   * Removes the entries in `statuses` (a subset of PRUNABLE_STATUSES) whose decision is older than
   * `before`; returns the ids removed. The decisions themselves stay in the table. `entries`: the
   * outbox as the caller has just read it, so a start reads the directory once.
   */
  prune(before: Date, statuses: readonly DeliveryStatus[] = PRUNABLE_STATUSES, entries: readonly OutboxEntry[] = this.list()): string[] {
    const allowed = statuses.filter((s) => PRUNABLE_STATUSES.includes(s));
    const cutoff = before.toISOString();
    const removed: string[] = [];
    for (const entry of entries) {
      if (!allowed.includes(entry.delivery.status) || entry.event.decidedAt >= cutoff) continue;
      this.remove(entry.event.id);
      removed.push(entry.event.id);
    }
    return removed;
  }

  remove(id: string): void {
    if (ID.test(id)) rmSync(this.path(id), { force: true });
  }

  private path(id: string): string {
    return join(this.directory, `${id}.json`);
  }
}

/** Delivered nowhere yet after a failed attempt: given up (`failed`), or still `pending` with an error. */
export function isFailedDelivery(entry: OutboxEntry): boolean {
  return entry.delivery.status === 'failed' || (entry.delivery.status === 'pending' && entry.delivery.attempts > 0 && Boolean(entry.delivery.lastError));
}
