/**
 * Pruning the local event outbox (local/event-outbox.ts, `moderation events prune`): only events owed
 * to nobody (delivered, unsent) and older than the cutoff go; pending, failed and uncommitted stay.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { EventOutbox, type DeliveryStatus, type OutboxEntry } from '../../local/event-outbox.ts';
import type { ModerationDecisionEvent } from '../../functions/lib/decision-event.ts';
import { moderation } from '../e2e/cli.ts';

const homes: string[] = [];
afterEach(() => {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

function outboxWith(entries: { name: string; status: DeliveryStatus; decidedAt: string }[]): { home: string; outbox: EventOutbox; ids: Record<string, string> } {
  const home = mkdtempSync(join(tmpdir(), 'outbox-prune-'));
  homes.push(home);
  const outbox = EventOutbox.at(home);
  const ids: Record<string, string> = {};
  for (const { name, status, decidedAt } of entries) {
    const id = createHash('sha256').update(name).digest('hex');
    ids[name] = id;
    const event = { id, decidedAt, key: `uploads/u/${name}.jpg`, type: 'automated', status: 'APPROVED' } as unknown as ModerationDecisionEvent;
    const entry: OutboxEntry = { event, recordKey: { pk: `JOB#${name}`, sk: 'DECISION#automated' }, delivery: { status, attempts: status === 'delivered' ? 1 : 0, createdAt: decidedAt } };
    outbox.save(entry);
  }
  return { home, outbox, ids };
}

const OLD = '2026-01-01T00:00:00.000Z';
const NEW = '2026-11-30T00:00:00.000Z';
const CUTOFF = new Date('2026-06-01T00:00:00.000Z');

describe('EventOutbox.prune', () => {
  it('removes old delivered and unsent events and keeps everything still owed or recent', () => {
    const { outbox, ids } = outboxWith([
      { name: 'old-delivered', status: 'delivered', decidedAt: OLD },
      { name: 'old-unsent', status: 'unsent', decidedAt: OLD },
      { name: 'old-pending', status: 'pending', decidedAt: OLD },
      { name: 'old-failed', status: 'failed', decidedAt: OLD },
      { name: 'old-uncommitted', status: 'uncommitted', decidedAt: OLD },
      { name: 'new-delivered', status: 'delivered', decidedAt: NEW },
    ]);
    const removed = outbox.prune(CUTOFF);
    expect(removed.sort()).toEqual([ids['old-delivered'], ids['old-unsent']].sort());
    expect(outbox.list().map((e) => e.event.id).sort()).toEqual([ids['old-pending'], ids['old-failed'], ids['old-uncommitted'], ids['new-delivered']].sort());
  });

  it('a status that is still owed is ignored even when asked for', () => {
    const { outbox } = outboxWith([{ name: 'old-failed', status: 'failed', decidedAt: OLD }]);
    expect(outbox.prune(CUTOFF, ['failed', 'pending'])).toEqual([]);
    expect(outbox.list()).toHaveLength(1);
  });
});

describe('moderation events prune', () => {
  it('--status delivered removes only delivered events; --json reports them', async () => {
    const { home, outbox, ids } = outboxWith([
      { name: 'old-delivered', status: 'delivered', decidedAt: OLD },
      { name: 'old-unsent', status: 'unsent', decidedAt: OLD },
    ]);
    const result = await moderation(['events', 'prune', '--older-than', '2026-06-01', '--status', 'delivered', '--home', home, '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ removed: 1, ids: [ids['old-delivered']] });
    expect(outbox.list().map((e) => e.event.id)).toEqual([ids['old-unsent']]);
  });

  it('a status that cannot be pruned, or no --older-than, is a one-line usage error and removes nothing', async () => {
    const { home, outbox } = outboxWith([{ name: 'old-delivered', status: 'delivered', decidedAt: OLD }]);
    const wrong = await moderation(['events', 'prune', '--older-than', '7d', '--status', 'failed', '--home', home]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrong.stderr).toContain('--status');
    const missing = await moderation(['events', 'prune', '--home', home]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('--older-than');
    expect(outbox.list()).toHaveLength(1);
  });
});
