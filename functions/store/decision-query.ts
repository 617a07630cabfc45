/**
 * Queries over the decision history as auditors ask them: by image, by status (and time window), by
 * uploader, by category. Only Query, never Scan: each access pattern is a GSI sorted by decidedAt.
 * The status index is write-sharded (`<STATUS>#<shard>`), so a status query fans out over every
 * shard (and a query for several statuses, or for all of them, over every status's shards), and the
 * partitions' streams are merged by decidedAt (a k-way merge). Pages resume from an opaque cursor
 * that holds, for each partition, where its stream stands.
 */
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { BatchGetCommand, QueryCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import {
  DECISION_INDEXES,
  SORT_BY_TIME,
  STATUSES_NOT_IN_UPLOADER_INDEX,
  TABLE_KEYS,
  imageKeyOf,
  recordFromItem,
  statusShardKey,
  type DecisionIndexName,
} from './table-schema.ts';
import { DECISION_STATUSES, type DecisionRecord, type DecisionStatus } from '../lib/types.ts';
import { UserFacingError } from '../lib/errors.ts';

/** Where the history is: a DynamoDB client, the table, and the status index's shard count. */
export interface HistoryTable {
  client: DynamoDBDocumentClient;
  tableName: string;
  statusShards: number;
}

export type AuditOrder = 'newest' | 'oldest';

export interface AuditQuery {
  /** One image's whole history (every version, every record). */
  image?: { bucket: string; key: string };
  /** Statuses to include; with no other criterion the status index is queried (all statuses when unset). */
  statuses?: DecisionStatus[];
  uploader?: string;
  /** Top-level (model 7 L1) categories, as the records store them. See resolveCategories. */
  categories?: string[];
  /**
   * Decisions recorded under this policy name (`policyName`: the live policy set's routed policy). No
   * index has it: always a filter on the Query the other criteria choose (all statuses' shards when alone).
   */
  policy?: string;
  /** Inclusive bounds on decidedAt. */
  since?: Date;
  until?: Date;
  /** Default newest first. */
  order?: AuditOrder;
  /** Rows per page; unset: everything (use iterateDecisions for large exports). */
  limit?: number;
  /** From a previous page's nextCursor; the query must be the same. */
  cursor?: string;
}

export interface AuditPage {
  items: DecisionRecord[];
  /** Present when more rows match: pass it as `cursor` for the next page. */
  nextCursor?: string;
  /** The index and how many partitions were queried (e.g. byStatus × 8 shards). */
  plan: QueryPlan;
}

interface Partition {
  index: DecisionIndexName;
  value: string;
}

export interface QueryPlan {
  /** The index of the first partition (the only one, unless `indexes` says more). */
  index: DecisionIndexName;
  /** Every index the query reads, e.g. byUploader and byStatus (an uploader's approvals). */
  indexes: DecisionIndexName[];
  partitions: string[];
  /** Criteria applied as a FilterExpression on top of the index's key condition. */
  filters: string[];
}

/** The GSI key of a record: what DynamoDB needs as ExclusiveStartKey to resume after it. */
type StartKey = Record<string, string>;

/** A --cursor that is not this query's. */
export class InvalidCursorError extends UserFacingError {
  override name = 'InvalidCursor';
}

/** A query that cannot be asked (e.g. a window that ends before it starts). */
export class InvalidQueryError extends UserFacingError {
  override name = 'InvalidQuery';
}

/** Which index serves the query, over which partitions, with which residual filters. */
export function planQuery(query: AuditQuery, shards: number): { plan: QueryPlan; partitions: Partition[] } {
  const filters: string[] = [];
  let partitions: Partition[];
  const statusShards = (status: string): Partition[] => Array.from({ length: shards }, (_, shard) => ({ index: 'byStatus' as const, value: statusShardKey(status, shard) }));
  if (query.image) {
    partitions = [{ index: 'byImage', value: imageKeyOf(query.image.bucket, query.image.key) }];
  } else if (query.categories?.length) {
    // Category partitions are small (only decisions a rule made), and hold every status: also with an uploader.
    partitions = query.categories.map((value) => ({ index: 'byCategory', value }));
  } else if (query.uploader !== undefined) {
    // byUploader is sparse: it leaves out APPROVED records, which the APPROVED shards of byStatus hold
    // (filtered by uploader; the rare audit path reads more there so that every approval writes less).
    const statuses = query.statuses?.length ? query.statuses : DECISION_STATUSES;
    partitions = [
      ...(statuses.some((status) => !STATUSES_NOT_IN_UPLOADER_INDEX.includes(status)) ? [{ index: 'byUploader' as const, value: query.uploader }] : []),
      ...statuses.filter((status) => STATUSES_NOT_IN_UPLOADER_INDEX.includes(status)).flatMap(statusShards),
    ];
  } else {
    const statuses = query.statuses?.length ? query.statuses : DECISION_STATUSES;
    partitions = statuses.flatMap(statusShards);
  }
  const indexes = [...new Set(partitions.map((p) => p.index))];
  const only = (index: DecisionIndexName) => indexes.length === 1 && indexes[0] === index;
  if (query.uploader !== undefined && !only('byUploader')) filters.push('uploader');
  if (query.categories?.length && !only('byCategory')) filters.push('category');
  if (query.statuses?.length && !only('byStatus')) filters.push('status');
  if (query.policy !== undefined) filters.push('policy');
  return { plan: { index: partitions[0]!.index, indexes, partitions: partitions.map((p) => p.value), filters }, partitions };
}

/**
 * One page of matching records in decidedAt order (newest first unless order is 'oldest'), merged
 * across the partitions the query needs.
 */
export async function queryHistory(table: HistoryTable, query: AuditQuery): Promise<AuditPage> {
  const merger = new Merger(table, query);
  await merger.start();
  const items: DecisionRecord[] = [];
  const limit = query.limit ?? Number.POSITIVE_INFINITY;
  while (items.length < limit) {
    const next = await merger.next();
    if (!next) break;
    items.push(next);
  }
  return { items, nextCursor: merger.hasMore() ? merger.cursor() : undefined, plan: merger.plan };
}

/** Every matching record, page after page (for exports): memory stays at one page per partition. */
export async function* iterateHistory(table: HistoryTable, query: Omit<AuditQuery, 'limit'> & { max?: number }): AsyncGenerator<DecisionRecord> {
  const merger = new Merger(table, { ...query, limit: undefined });
  await merger.start();
  let count = 0;
  const max = query.max ?? Number.POSITIVE_INFINITY;
  while (count < max) {
    const next = await merger.next();
    if (!next) return;
    count += 1;
    yield next;
  }
}

interface Stream {
  partition: Partition;
  buffer: DecisionRecord[];
  /** Where the next Query starts (LastEvaluatedKey of the previous one). */
  fetchFrom?: StartKey;
  /** No more pages to fetch. */
  exhausted: boolean;
  /** Resume point for the cursor: the key of the last record handed out (or where this page began). */
  position?: StartKey;
}

class Merger {
  readonly plan: QueryPlan;
  private readonly streams: Stream[];
  private readonly descending: boolean;
  private readonly fingerprint: string;
  private readonly pageSize: number;

  constructor(
    private readonly table: HistoryTable,
    private readonly query: AuditQuery,
  ) {
    if (query.since && query.until && query.since > query.until) {
      throw new InvalidQueryError(`--since (${query.since.toISOString()}) is after --until (${query.until.toISOString()})`);
    }
    const { plan, partitions } = planQuery(query, table.statusShards);
    this.plan = plan;
    this.descending = (query.order ?? 'newest') === 'newest';
    this.fingerprint = fingerprintOf(query, plan);
    // Shards are filled evenly (a hash of the job id), so each partition contributes about
    // limit / partitions rows to a page: read twice that per round trip (at least 25), so a page
    // rarely needs a second round trip and a 40-partition fan-out does not read far past the page.
    this.pageSize = Math.min(1000, Math.max(25, Math.ceil(((query.limit ?? 500) * 2) / partitions.length)));
    const positions = query.cursor ? decodeCursor(query.cursor, this.fingerprint, partitions.length) : undefined;
    this.streams = partitions.map((partition, i) => {
      const position = positions?.[i];
      if (position === 0) return { partition, buffer: [], exhausted: true };
      return { partition, buffer: [], exhausted: false, fetchFrom: position ?? undefined, position: position ?? undefined };
    });
  }

  async start(): Promise<void> {
    await Promise.all(this.streams.map((stream) => this.fill(stream)));
  }

  /** The next record in order, or undefined when every partition is drained. */
  async next(): Promise<DecisionRecord | undefined> {
    // Invariant: every stream that is not exhausted has a non-empty buffer, so the heads are comparable.
    let best: Stream | undefined;
    for (const stream of this.streams) {
      const head = stream.buffer[0];
      if (!head) continue;
      if (!best || this.before(head, best.buffer[0]!)) best = stream;
    }
    if (!best) return undefined;
    const record = best.buffer.shift()!;
    best.position = startKeyOf(record, best.partition.index);
    if (best.buffer.length === 0) await this.fill(best);
    return record;
  }

  hasMore(): boolean {
    return this.streams.some((stream) => stream.buffer.length > 0 || !stream.exhausted);
  }

  cursor(): string {
    const positions = this.streams.map((stream) => (stream.buffer.length === 0 && stream.exhausted ? 0 : (stream.position ?? null)));
    return encodeCursor({ v: 1, q: this.fingerprint, p: positions });
  }

  private before(a: DecisionRecord, b: DecisionRecord): boolean {
    const byTime = a[SORT_BY_TIME].localeCompare(b[SORT_BY_TIME]);
    if (byTime !== 0) return this.descending ? byTime > 0 : byTime < 0;
    // Same instant: a stable order (human decisions, which supersede, first when newest first).
    const tie = `${a.pk}|${a.sk}`.localeCompare(`${b.pk}|${b.sk}`);
    return this.descending ? tie > 0 : tie < 0;
  }

  private async fill(stream: Stream): Promise<void> {
    while (stream.buffer.length === 0 && !stream.exhausted) {
      const page = await this.table.client.send(new QueryCommand(this.input(stream)));
      stream.buffer.push(...(await wholeRecords(this.table, page.Items ?? [])));
      stream.fetchFrom = page.LastEvaluatedKey as StartKey | undefined;
      if (!stream.fetchFrom) stream.exhausted = true;
    }
  }

  private input(stream: Stream): QueryCommandInput {
    const { query } = this;
    const index = DECISION_INDEXES[stream.partition.index];
    const names: Record<string, string> = { '#p': index.partitionKey };
    const values: Record<string, unknown> = { ':p': stream.partition.value };
    let condition = '#p = :p';
    const since = query.since?.toISOString();
    const until = query.until?.toISOString();
    if (since || until) names['#t'] = SORT_BY_TIME;
    if (since && until) {
      condition += ' AND #t BETWEEN :since AND :until';
      Object.assign(values, { ':since': since, ':until': until });
    } else if (since) {
      condition += ' AND #t >= :since';
      values[':since'] = since;
    } else if (until) {
      condition += ' AND #t <= :until';
      values[':until'] = until;
    }
    const filters: string[] = [];
    if (this.plan.filters.includes('uploader')) {
      names['#u'] = 'uploader';
      values[':u'] = query.uploader;
      filters.push('#u = :u');
    }
    if (this.plan.filters.includes('category')) {
      names['#c'] = 'category';
      const keys = query.categories!.map((category, i) => {
        values[`:c${i}`] = category;
        return `:c${i}`;
      });
      filters.push(`#c IN (${keys.join(', ')})`);
    }
    if (this.plan.filters.includes('policy')) {
      names['#pn'] = 'policyName';
      values[':pn'] = query.policy;
      filters.push('#pn = :pn');
    }
    if (this.plan.filters.includes('status')) {
      names['#s'] = 'status';
      const keys = query.statuses!.map((status, i) => {
        values[`:s${i}`] = status;
        return `:s${i}`;
      });
      filters.push(`#s IN (${keys.join(', ')})`);
    }
    return {
      TableName: this.table.tableName,
      IndexName: index.name,
      KeyConditionExpression: condition,
      FilterExpression: filters.length ? filters.join(' AND ') : undefined,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ScanIndexForward: !this.descending,
      ExclusiveStartKey: stream.fetchFrom,
      Limit: this.pageSize,
    };
  }
}

/** BatchGetItem's limit of keys per request. */
const BATCH_GET_KEYS = 100;

/**
 * The whole records for the items of an index page, in the page's order. The indexes project only keys
 * and the filtered attributes (table-schema.ts), so each row is read from the table: one BatchGetItem
 * per 100 rows, eventually consistent like the index itself. The history is append-only, so every
 * indexed item is in the table.
 */
export async function wholeRecords(table: Pick<HistoryTable, 'client' | 'tableName'>, indexItems: Record<string, unknown>[]): Promise<DecisionRecord[]> {
  const keyOf = (item: Record<string, unknown>) => `${String(item[TABLE_KEYS.partitionKey])}|${String(item[TABLE_KEYS.sortKey])}`;
  const found = new Map<string, Record<string, unknown>>();
  for (let i = 0; i < indexItems.length; i += BATCH_GET_KEYS) {
    let keys: Record<string, unknown>[] | undefined = indexItems
      .slice(i, i + BATCH_GET_KEYS)
      .map((item) => ({ [TABLE_KEYS.partitionKey]: item[TABLE_KEYS.partitionKey], [TABLE_KEYS.sortKey]: item[TABLE_KEYS.sortKey] }));
    for (let attempt = 0; keys?.length; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2_000, 50 * 2 ** attempt)));
      const response = await table.client.send(new BatchGetCommand({ RequestItems: { [table.tableName]: { Keys: keys } } }));
      for (const item of response.Responses?.[table.tableName] ?? []) found.set(keyOf(item), item);
      keys = response.UnprocessedKeys?.[table.tableName]?.Keys as Record<string, unknown>[] | undefined;
      if (keys?.length && attempt >= 20) throw new Error(`BatchGetItem left ${keys.length} keys unprocessed after ${attempt + 1} attempts`);
    }
  }
  return indexItems.flatMap((item) => {
    const whole = found.get(keyOf(item));
    return whole ? [recordFromItem(whole)] : [];
  });
}

