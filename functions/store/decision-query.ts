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
import { QueryCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { DECISION_INDEXES, SORT_BY_TIME, TABLE_KEYS, imageKeyOf, recordFromItem, statusShardKey, type DecisionIndexName } from './table-schema.ts';
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
  index: DecisionIndexName;
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
  if (query.image) {
    partitions = [{ index: 'byImage', value: imageKeyOf(query.image.bucket, query.image.key) }];
  } else if (query.uploader !== undefined) {
    partitions = [{ index: 'byUploader', value: query.uploader }];
  } else if (query.categories?.length) {
    partitions = query.categories.map((value) => ({ index: 'byCategory', value }));
  } else {
    const statuses = query.statuses?.length ? query.statuses : DECISION_STATUSES;
    partitions = statuses.flatMap((status) => Array.from({ length: shards }, (_, shard) => ({ index: 'byStatus' as const, value: statusShardKey(status, shard) })));
  }
  const index = partitions[0]!.index;
  if (query.uploader !== undefined && index !== 'byUploader') filters.push('uploader');
  if (query.categories?.length && index !== 'byCategory') filters.push('category');
  if (query.statuses?.length && index !== 'byStatus') filters.push('status');
  return { plan: { index, partitions: partitions.map((p) => p.value), filters }, partitions };
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
      stream.buffer.push(...(page.Items ?? []).map(recordFromItem));
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

