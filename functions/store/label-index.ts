/**
 * The label index of the decision store: which automated decisions found a DetectLabels label
 * (`moderation audit --label Person`), by Query, never Scan (docs/auditing.md, "By label").
 *
 * Why items and not a GSI: a record has many labels and a GSI key is one attribute, so a GSI would
 * find a record by one label only. Why not a filter on a status query: that reads (and bills) every
 * decision of the window to return the few with the label. So the record step writes one small item
 * per label and parent (at most ANALYSIS_LIMITS.MAX_INDEXED_LABELS per image, keys in table-schema.ts),
 * write-sharded over LABEL_SHARDS partitions per label, and a query reads the label's shards in time
 * order, merges them, and fetches the records it returns (BatchGetItem). A failed index write never
 * costs the decision (LabelIndexFailures): that image is then only missing from `--label` answers.
 */
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { callAws } from '../errors.ts';
import type { DecisionRecord, DecisionStatus } from '../lib/types.ts';
import { indexedLabelNames, labelIndexName, type AnalysisSummary } from '../lib/analysis.ts';
import { UserFacingError } from '../lib/errors.ts';
import { wholeRecords, type HistoryTable } from './decision-query.ts';
import { AUTO_DECISION_SK, LABEL_SHARDS, TABLE_KEYS, jobPartitionKey, labelPartitionKey, labelSortKey, shardFor } from './table-schema.ts';

/** What the record step indexes of an automated decision. */
export interface LabelledDecision {
  jobId: string;
  decidedAt: string;
  status: DecisionStatus;
  analysis?: AnalysisSummary;
}

export interface LabelQuery {
  /** A DetectLabels label name (or a parent's), any case. */
  label: string;
  /** Inclusive bounds on decidedAt. */
  since?: Date;
  until?: Date;
  order?: 'newest' | 'oldest';
  /** Rows per page; unset: everything. */
  limit?: number;
  /** From a previous page's nextCursor; the query must be the same. */
  cursor?: string;
}

export interface LabelPage {
  /** The automated decisions that found the label, in decidedAt order. */
  items: DecisionRecord[];
  nextCursor?: string;
  /** What was queried: the label's partitions. */
  plan: { index: 'label'; partitions: string[] };
}

export interface LabelIndex {
  /** Writes the decision's label items (idempotent: the same keys, the same items). Returns how many. */
  remember(decision: LabelledDecision): Promise<number>;
  /** One page of the decisions that found a label. */
  find(query: LabelQuery): Promise<LabelPage>;
}

/** A --cursor that is not this label query's. */
export class InvalidLabelCursorError extends UserFacingError {
  override name = 'InvalidCursor';
}

interface Entry {
  pk: string;
  sk: string;
  jobId: string;
}

/** Label items written at once (one image's). */
const PUTS_IN_FLIGHT = 10;

export class DynamoLabelIndex implements LabelIndex {
  constructor(private readonly table: Pick<HistoryTable, 'client' | 'tableName'>) {}

  async remember(decision: LabelledDecision): Promise<number> {
    const items = labelItems(decision);
    for (let i = 0; i < items.length; i += PUTS_IN_FLIGHT) {
      // PutItem, not BatchWriteItem (which can delete): no function may delete from the history's table.
      await Promise.all(items.slice(i, i + PUTS_IN_FLIGHT).map((Item) => callAws('DynamoDB', () => this.table.client.send(new PutCommand({ TableName: this.table.tableName, Item })))));
    }
    return items.length;
  }

