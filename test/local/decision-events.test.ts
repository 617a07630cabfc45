/**
 * The local table stream and outbox (local/decision-events.ts) against dynalite, without the rest of
 * the stack: one event per record written, whoever writes it; none for a write the table refuses;
 * exactly one when two reviewers race for the same key; an entry a crash left uncommitted is
 * settled from the table at the next start; a stopped worker's pending deliveries resume.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb.ts';
import { localDecisionEvents, type LocalDecisionEvents } from '../../local/decision-events.ts';
import { DynamoDecisionStore } from '../../functions/store/decision-store.ts';
import { DecisionConflictError } from '../../functions/store/errors.ts';
import { automatedRecord, humanRecord } from '../../functions/lib/decision.ts';
import { decisionEventId } from '../../functions/lib/decision-event.ts';
import { decisionItem, recordIdOf } from '../../functions/store/table-schema.ts';
import type { Decision, ModerationState } from '../../functions/lib/types.ts';
import { backoffDelay, webhookUrlProblem } from '../../local/webhook-delivery.ts';
import { closeServer, LOOPBACK, type LocalLogger } from '../../local/net.ts';
import { eventually, tempHome } from './stack-helpers.ts';

const quiet: LocalLogger = { info: () => {}, warn: () => {}, error: () => {} };
const region = 'us-east-1';

interface Running {
  dynamo: LocalDynamo;
  events: LocalDecisionEvents;
  store: DynamoDecisionStore;
  client: DynamoDBDocumentClient;
  stop(): Promise<void>;
}

async function start(home: string, webhook?: { url: string; backoffMs?: number }): Promise<Running> {
  const backoffMs = webhook?.backoffMs ?? 10;
  const events = localDecisionEvents({ home, log: quiet, webhook: webhook && { url: webhook.url, secret: 's', attempts: 3, backoffMs, maxBackoffMs: backoffMs * 2, timeoutMs: 1_000 } });
  const dynamo = await startLocalDynamo({ path: `${home}/dynamodb`, stream: events.stream });
  await events.start({ endpoint: dynamo.endpoint, region, tableName: dynamo.tableName, statusShards: 8 });
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const store = new DynamoDecisionStore({ client, tableName: dynamo.tableName, statusShards: 8 });
  return {
    dynamo,
    events,
    store,
    client,
    stop: async () => {
      client.destroy();
      await events.stop();
      await dynamo.close();
    },
  };
}

let n = 0;
function decision(): Decision {
  n += 1;
  const at = new Date(Date.UTC(2026, 10, 1, 0, 0, n)).toISOString();
  const state: ModerationState = {
    job: { jobId: `job${n}`, bucket: 'b', key: `uploads/u/${n}.png`, eventTime: at, receivedAt: at },
    detection: { verdict: 'BORDERLINE', labels: [], rule: { category: 'Explicit', label: 'Explicit', confidence: 60, action: 'review', threshold: 50 }, flagged: [], policyVersion: 'p', source: 's3-object', durationMs: 1 },
  };
  return automatedRecord(state, { decidedAt: at });
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanups.splice(0).reverse()) await step();
});

function home(): string {
  const h = tempHome('moderation-events-');
  cleanups.push(() => h.remove());
  return h.dir;
}

describe('the local table stream', () => {
  it('one entry per record written; a duplicate automated decision (refused by its condition) adds none', async () => {
    const dir = home();
    const r = await start(dir);
    cleanups.push(() => r.stop());
    const d = decision();
    const first = await r.store.putAutomatedOnce(d);
    const again = await r.store.putAutomatedOnce(d);
    expect(first.written).toBe(true);
    expect(again.written).toBe(false);
    const failure = await r.store.appendFailure({ ...decision(), kind: 'failure', status: 'FAILED' });
    const entries = r.events.outbox.list();
    expect(entries.map((e) => e.event.id).sort()).toEqual([decisionEventId(decisionItem(d, { shards: 8 })), decisionEventId(failure)].sort());
    // No webhook configured: kept, unsent.
    expect(entries.every((e) => e.delivery.status === 'unsent')).toBe(true);
  });

  it('two reviewers racing for the same revision: exactly one event, the winner\'s', async () => {
    const dir = home();
    const r = await start(dir);
    cleanups.push(() => r.stop());
    const auto = await r.store.putAutomatedOnce(decision());
    if (!auto.written) throw new Error('not written');
    const human = (status: 'APPROVED' | 'REJECTED', reviewer: string) =>
      humanRecord(auto.record, { status, reviewer, reason: 'r', decidedAt: new Date(Date.parse(auto.record.decidedAt) + 1000).toISOString(), supersedes: recordIdOf(auto.record) });
    const results = await Promise.allSettled([r.store.appendHuman(human('APPROVED', 'dana')), r.store.appendHuman(human('REJECTED', 'erin'))]);
    const won = results.find((x) => x.status === 'fulfilled') as PromiseFulfilledResult<Awaited<ReturnType<typeof r.store.appendHuman>>>;
    expect(results.filter((x) => x.status === 'rejected').map((x) => (x as PromiseRejectedResult).reason)).toEqual([expect.any(DecisionConflictError)]);
    const humans = r.events.outbox.list().filter((e) => e.event.type === 'human');
    expect(humans).toHaveLength(1);
    expect(humans[0]!.event).toMatchObject({ decidedBy: won.value.decidedBy, status: won.value.status, previousStatus: 'REVIEW' });
  });

  it('an entry a crash left uncommitted is settled from the table at the next start', async () => {
    const dir = home();
    const r = await start(dir);
    const written = await r.store.putAutomatedOnce(decision());
    if (!written.written) throw new Error('not written');
    // As if the process died after the outbox entry and before the answer: one write landed, one did not.
    const landed = { ...written.record };
    const lost = decisionItem(decision(), { shards: 8 });
    r.events.outbox.update(decisionEventId(landed), (e) => (e.delivery.status = 'uncommitted'));
    r.events.stream.beforePut(lost as never);
    expect(r.events.outbox.get(decisionEventId(lost))?.delivery.status).toBe('uncommitted');
    await r.stop();

    const again = await start(dir);
    cleanups.push(() => again.stop());
    expect(again.events.outbox.get(decisionEventId(landed))?.delivery.status).toBe('unsent');
    expect(again.events.outbox.get(decisionEventId(lost))).toBeUndefined();
  });

  it('pending deliveries left by a stop resume at the next start with a webhook', async () => {
    const bodies: string[] = [];
    let up = false;
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (up) bodies.push(body);
        res.statusCode = up ? 200 : 503;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
    cleanups.push(() => closeServer(server));
    const url = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}/`;
    const dir = home();
    // A long backoff: the stop comes while the retry waits.
    const r = await start(dir, { url, backoffMs: 60_000 });
    const result = await r.store.putAutomatedOnce(decision());
    if (!result.written) throw new Error('not written');
    const id = decisionEventId(result.record);
    await eventually(async () => ((r.events.outbox.get(id)?.delivery.attempts ?? 0) >= 1 ? true : undefined));
    await r.stop();
    // Stopped after a failed attempt: still pending (not lost, not given up), and listed as failed meanwhile.
    expect(r.events.outbox.get(id)?.delivery).toMatchObject({ status: 'pending', attempts: 1, lastError: 'HTTP 503' });

    up = true;
    const again = await start(dir, { url });
    cleanups.push(() => again.stop());
    await eventually(async () => (again.events.outbox.get(id)?.delivery.status === 'delivered' ? true : undefined));
    expect(bodies.map((b) => JSON.parse(b).id)).toEqual([id]);
  });

  it('with a webhook, an entry a crash left uncommitted whose write landed is settled and delivered at the next start', async () => {
    const bodies: string[] = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        bodies.push(body);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
    cleanups.push(() => closeServer(server));
    const url = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}/`;
    const dir = home();
    const r = await start(dir);
    const written = await r.store.putAutomatedOnce(decision());
    if (!written.written) throw new Error('not written');
    const id = decisionEventId(written.record);
    // As if the process died between the table write and the outbox commit.
    r.events.outbox.update(id, (e) => (e.delivery.status = 'uncommitted'));
    await r.stop();

    const again = await start(dir, { url });
    cleanups.push(() => again.stop());
    await eventually(async () => (again.events.outbox.get(id)?.delivery.status === 'delivered' ? true : undefined));
    expect(bodies.map((b) => JSON.parse(b).id)).toEqual([id]);
  });
});

describe('webhook settings', () => {
  it('backoff doubles from the base, is capped, and is jittered between 50 and 100 %', () => {
    const settings = { backoffMs: 100, maxBackoffMs: 1_000 };
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, settings, () => 1))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffDelay(3, settings, () => 0)).toBe(200);
  });

  it('only absolute http(s) URLs without credentials', () => {
    expect(webhookUrlProblem('https://example.com/hook')).toBeUndefined();
    expect(webhookUrlProblem('http://127.0.0.1:8080/hook')).toBeUndefined();
    expect(webhookUrlProblem('ftp://example.com/x')).toMatch(/not an http/);
    expect(webhookUrlProblem('example.com/hook')).toMatch(/not a URL/);
    expect(webhookUrlProblem('https://user:pw@example.com/')).toMatch(/no credentials/);
  });
});
