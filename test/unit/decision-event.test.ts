/**
 * The `Moderation Decision` event (functions/lib/decision-event.ts) against its published JSON
 * Schema (schemas/moderation-decision.v1.json): every kind of record gives a valid event, the id
 * is stable and derived from the record's key, the TypeScript type and the schema name the same
 * fields, and the webhook signature helper (functions/lib/webhook-signature.ts).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import {
  DECISION_EVENT_SCHEMA_FILE,
  decisionEvent,
  decisionEventId,
  eventBridgeEntry,
  EVENT_TOP_LABELS,
  type ModerationDecisionEventV1,
} from '../../functions/lib/decision-event.ts';
import { automatedRecord, failureRecord, humanRecord } from '../../functions/lib/decision.ts';
import { jobIdFor } from '../../functions/lib/job-id.ts';
import { decisionItem, recordIdOf } from '../../functions/store/table-schema.ts';
import type { DecisionRecord, Job, ModerationState } from '../../functions/lib/types.ts';
import { signatureHeader, verifyApiKey, verifySignature, verifyWebhookRequest } from '../../functions/lib/webhook-signature.ts';

const schema = JSON.parse(readFileSync(fileURLToPath(new URL(`../../${DECISION_EVENT_SCHEMA_FILE}`, import.meta.url)), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: true });
ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
const validate = ajv.compile(schema);

function expectValid(event: unknown): void {
  const ok = validate(event);
  expect(ok ? [] : validate.errors).toEqual([]);
}

const at = '2026-11-02T10:00:00.000Z';
const key = 'uploads/alice/beach.jpg';
const job: Job = { jobId: jobIdFor({ bucket: 'uploads', key, versionId: 'v1' }), bucket: 'uploads', key, versionId: 'v1', uploader: 'alice', eventTime: at, receivedAt: at };
const labels = [
  { name: 'Swimwear or Underwear', parentName: 'Non-Explicit Nudity of Intimate parts and Kissing', level: 2 as const, confidence: 40 },
  { name: 'Explicit Nudity', parentName: 'Explicit', level: 2 as const, confidence: 66.5 },
  { name: 'Explicit', parentName: '', level: 1 as const, confidence: 70 },
  { name: 'Exposed Male Nipple', parentName: 'Non-Explicit Nudity', level: 3 as const, confidence: 12 },
  { name: 'Kissing on the Lips', parentName: 'Non-Explicit Nudity of Intimate parts and Kissing', level: 3 as const, confidence: 55 },
  { name: 'Bare Back', parentName: 'Non-Explicit Nudity', level: 3 as const, confidence: 30 },
];
const state: ModerationState = {
  job,
  settings: { contextualReview: 'disabled', executionId: 'arn:aws:states:us-east-1:000000000000:express:moderation:x:y' },
  detection: {
    verdict: 'BORDERLINE',
    labels,
    rule: { category: 'Explicit', label: 'Explicit', confidence: 70, action: 'review', threshold: 50 },
    flagged: [],
    policyVersion: 'sha256:0123456789abcdef',
    modelVersion: '7.0',
    source: 's3-object',
    durationMs: 12,
  },
};

const automated: DecisionRecord = decisionItem(automatedRecord(state, { decidedAt: at, policyName: 'standard' }), { shards: 8 });
const human: DecisionRecord = decisionItem(
  humanRecord(automated, { status: 'APPROVED', reviewer: 'dana', reason: 'a painting', decidedAt: '2026-11-02T11:00:00.000Z', supersedes: recordIdOf(automated) }),
  { shards: 8, revision: 1 },
);
const failure: DecisionRecord = decisionItem(
  failureRecord({ ...state, error: { Error: 'Throttled', Cause: JSON.stringify({ errorMessage: 'Rate exceeded' }) } }, { failedAt: '2026-11-02T10:00:01.000Z', policyName: 'standard' }),
  { shards: 8 },
);

describe('decisionEvent', () => {
  it('an automated decision: a valid v1 event with the record\'s fields, the strongest labels first', () => {
    const event = decisionEvent(automated);
    expectValid(event);
    expect(event).toMatchObject({
      schemaVersion: '1',
      type: 'automated',
      recordId: `JOB#${job.jobId}|DECISION#auto`,
      jobId: job.jobId,
      bucket: 'uploads',
      key,
      versionId: 'v1',
      eTag: null,
      uploader: 'alice',
      status: 'REVIEW',
      previousStatus: null,
      supersedes: null,
      decidedBy: 'policy',
      decidedAt: at,
      rule: { category: 'Explicit', label: 'Explicit', confidence: 70, action: 'review', threshold: 50 },
      category: 'Explicit',
      policy: { name: 'standard', version: 'sha256:0123456789abcdef' },
      modelVersion: '7.0',
      error: null,
      executionId: state.settings!.executionId,
    });
    expect(event.labels).toHaveLength(EVENT_TOP_LABELS);
    expect(event.labels.map((l) => l.confidence)).toEqual([70, 66.5, 55, 40, 30]);
  });

  it('a human decision says the status it overrides, from the record alone or from the previous record', () => {
    const event = decisionEvent(human);
    expectValid(event);
    expect(event).toMatchObject({ type: 'human', status: 'APPROVED', previousStatus: 'REVIEW', supersedes: recordIdOf(automated), decidedBy: 'human:dana', reason: 'a painting' });
    const { previousStatus: _dropped, ...older } = human; // a record written before previousStatus was kept
    expect(decisionEvent(older as DecisionRecord).previousStatus).toBeNull();
    expect(decisionEvent(older as DecisionRecord, automated).previousStatus).toBe('REVIEW');
  });

  it('a failure names its error', () => {
    const event = decisionEvent(failure);
    expectValid(event);
    expect(event).toMatchObject({ type: 'failure', status: 'FAILED', error: 'Throttled', reason: 'Throttled: Rate exceeded' });
  });

  it('a record with nothing optional (an UNUSABLE file, no uploader, no version) is valid', () => {
    const bare = decisionItem(
      automatedRecord({ job: { jobId: 'j1', bucket: 'b', key: 'k', eventTime: at, receivedAt: at }, detection: { verdict: 'UNUSABLE', labels: [], flagged: [], policyVersion: 'p', source: 's3-object', durationMs: 0, unusableReason: 'not an image' } }, { decidedAt: at }),
      { shards: 1 },
    );
    const event = decisionEvent(bare);
    expectValid(event);
    expect(event).toMatchObject({ status: 'UNUSABLE', labels: [], rule: null, uploader: null, versionId: null, policy: { name: null, version: 'p' } });
  });

  it('the id is SHA-256 of <pk>|<sk>: the same for every delivery, different for every record', () => {
    expect(decisionEvent(automated).id).toBe(createHash('sha256').update(`${automated.pk}|${automated.sk}`).digest('hex'));
    expect(decisionEvent(structuredClone(automated)).id).toBe(decisionEvent(automated).id);
    expect(new Set([automated, human, failure].map((r) => decisionEventId(r))).size).toBe(3);
  });

  it('an item that is not a decision record has no event', () => {
    expect(() => decisionEvent({ pk: 'x', sk: 'y' } as DecisionRecord)).toThrow(/not a decision record \(no jobId, bucket, key, status, decidedBy, decidedAt\)/);
  });

  it('a long reason is cut so an event stays small', () => {
    const event = decisionEvent({ ...automated, reason: 'x'.repeat(10_000) });
    expectValid(event);
    expect(event.reason!.length).toBe(2000);
  });

  it('the TypeScript type and the JSON Schema name exactly the same fields, all required', () => {
    const event: ModerationDecisionEventV1 = decisionEvent(automated);
    expect(Object.keys(event).sort()).toEqual(Object.keys(schema.properties).sort());
    expect([...schema.required].sort()).toEqual(Object.keys(schema.properties).sort());
  });

  it('the schema rejects what is not an event', () => {
    const event = decisionEvent(automated);
    for (const bad of [{ ...event, status: 'MAYBE' }, { ...event, extra: 1 }, { ...event, id: 'abc' }, { ...event, schemaVersion: '2' }, (({ key: _k, ...rest }) => rest)(event)]) {
      expect(validate(bad)).toBe(false);
    }
  });

  it('the EventBridge entry: detail-type Moderation Decision, the given source and bus, the event as detail', () => {
    const event = decisionEvent(automated);
    const entry = eventBridgeEntry(event, { source: 'com.example.moderation', eventBusName: 'arn:aws:events:us-east-1:123456789012:event-bus/default' });
    expect(entry).toMatchObject({ Source: 'com.example.moderation', DetailType: 'Moderation Decision', EventBusName: 'arn:aws:events:us-east-1:123456789012:event-bus/default' });
    expect(JSON.parse(entry.Detail)).toEqual(event);
    expect(entry.Time.toISOString()).toBe(at);
  });
});

describe('webhook signatures', () => {
  const body = JSON.stringify(decisionEvent(automated));
  const secret = 'correct horse battery staple';

  it('signs the raw body with HMAC-SHA256 and verifies it', () => {
    const header = signatureHeader(body, secret);
    expect(header).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(body, header, secret)).toBe(true);
    expect(verifySignature(Buffer.from(body), header.toUpperCase().replace('SHA256=', 'sha256='), secret)).toBe(true);
  });

  it('refuses another body, another secret, a malformed or missing header', () => {
    const header = signatureHeader(body, secret);
    expect(verifySignature(`${body} `, header, secret)).toBe(false);
    expect(verifySignature(body, header, 'another secret')).toBe(false);
    for (const bad of [undefined, null, '', 'sha256=', 'sha1=abc', header.slice(0, -2), `${header}00`, [header]]) {
      expect(verifySignature(body, bad as never, secret)).toBe(false);
    }
    expect(verifySignature(body, header, '')).toBe(false);
  });

  it('a request is authentic with the signature (local) or the API key (AWS API destination)', () => {
    expect(verifyWebhookRequest(body, { 'x-moderation-signature': signatureHeader(body, secret) }, secret)).toBe(true);
    expect(verifyWebhookRequest(body, { 'x-moderation-api-key': secret }, secret)).toBe(true);
    expect(verifyWebhookRequest(body, { 'x-moderation-api-key': 'guess' }, secret)).toBe(false);
    expect(verifyWebhookRequest(body, {}, secret)).toBe(false);
    expect(verifyApiKey(secret.slice(1), secret)).toBe(false);
  });
});
