/**
 * Delivers the outbox's decision events (local/event-outbox.ts) to a webhook: one HTTPS (or HTTP)
 * POST per event, the body the event's JSON, signed with HMAC-SHA256
 * (functions/lib/webhook-signature.ts). At least once: a timeout, a network error, 408, 429 or a
 * 5xx is retried with exponential backoff and jitter, up to `attempts`; any other answer but 2xx is
 * final (`failed`). The state of each event is in its outbox file after every attempt, so what a
 * stop interrupts resumes at the next start, and `moderation events redeliver` sends what failed.
 *
 * It never holds up a decision: the outbox entry is written when the record is, and the HTTP calls
 * run on their own timers, a few at a time.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signatureHeader } from '../functions/lib/webhook-signature.ts';
import type { EventOutbox, OutboxEntry } from './event-outbox.ts';
import type { LocalLogger } from './net.ts';

export interface WebhookSettings {
  url: string;
  /** The HMAC key (MODERATION_WEBHOOK_SECRET). */
  secret: string;
  /** Attempts per event before it is `failed`. Default 8. */
  attempts?: number;
  /** The wait after the first failed attempt; it doubles each time, with jitter. Default 1,000 ms. */
  backoffMs?: number;
  /** The longest wait between attempts. Default 60,000 ms. */
  maxBackoffMs?: number;
  /** One request's timeout (connect to last byte). Default 10,000 ms. */
  timeoutMs?: number;
  /** Requests in flight at once. Default 4. */
  concurrency?: number;
}

export const WEBHOOK_DEFAULTS = { attempts: 8, backoffMs: 1_000, maxBackoffMs: 60_000, timeoutMs: 10_000, concurrency: 4 } as const;

export type AttemptResult = { ok: true; status: number } | { ok: false; retryable: boolean; status?: number; error: string };

/** The exact bytes sent (and signed) for an event. */
export function webhookBody(entry: Pick<OutboxEntry, 'event'>): string {
  return JSON.stringify(entry.event);
}

/** One POST of one event; never throws. */
export function postEvent(entry: Pick<OutboxEntry, 'event'>, url: string, secret: string, timeoutMs: number = WEBHOOK_DEFAULTS.timeoutMs): Promise<AttemptResult> {
  const body = webhookBody(entry);
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    const finish = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const req = send(
      target,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'upload-moderation-webhook/1',
          [EVENT_ID_HEADER]: entry.event.id,
          [SIGNATURE_HEADER]: signatureHeader(body, secret),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < 2048) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('error', (err) => finish({ ok: false, retryable: true, error: `response: ${err.message}` }));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return finish({ ok: true, status });
          const text = Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
          const retryable = status >= 500 || status === 408 || status === 429;
          finish({ ok: false, retryable, status, error: `HTTP ${status}${text ? `: ${text}` : ''}` });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, retryable: true, error: err.code ? `${err.code}: ${err.message}` : err.message }));
    req.end(body);
  });
}

/** The wait before attempt `attempt + 1` after `attempt` failed ones: doubling from backoffMs, capped, with jitter (50-100 %). */
export function backoffDelay(attempt: number, settings: Pick<WebhookSettings, 'backoffMs' | 'maxBackoffMs'>, random = Math.random): number {
  const base = settings.backoffMs ?? WEBHOOK_DEFAULTS.backoffMs;
  const cap = settings.maxBackoffMs ?? WEBHOOK_DEFAULTS.maxBackoffMs;
  const exponential = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (0.5 + random() * 0.5));
}

/** The worker: a queue of event ids, `concurrency` POSTs at a time, retries on timers. */
export class WebhookDelivery {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Attempts made by this worker per event (the outbox's `attempts` counts every worker's). */
  private readonly tries = new Map<string, number>();
  private readonly forced = new Set<string>();
  private stopped = false;

  constructor(
    private readonly outbox: EventOutbox,
    readonly settings: WebhookSettings,
    private readonly log?: LocalLogger,
  ) {}

