/**
 * The stack's decision events by key, for the benches: an upload's decision is heard from the table
 * stream (`stack.events`), so nothing polls the table and the bench's own load stays out of the figures.
 */
import type { ModerationDecisionEvent } from '../functions/lib/decision-event.ts';

interface DecisionEvents {
  subscribe(listener: (event: ModerationDecisionEvent) => void): unknown;
}

export function decisionWatcher(events: DecisionEvents): { decisionOf(key: string, deadlineMs: number): Promise<number> } {
  // Decisions recorded before anyone waits for them; each is taken once, so the map stays small.
  const early = new Map<string, number>();
  const waiting = new Map<string, (at: number) => void>();
  events.subscribe((event) => {
    if (event.type !== 'automated' && event.type !== 'failure') return;
    const at = performance.now();
    const waiter = waiting.get(event.key);
    if (waiter) waiter(at);
    else early.set(event.key, at);
  });
  return {
    /** When the key's decision was recorded (performance.now()); rejects after deadlineMs without one. */
    decisionOf(key, deadlineMs) {
      return new Promise<number>((resolve, reject) => {
        const at = early.get(key);
        if (at !== undefined) {
          early.delete(key);
          return resolve(at);
        }
        const timer = setTimeout(() => {
          waiting.delete(key);
          reject(new Error(`no decision for ${key} within ${deadlineMs} ms`));
        }, deadlineMs);
        waiting.set(key, (recordedAt) => {
          clearTimeout(timer);
          waiting.delete(key);
          resolve(recordedAt);
        });
      });
    },
  };
}
