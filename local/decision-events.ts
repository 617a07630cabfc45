/**
 * Decision events in the embedded runtime (docs/architecture.md, invariant 8; docs/events.md): the
 * local counterpart of the decision table's DynamoDB stream and the function on it.
 *
 *   any PutItem on the decision table (record and fail handlers, `moderation review`, the console,
 *   any AWS client) ─▶ tapPutItems (local/dynamodb.ts's server) ─▶ outbox entry `uncommitted`
 *     ─▶ the table answers 200: `pending` (or `unsent` without a webhook) ─▶ WebhookDelivery (signed POST)
 *
 * Like the stream, it sees every writer, not only the handlers (which do not know about events:
 * invariant 6). Like NEW_IMAGE + INSERT, the event is built from the item written, once per key:
 * the id is derived from the key and the outbox keeps one entry per id. The entry is on disk before
 * the table has the item, so a crash between the two is settled at the next start by reading the
 * table (`settleUncommitted`). Publishing never costs a decision: if the outbox cannot be written the
 * write goes on (and the error is logged).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { decisionEvent, decisionEventId, hasDecisionEvent, type ModerationDecisionEvent } from '../functions/lib/decision-event.ts';
import { isContentIndexItem, recordFromItem, TABLE_KEYS } from '../functions/store/table-schema.ts';
import { DynamoDecisionStore } from '../functions/store/decision-store.ts';
import type { DecisionRecord } from '../functions/lib/types.ts';
import { DELIVERED_RETENTION_DAYS, EventOutbox } from './event-outbox.ts';
import { WebhookDelivery, type WebhookSettings } from './webhook-delivery.ts';
import { DUMMY_CREDENTIALS } from './client-config.ts';
import type { LocalLogger } from './net.ts';

/** What a write's answer says about the item: stored, not stored (a 4xx: a failed condition), or not known. */
export type PutOutcome = 'written' | 'refused' | 'unknown';

/** Told about each PutItem on one table, around it (the local table's stream). */
export interface TableStream {
  /** Before the item reaches the table. Synchronous; a token to pass to `afterPut`, or undefined to ignore this write. */
  beforePut(item: Record<string, unknown>): unknown;
  afterPut(token: unknown, outcome: PutOutcome): void;
}

/**
 * Puts `stream` in front of the PutItem requests for `tableName` that `server` (dynalite) receives:
 * the body is read, `beforePut` told, then the same request handed on; its answer goes to `afterPut`.
 * Every other request passes untouched. Call before listen() (its browser guard then still comes first).
 */
export function tapPutItems(server: Server, tableName: string, stream: TableStream, log?: LocalLogger): void {
  const emit = server.emit;
  server.emit = function tappedEmit(this: Server, event: string | symbol, ...args: unknown[]): boolean {
    const [req, res] = args as [IncomingMessage, ServerResponse];
    if (event !== 'request' || req.method !== 'POST' || !String(req.headers['x-amz-target'] ?? '').endsWith('.PutItem')) {
      return (emit as (this: Server, event: string | symbol, ...args: unknown[]) => boolean).call(this, event, ...args);
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let token: unknown;
      try {
        const input = JSON.parse(body.toString('utf8')) as { TableName?: string; Item?: Record<string, never> };
        if (input.TableName === tableName && input.Item) token = stream.beforePut(unmarshall(input.Item));
      } catch (err) {
        // Not JSON, or the outbox cannot be written: the table answers the request as it would anyway.
        if (!(err instanceof SyntaxError)) log?.error('decision event not recorded before the write (the write goes on)', { error: (err as Error).message });
      }
      if (token !== undefined) {
        let told = false;
        const tell = (outcome: PutOutcome) => {
          if (told) return;
          told = true;
          try {
            stream.afterPut(token, outcome);
          } catch (err) {
            log?.error('decision event not committed after the write', { error: (err as Error).message });
          }
        };
        res.once('finish', () => tell(res.statusCode === 200 ? 'written' : res.statusCode >= 400 && res.statusCode < 500 ? 'refused' : 'unknown'));
        res.once('close', () => tell('unknown'));
      }
      const replay = Object.assign(new PassThrough(), { headers: req.headers, method: req.method, url: req.url, socket: req.socket, httpVersion: req.httpVersion });
      (emit as (this: Server, event: string | symbol, ...args: unknown[]) => boolean).call(server, 'request', replay, res);
      replay.end(body);
    });
    return true;
  } as Server['emit'];
}

export interface LocalDecisionEventsOptions {
  home: string;
  /** Deliver each event to this webhook; absent: events are kept in the outbox as `unsent`. */
  webhook?: WebhookSettings;
  log: LocalLogger;
}

interface Candidate {
  id: string;
  event: ModerationDecisionEvent;
  recordKey: { pk: string; sk: string };
}

export interface LocalDecisionEvents {
  outbox: EventOutbox;
  /** The webhook worker (when a webhook is configured). */
  delivery?: WebhookDelivery;
  /** Give to startLocalDynamo: the table's stream. */
  stream: TableStream;
  /**
   * Once the table is up: settles entries a crash left `uncommitted` (by reading the table) and
   * resumes the deliveries left `pending`.
   */
  start(table: { endpoint: string; region: string; tableName: string; statusShards: number }): Promise<void>;
  /** Waits until no delivery is outstanding, at most `timeoutMs`; true when none is. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Stops the worker (waits for requests in flight); pending events stay in the outbox. */
  stop(): Promise<void>;
  /**
   * Calls `listener` with each decision event once its record is in the table (in this process; the
   * bench waits on it instead of polling the table). Returns the unsubscribe function. A listener
   * that throws is ignored.
   */
  subscribe(listener: (event: ModerationDecisionEvent) => void): () => void;
}

