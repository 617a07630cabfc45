/**
 * Decision events end to end on the local stack (docs/architecture.md, invariant 8; docs/events.md):
 * the real handlers, a fake Rekognition, and a real HTTP receiver on 127.0.0.1.
 * - every record (APPROVED, REJECTED, REVIEW, FAILED, a human's override) gets exactly one POST,
 *   signed, its id the event id, its body a valid v1 event;
 * - a receiver that answers 500 first gets the event again after a backoff;
 * - a receiver that is down delays no decision; the event shows in `moderation events list --failed`
 *   and `moderation events redeliver` sends it (the real binary);
 * - bad flags are one-line usage errors.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { decisionEventId, DECISION_EVENT_SCHEMA_FILE, type ModerationDecisionEvent } from '../../functions/lib/decision-event.ts';
import { verifySignature } from '../../functions/lib/webhook-signature.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { decideReview } from '../../cli/human-review.ts';
import { waitForIntakeDrain } from '../../cli/dlq.ts';
import { buildS3Notification } from '../../functions/lib/s3-event.ts';
import { listEvents, redeliverEvents } from '../../cli/commands/events.ts';
import { EventOutbox } from '../../local/event-outbox.ts';
import { closeServer, LOOPBACK } from '../../local/net.ts';
import { decided, eventually, png, recordsOf, startTestStack, upload, type TestStack } from './helpers.ts';
import { moderation } from '../e2e/cli.ts';

const SECRET = 'test-webhook-secret';
const schema = JSON.parse(readFileSync(fileURLToPath(new URL(`../../${DECISION_EVENT_SCHEMA_FILE}`, import.meta.url)), 'utf8'));
const ajv = new Ajv2020({ allErrors: true });
ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
const validEvent = ajv.compile(schema);

interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  raw: string;
  event: ModerationDecisionEvent;
}

/** A webhook receiver: records every request; `answer` decides the status per request. */
class Receiver {
  readonly requests: Received[] = [];
  answer: (event: ModerationDecisionEvent, attempt: number) => number = () => 204;
  private server?: Server;
  port = 0;

  async start(port = 0): Promise<void> {
    this.server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const raw = Buffer.concat(chunks).toString('utf8');
      const event = JSON.parse(raw) as ModerationDecisionEvent;
      this.requests.push({ at: Date.now(), headers: req.headers, raw, event });
      const attempt = this.requests.filter((r) => r.event.id === event.id).length;
      res.statusCode = this.answer(event, attempt);
      res.end(res.statusCode >= 500 ? 'try again later' : '');
    });
    await new Promise<void>((resolve) => this.server!.listen(port, LOOPBACK, resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://${LOOPBACK}:${this.port}/hooks/moderation`;
  }

  async stop(): Promise<void> {
    if (this.server) await closeServer(this.server);
  }

  of(id: string): Received[] {
    return this.requests.filter((r) => r.event.id === id);
  }
}