  /**
   * Sends this event now (or as soon as a slot is free), to this worker's URL, with a fresh budget of
   * attempts. `force`: even when it was delivered already (a redelivery someone asked for).
   */
  enqueue(id: string, options: { force?: boolean } = {}): void {
    if (this.stopped || this.queued.has(id) || this.inFlight.has(id)) return;
    if (options.force) this.forced.add(id);
    const timer = this.timers.get(id);
    if (timer) {
      clearTimeout(timer);
      this.timers.delete(id);
    }
    this.queued.add(id);
    this.queue.push(id);
    this.pump();
  }

  /** Nothing queued, waiting for a retry, or in flight. */
  get idle(): boolean {
    return this.queue.length === 0 && this.timers.size === 0 && this.inFlight.size === 0;
  }

  /** How many events are queued, waiting for a retry, or in flight. */
  get outstanding(): number {
    return this.queue.length + this.timers.size + this.inFlight.size;
  }

  /** Resolves true once idle, false when `timeoutMs` passes first (nothing is cancelled). */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.idle) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(20, Math.max(1, deadline - Date.now()))));
    }
    return true;
  }

  /** Cancels the waiting retries (their events stay `pending` in the outbox) and waits for requests in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private pump(): void {
    const concurrency = this.settings.concurrency ?? WEBHOOK_DEFAULTS.concurrency;
    while (!this.stopped && this.inFlight.size < concurrency && this.queue.length) {
      const id = this.queue.shift()!;
      this.queued.delete(id);
      const attempt = this.attempt(id)
        .catch((err: Error) => this.log?.error('webhook delivery failed unexpectedly', { id, error: err.message }))
        .finally(() => {
          this.inFlight.delete(id);
          this.pump();
        });
      this.inFlight.set(id, attempt);
    }
  }

  private async attempt(id: string): Promise<void> {
    const entry = this.outbox.get(id);
    // Delivered meanwhile (another process) unless asked again, or not to be sent.
    if (!entry || entry.delivery.status === 'uncommitted' || (entry.delivery.status === 'delivered' && !this.forced.has(id))) return;
    this.forced.delete(id);
    const { url, secret } = this.settings;
    const result = await postEvent(entry, url, secret, this.settings.timeoutMs);
    const attempts = this.settings.attempts ?? WEBHOOK_DEFAULTS.attempts;
    const tried = (this.tries.get(id) ?? 0) + 1;
    this.tries.set(id, tried);
    let retryInMs: number | undefined;
    const updated = this.outbox.update(id, (e) => {
      const d = e.delivery;
      d.url = url;
      d.attempts += 1;
      d.lastAttemptAt = new Date().toISOString();
      d.responseStatus = result.status;
      d.nextAttemptAt = undefined;
      if (result.ok) {
        d.status = 'delivered';
        d.deliveredAt = d.lastAttemptAt;
        d.lastError = undefined;
        return;
      }
      d.lastError = result.error;
      if (result.retryable && tried < attempts && !this.stopped) {
        d.status = 'pending';
        retryInMs = backoffDelay(tried, this.settings);
        d.nextAttemptAt = new Date(Date.now() + retryInMs).toISOString();
      } else {
        // Given up, or the stack is stopping (then `pending`: the next start or `events redeliver` sends it).
        d.status = result.retryable && tried < attempts ? 'pending' : 'failed';
      }
    });
    if (!updated) return;
    if (result.ok || retryInMs === undefined) this.tries.delete(id);
    if (result.ok) return;
    if (retryInMs !== undefined) {
      const timer = setTimeout(() => {
        this.timers.delete(id);
        this.queued.add(id);
        this.queue.push(id);
        this.pump();
      }, retryInMs);
      this.timers.set(id, timer);
    } else if (updated.delivery.status === 'failed') {
      this.log?.warn('webhook delivery failed: see `moderation events list --failed`, resend with `moderation events redeliver`', {
        id,
        key: entry.event.key,
        attempts: updated.delivery.attempts,
        error: updated.delivery.lastError,
      });
    }
  }
}

/** Why a webhook URL cannot be used (undefined when it can): it must be an absolute http:// or https:// URL. */
export function webhookUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL (expected http://host[:port]/path or https://...)`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `"${url}" is not an http:// or https:// URL`;
  if (parsed.username || parsed.password) return `"${parsed.origin}": put no credentials in the URL (the requests are signed with MODERATION_WEBHOOK_SECRET)`;
  return undefined;
}