  async find(query: LabelQuery): Promise<LabelPage> {
    const partitions = partitionsOf(query.label);
    const descending = (query.order ?? 'newest') === 'newest';
    const positions = decodeCursor(query.cursor, query, partitions.length);
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    const pageSize = Math.min(1000, Math.max(25, Math.ceil(((query.limit ?? 500) * 2) / partitions.length)));
    // Per partition: a buffer of entries in order, where the next Query starts, whether it is drained.
    const streams = partitions.map((pk, i) => ({ pk, buffer: [] as Entry[], from: positions[i] ?? undefined, exhausted: positions[i] === 0, position: positions[i] || undefined }));
    const fill = async (stream: (typeof streams)[number]) => {
      while (stream.buffer.length === 0 && !stream.exhausted) {
        const page = await callAws('DynamoDB', () =>
          this.table.client.send(
            new QueryCommand({
              TableName: this.table.tableName,
              ...keyCondition(stream.pk, query),
              ScanIndexForward: !descending,
              ExclusiveStartKey: stream.from ? { [TABLE_KEYS.partitionKey]: stream.pk, [TABLE_KEYS.sortKey]: stream.from } : undefined,
              Limit: pageSize,
            }),
          ),
        );
        stream.buffer.push(...(page.Items ?? []).map((item) => ({ pk: stream.pk, sk: String(item[TABLE_KEYS.sortKey]), jobId: String(item.jobId) })));
        const last = page.LastEvaluatedKey?.[TABLE_KEYS.sortKey];
        stream.from = typeof last === 'string' ? last : undefined;
        if (!stream.from) stream.exhausted = true;
      }
    };
    await Promise.all(streams.map(fill));
    const entries: Entry[] = [];
    while (entries.length < limit) {
      let best: (typeof streams)[number] | undefined;
      for (const stream of streams) {
        const head = stream.buffer[0];
        if (head && (!best || before(head, best.buffer[0]!, descending))) best = stream;
      }
      if (!best) break;
      const entry = best.buffer.shift()!;
      entries.push(entry);
      best.position = entry.sk;
      if (best.buffer.length === 0) await fill(best);
    }
    const more = streams.some((stream) => stream.buffer.length > 0 || !stream.exhausted);
    const cursor = more ? encodeCursor(query, streams.map((stream) => (stream.buffer.length === 0 && stream.exhausted ? 0 : (stream.position ?? null)))) : undefined;
    const items = await wholeRecords(
      this.table,
      entries.map((entry) => ({ [TABLE_KEYS.partitionKey]: jobPartitionKey(entry.jobId), [TABLE_KEYS.sortKey]: AUTO_DECISION_SK })),
    );
    return { items, ...(cursor ? { nextCursor: cursor } : {}), plan: { index: 'label', partitions } };
  }
}

/** The same contract in memory (tests, callers without a table). */
export class InMemoryLabelIndex implements LabelIndex {
  /** Label items by `<pk>|<sk>`, as the table would hold them. */
  readonly items = new Map<string, Record<string, unknown>>();

  constructor(private readonly records: (jobId: string) => DecisionRecord | undefined) {}

  async remember(decision: LabelledDecision): Promise<number> {
    const items = labelItems(decision);
    for (const item of items) this.items.set(`${item[TABLE_KEYS.partitionKey]}|${item[TABLE_KEYS.sortKey]}`, { ...item });
    return items.length;
  }

  async find(query: LabelQuery): Promise<LabelPage> {
    const partitions = partitionsOf(query.label);
    const descending = (query.order ?? 'newest') === 'newest';
    const condition = bounds(query);
    const entries = [...this.items.values()]
      .map((item) => ({ pk: String(item[TABLE_KEYS.partitionKey]), sk: String(item[TABLE_KEYS.sortKey]), jobId: String(item.jobId) }))
      .filter((entry) => partitions.includes(entry.pk) && entry.sk >= condition.low && entry.sk <= condition.high)
      .sort((a, b) => (before(a, b, descending) ? -1 : 1));
    const offset = query.cursor ? offsetOf(query.cursor) : 0;
    const end = query.limit === undefined ? entries.length : offset + query.limit;
    const items = entries
      .slice(offset, end)
      .map((entry) => this.records(entry.jobId))
      .filter((record): record is DecisionRecord => !!record)
      .map((record) => structuredClone(record));
    return { items, ...(end < entries.length ? { nextCursor: Buffer.from(String(end)).toString('base64url') } : {}), plan: { index: 'label', partitions } };
  }
}