describe('decision events and webhooks (local stack)', () => {
  const receiver = new Receiver();
  let t: TestStack;

  const allRecords = async (): Promise<DecisionRecord[]> => {
    const { Items = [] } = await t.target.dynamodb.send(new ScanCommand({ TableName: t.target.names.decisionTable, ConsistentRead: true }));
    return Items as DecisionRecord[];
  };
  const outbox = () => EventOutbox.at(t.home);

  beforeAll(async () => {
    await receiver.start();
    // Quick retries so the test does not wait: 4 attempts, 30 ms doubling, at most 120 ms apart.
    t = await startTestStack({ webhook: { url: receiver.url, secret: SECRET, attempts: 4, backoffMs: 30, maxBackoffMs: 120, timeoutMs: 2_000 } });
    t.rekognition.failing = (key) => key.includes('/broken');
  });

  afterAll(async () => {
    await t?.close();
    await receiver.stop();
  });

  it('one signed event per record: automated (APPROVED, REJECTED, REVIEW), FAILED, and a human override', async () => {
    const keys = ['uploads/alice/fine.png', 'uploads/alice/reject-me.png', 'uploads/bob/borderline.png', 'uploads/bob/broken.png'];
    for (const [i, key] of keys.entries()) await upload(t.target, key, await png(i));
    await decided(t.target, keys.slice(0, 3));
    await decided(t.target, ['uploads/bob/broken.png'], (r) => r.status === 'FAILED');
    const review = (await recordsOf(t.target, 'uploads/bob/borderline.png')).find((r) => r.sk === 'DECISION#auto')!;
    expect(review.status).toBe('REVIEW');
    await decideReview(t.target, review.jobId, { status: 'APPROVED', reviewer: 'dana', reason: 'a painting' });

    const records = await allRecords();
    expect(records.map((r) => r.status).sort()).toEqual(['APPROVED', 'APPROVED', 'FAILED', 'REJECTED', 'REVIEW']);
    await eventually(async () => (new Set(receiver.requests.map((r) => r.event.id)).size >= records.length ? true : undefined));
    await t.stack.events.drain(5_000);

    // Exactly one request per record, none for anything else.
    expect(receiver.requests).toHaveLength(records.length);
    expect(receiver.requests.map((r) => r.event.id).sort()).toEqual(records.map((r) => decisionEventId(r)).sort());
    for (const request of receiver.requests) {
      expect(verifySignature(request.raw, request.headers['x-moderation-signature'], SECRET)).toBe(true);
      expect(request.headers['x-moderation-event-id']).toBe(request.event.id);
      expect(request.headers['content-type']).toBe('application/json');
      expect(validEvent(request.event) ? [] : validEvent.errors).toEqual([]);
    }
    const human = receiver.requests.find((r) => r.event.type === 'human')!.event;
    expect(human).toMatchObject({ status: 'APPROVED', previousStatus: 'REVIEW', decidedBy: 'human:dana', key: 'uploads/bob/borderline.png', supersedes: `${review.pk}|${review.sk}` });
    const failed = receiver.requests.find((r) => r.event.type === 'failure')!.event;
    expect(failed).toMatchObject({ status: 'FAILED', key: 'uploads/bob/broken.png' });
    expect(failed.error).toBeTruthy();
    const automated = receiver.requests.find((r) => r.event.key === 'uploads/alice/fine.png')!.event;
    expect(automated.policy).toEqual({ name: 'standard', version: expect.stringMatching(/^sha256:/) });

    // The outbox says the same.
    const entries = listEvents(t.home);
    expect(entries).toHaveLength(records.length);
    expect(entries.every((e) => e.delivery.status === 'delivered' && e.delivery.attempts === 1)).toBe(true);
    expect(listEvents(t.home, { failed: true })).toEqual([]);
  });

  it('the same S3 notification delivered again decides nothing new and tells nothing new', async () => {
    const record = (await recordsOf(t.target, 'uploads/alice/fine.png')).find((r) => r.sk === 'DECISION#auto')!;
    const before = receiver.requests.length;
    const notification = buildS3Notification([{ bucket: record.bucket, key: record.key, size: 1, eTag: record.eTag!, sequencer: record.sequencer! }]);
    await t.target.sqs.send(new SendMessageCommand({ QueueUrl: t.target.names.intakeQueueUrl, MessageBody: JSON.stringify(notification) }));
    expect(await waitForIntakeDrain(t.target, 20_000)).toBe(true);
    await t.stack.services.poller.idle();
    await t.stack.events.drain(5_000);
    expect(receiver.requests.length).toBe(before);
    expect(listEvents(t.home)).toHaveLength((await allRecords()).length);
  });

  it('a receiver that answers 500 first gets the event again after a backoff', async () => {
    receiver.answer = (_event, attempt) => (attempt === 1 ? 500 : 200);
    await upload(t.target, 'uploads/carol/second-try.png', await png(7));
    const record = (await decided(t.target, ['uploads/carol/second-try.png'])).get('uploads/carol/second-try.png')!;
    const id = decisionEventId(record);
    await eventually(async () => (outbox().get(id)?.delivery.status === 'delivered' ? true : undefined));
    const requests = receiver.of(id);
    expect(requests).toHaveLength(2);
    expect(requests[1]!.raw).toBe(requests[0]!.raw);
    expect(requests[1]!.headers['x-moderation-signature']).toBe(requests[0]!.headers['x-moderation-signature']);
    // Backoff: 30 ms with jitter (50-100 %).
    expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(14);
    expect(outbox().get(id)!.delivery).toMatchObject({ status: 'delivered', attempts: 2, responseStatus: 200 });
    receiver.answer = () => 204;
  });

  it('a receiver that is down delays no decision; events list --failed shows the event and events redeliver sends it', async () => {
    const port = receiver.port;
    await receiver.stop();
    const started = Date.now();
    await upload(t.target, 'uploads/carol/while-down.png', await png(9));
    const record = (await decided(t.target, ['uploads/carol/while-down.png'])).get('uploads/carol/while-down.png')!;
    const decidedIn = Date.now() - started;
    const id = decisionEventId(record);
    await eventually(async () => (outbox().get(id)?.delivery.status === 'failed' ? true : undefined));
    const entry = outbox().get(id)!;
    expect(entry.delivery.attempts).toBe(4);
    expect(entry.delivery.lastError).toMatch(/ECONNREFUSED/);
    // The decision did not wait for the deliveries (4 attempts, backoff in between).
    expect(Date.parse(record.decidedAt)).toBeLessThan(Date.parse(entry.delivery.lastAttemptAt!));
    expect(decidedIn).toBeLessThan(20_000);

    const listed = await moderation(['events', 'list', '--failed', '--json', '--home', t.home]);
    expect(listed.code, listed.stderr).toBe(0);
    const failedEntries = JSON.parse(listed.stdout) as { event: ModerationDecisionEvent; delivery: { status: string } }[];
    expect(failedEntries.map((e) => e.event.id)).toEqual([id]);
    expect(failedEntries[0]!.delivery.status).toBe('failed');

    // Without the secret, redeliver says what is missing, on one line.
    const noSecret = await moderation(['events', 'redeliver', '--home', t.home], { MODERATION_WEBHOOK_SECRET: '' });
    expect(noSecret.code).toBe(1);
    expect(noSecret.stderr.trim().split('\n')).toHaveLength(1);
    expect(noSecret.stderr).toContain('MODERATION_WEBHOOK_SECRET');

    await receiver.start(port);
    const before = receiver.requests.length;
    const redelivered = await moderation(['events', 'redeliver', '--json', '--home', t.home], { MODERATION_WEBHOOK_SECRET: SECRET });
    expect(redelivered.code, redelivered.stderr).toBe(0);
    expect(JSON.parse(redelivered.stdout.trim())).toMatchObject({ id, delivery: 'delivered', key: 'uploads/carol/while-down.png' });
    expect(receiver.requests.slice(before).map((r) => r.event.id)).toEqual([id]);
    const resent = receiver.requests.at(-1)!;
    expect(verifySignature(resent.raw, resent.headers['x-moderation-signature'], SECRET)).toBe(true);
    expect(outbox().get(id)!.delivery).toMatchObject({ status: 'delivered', attempts: 5 });
    expect(listEvents(t.home, { failed: true })).toEqual([]);

    // Nothing failed now: redeliver has nothing to send.
    expect(await redeliverEvents(t.home, { secret: SECRET })).toEqual([]);
  });
});

describe('webhook flags', () => {
  it('a webhook URL that is not http(s) is a one-line usage error', async () => {
    const result = await moderation(['run', 'samples', '--webhook', 'ftp://example.com/hook'], { MODERATION_WEBHOOK_SECRET: SECRET });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^error: --webhook: "ftp:\/\/example.com\/hook" is not an http:\/\/ or https:\/\/ URL$/)]);
  });

  it('--webhook without a secret says how to set one', async () => {
    const result = await moderation(['serve', '--webhook', 'http://127.0.0.1:9/hook'], { MODERATION_WEBHOOK_SECRET: '' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/--webhook needs the signing secret in \$MODERATION_WEBHOOK_SECRET/);
  });

  it('events commands have --help', async () => {
    const help = await moderation(['events', 'redeliver', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--json');
    expect(help.stdout).toContain('--id <id>');
  });
});