/** A GSI's ExclusiveStartKey: the table's key plus the index's key. */
function startKeyOf(record: DecisionRecord, index: DecisionIndexName): StartKey {
  const partitionKey = DECISION_INDEXES[index].partitionKey;
  return {
    [TABLE_KEYS.partitionKey]: record.pk,
    [TABLE_KEYS.sortKey]: record.sk,
    [partitionKey]: String((record as unknown as Record<string, unknown>)[partitionKey]),
    [SORT_BY_TIME]: record[SORT_BY_TIME],
  };
}

/** What the cursor is valid for: the partitions, filters, window and order (not the page size). */
function fingerprintOf(query: AuditQuery, plan: QueryPlan): string {
  const identity = {
    plan,
    uploader: query.uploader,
    categories: query.categories,
    statuses: query.statuses,
    policy: query.policy,
    since: query.since?.toISOString(),
    until: query.until?.toISOString(),
    order: query.order ?? 'newest',
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('base64url').slice(0, 12);
}

interface CursorDocument {
  v: 1;
  q: string;
  /** Per partition: 0 = drained, null = not started, else the key to resume after. */
  p: Array<StartKey | 0 | null>;
}

function encodeCursor(document: CursorDocument): string {
  return deflateRawSync(Buffer.from(JSON.stringify(document))).toString('base64url');
}

function decodeCursor(cursor: string, fingerprint: string, partitions: number): CursorDocument['p'] {
  let document: CursorDocument;
  try {
    document = JSON.parse(inflateRawSync(Buffer.from(cursor.trim(), 'base64url')).toString('utf8')) as CursorDocument;
  } catch {
    throw new InvalidCursorError('--cursor is not a cursor printed by `moderation audit` (it may have been cut when copied)');
  }
  if (document?.v !== 1 || !Array.isArray(document.p) || document.p.length !== partitions) {
    throw new InvalidCursorError('--cursor is not a cursor printed by this version of `moderation audit`');
  }
  if (document.q !== fingerprint) {
    throw new InvalidCursorError('--cursor belongs to another query: repeat the same --key/--status/--uploader/--category/--since/--until/--order with it');
  }
  return document.p;
}