/** The items a decision puts in the label index: one per label and parent (bounded). */
function labelItems(decision: LabelledDecision): Record<string, unknown>[] {
  const shard = shardFor(decision.jobId, LABEL_SHARDS);
  const confidence = new Map<string, number>();
  for (const label of decision.analysis?.labels ?? []) {
    for (const name of [label.name, ...(label.parents ?? [])]) {
      const key = labelIndexName(name);
      confidence.set(key, Math.max(confidence.get(key) ?? 0, label.confidence));
    }
  }
  // No attribute named like a GSI key (imageKey, statusShard, uploaderKey, category): these items are in no index.
  return indexedLabelNames(decision.analysis).map((name) => ({
    [TABLE_KEYS.partitionKey]: labelPartitionKey(name, shard),
    [TABLE_KEYS.sortKey]: labelSortKey(decision.decidedAt, decision.jobId),
    jobId: decision.jobId,
    label: name,
    confidence: confidence.get(labelIndexName(name)),
    decisionStatus: decision.status,
    at: decision.decidedAt,
  }));
}

function partitionsOf(label: string): string[] {
  if (!labelIndexName(label)) throw new InvalidLabelCursorError('--label must not be empty');
  return Array.from({ length: LABEL_SHARDS }, (_, shard) => labelPartitionKey(label, shard));
}

/** Sort-key bounds for the window: `<decidedAt>#<jobId>` sorts by time. */
function bounds(query: LabelQuery): { low: string; high: string } {
  return { low: query.since ? query.since.toISOString() : '', high: query.until ? `${query.until.toISOString()}#\uffff` : '\uffff' };
}

function keyCondition(pk: string, query: LabelQuery) {
  const names: Record<string, string> = { '#pk': TABLE_KEYS.partitionKey };
  const values: Record<string, unknown> = { ':pk': pk };
  let condition = '#pk = :pk';
  if (query.since || query.until) {
    const { low, high } = bounds(query);
    names['#sk'] = TABLE_KEYS.sortKey;
    Object.assign(values, { ':low': low, ':high': high });
    condition += ' AND #sk BETWEEN :low AND :high';
  }
  return { KeyConditionExpression: condition, ExpressionAttributeNames: names, ExpressionAttributeValues: values };
}

function before(a: Entry, b: Entry, descending: boolean): boolean {
  const order = a.sk.localeCompare(b.sk) || a.pk.localeCompare(b.pk);
  return descending ? order > 0 : order < 0;
}

function identity(query: LabelQuery): string {
  return JSON.stringify([labelIndexName(query.label), query.since?.toISOString(), query.until?.toISOString(), query.order ?? 'newest']);
}

function encodeCursor(query: LabelQuery, positions: Array<string | 0 | null>): string {
  return Buffer.from(JSON.stringify({ q: identity(query), p: positions })).toString('base64url');
}

function decodeCursor(cursor: string | undefined, query: LabelQuery, partitions: number): Array<string | 0 | null> {
  if (!cursor) return Array.from({ length: partitions }, () => null);
  let document: { q?: unknown; p?: unknown };
  try {
    document = JSON.parse(Buffer.from(cursor.trim(), 'base64url').toString('utf8')) as { q?: unknown; p?: unknown };
  } catch {
    throw new InvalidLabelCursorError('--cursor is not a cursor printed by `moderation audit --label` (it may have been cut when copied)');
  }
  if (document.q !== identity(query) || !Array.isArray(document.p) || document.p.length !== partitions) {
    throw new InvalidLabelCursorError('--cursor belongs to another query: repeat the same --label/--since/--until/--order with it');
  }
  return document.p as Array<string | 0 | null>;
}

function offsetOf(cursor: string): number {
  const offset = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!Number.isInteger(offset) || offset < 0) throw new InvalidLabelCursorError('--cursor is not a cursor printed by `moderation audit --label`');
  return offset;
}