export function localDecisionEvents(options: LocalDecisionEventsOptions): LocalDecisionEvents {
  const { log } = options;
  const outbox = EventOutbox.at(options.home);
  const delivery = options.webhook ? new WebhookDelivery(outbox, options.webhook, log) : undefined;
  /** Writes in flight per event id (two reviewers racing for one key both get a candidate). */
  const inFlight = new Map<string, number>();
  /** Checks of writes whose answer was lost. */
  const checks = new Set<Promise<void>>();
  let store: DynamoDecisionStore | undefined;
  let client: DynamoDBDocumentClient | undefined;

  const listeners = new Set<(event: ModerationDecisionEvent) => void>();
  const commit = (event: ModerationDecisionEvent) => {
    const entry = outbox.get(event.id);
    if (!entry || entry.delivery.status !== 'uncommitted') return;
    entry.event = event;
    entry.delivery.status = delivery ? 'pending' : 'unsent';
    entry.delivery.url = delivery?.settings.url;
    outbox.save(entry);
    delivery?.enqueue(event.id);
    for (const listener of listeners) {
      try {
        listener(event);
      } catch {
        // A listener's problem is not the decision's.
      }
    }
  };
  const dropIfUncommitted = (id: string) => {
    if ((inFlight.get(id) ?? 0) > 0) return;
    if (outbox.get(id)?.delivery.status === 'uncommitted') outbox.remove(id);
  };
  /** What the table holds under the entry's key decides: the stored item's event, or nothing. */
  const settleFromTable = async (id: string, recordKey: { pk: string; sk: string }) => {
    if (!store) return;
    const jobId = recordKey.pk.replace(/^JOB#/, '');
    const stored = (await store.jobHistory(jobId)).find((r) => r.sk === recordKey.sk);
    if (stored) commit(decisionEvent(stored));
    else dropIfUncommitted(id);
  };

  const stream: TableStream = {
    beforePut(item) {
      const pk = item[TABLE_KEYS.partitionKey];
      const sk = item[TABLE_KEYS.sortKey];
      if (typeof pk !== 'string' || typeof sk !== 'string') return undefined;
      // The content index's items (table-schema.ts) are not decisions: no event.
      if (isContentIndexItem(item)) return undefined;
      const id = decisionEventId({ pk, sk });
      const existing = outbox.get(id);
      // INSERT only: a key that already has its event (an overwrite, or a write its condition refuses) gets none.
      if (existing && existing.delivery.status !== 'uncommitted') return undefined;
      const record = recordFromItem(item) as DecisionRecord;
      if (!hasDecisionEvent(record)) return undefined; // an appeal or a quality sample: not a decision, no event
      const candidate: Candidate = { id, event: decisionEvent(record), recordKey: { pk, sk } };
      if (!existing) {
        outbox.save({ event: candidate.event, recordKey: candidate.recordKey, delivery: { status: 'uncommitted', attempts: 0, createdAt: new Date().toISOString() } });
      }
      inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
      return candidate;
    },
    afterPut(token, outcome) {
      const candidate = token as Candidate;
      const left = (inFlight.get(candidate.id) ?? 1) - 1;
      if (left > 0) inFlight.set(candidate.id, left);
      else inFlight.delete(candidate.id);
      if (outcome === 'written') return commit(candidate.event);
      if (outcome === 'refused') return dropIfUncommitted(candidate.id);
      const check = settleFromTable(candidate.id, candidate.recordKey)
        .catch((err: Error) => log.error('could not check a write whose answer was lost; its event is settled at the next start', { id: candidate.id, error: err.message }))
        .finally(() => checks.delete(check));
      checks.add(check);
    },
  };

  return {
    outbox,
    delivery,
    stream,
    async start(table) {
      client = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: table.endpoint, region: table.region, credentials: DUMMY_CREDENTIALS }));
      store = new DynamoDecisionStore({ client, tableName: table.tableName, statusShards: table.statusShards });
      // The directory is read once: settling changes only the uncommitted entries (commit enqueues their delivery).
      const entries = outbox.list();
      const uncommitted = entries.filter((e) => e.delivery.status === 'uncommitted' && !inFlight.has(e.event.id));
      for (const entry of uncommitted) await settleFromTable(entry.event.id, entry.recordKey);
      if (uncommitted.length) log.info('settled decision events left uncommitted by the last run', { settled: uncommitted.length });
      // The outbox is not an archive (the table is): delivered events go after a while, so a long-lived data directory stays small.
      const pruned = outbox.prune(new Date(Date.now() - DELIVERED_RETENTION_DAYS * 86_400_000), ['delivered'], entries);
      if (pruned.length) log.info('pruned delivered decision events', { pruned: pruned.length, olderThanDays: DELIVERED_RETENTION_DAYS });
      if (delivery) {
        const pending = entries.filter((e) => e.delivery.status === 'pending');
        for (const entry of pending) delivery.enqueue(entry.event.id);
        if (pending.length) log.info('resuming webhook deliveries', { pending: pending.length });
      }
    },
    async drain(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      await Promise.allSettled([...checks]);
      return delivery ? delivery.drain(Math.max(0, deadline - Date.now())) : true;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      await Promise.allSettled([...checks]);
      await delivery?.stop();
      client?.destroy();
    },
  };
}
