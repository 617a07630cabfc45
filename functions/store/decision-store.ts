/**
 * The decision store: the decision history (DynamoDB) as handlers, CLI and console use it. The only
 * code that reads or writes the table; it alone knows its keys (table-schema.ts). Append-only: the
 * automated decision is written once per job, human decisions and failures are appended.
 */
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Decision, DecisionRecord, DecisionStatus } from '../lib/types.ts';
import { callAws } from '../errors.ts';
import { iterateHistory, queryHistory, type AuditPage, type AuditQuery, type HistoryTable } from './decision-query.ts';
import {
  AUTO_DECISION_SK,
  DECISION_INDEXES,
  DECISION_PREFIX,
  HUMAN_DECISION_PREFIX,
  TABLE_KEYS,
  decisionItem,
  imageKeyOf,
  jobPartitionKey,
  newestFirst,
  recordFromItem,
} from './table-schema.ts';
import { DecisionConflictError } from './errors.ts';

export type PutOnceResult = { written: true; record: DecisionRecord } | { written: false; existing: DecisionRecord };

export interface DecisionStore {
  /** The job's automated decision (a consistent read). */
  automated(jobId: string): Promise<DecisionRecord | undefined>;
  /** The latest word on a job: its newest human decision, else its automated decision. */
  latestDecision(jobId: string): Promise<DecisionRecord | undefined>;
  /** Writes the automated decision unless the job has one; then returns the latest decision instead. */
  putAutomatedOnce(decision: Decision): Promise<PutOnceResult>;
  /**
   * Appends a human decision as the job's next revision. Two reviewers deciding at once compute the
   * same revision: exactly one write wins, the other gets DecisionConflictError naming the winner.
   */
  appendHuman(decision: Decision): Promise<DecisionRecord>;
  /** Appends a failure (never conditional: a later replay can still write the decision). */
  appendFailure(decision: Decision): Promise<DecisionRecord>;
  /** Every record of one job (automated, human, failures), oldest first. */
  jobHistory(jobId: string): Promise<DecisionRecord[]>;
  /** Every record of one image (all its versions), newest first. */
  imageHistory(bucket: string, key: string): Promise<DecisionRecord[]>;
  /** The latest decided status of each job that has one. */
  decidedStatuses(jobIds: string[]): Promise<Map<string, DecisionStatus>>;
  /** One page of an audit query (see decision-query.ts). */
  query(query: AuditQuery): Promise<AuditPage>;
  /** Every record an audit query matches, page after page. */
  iterate(query: Omit<AuditQuery, 'limit'> & { max?: number }): AsyncGenerator<DecisionRecord>;
}

/** The current decision among a job's or an image's records: the newest decision, else the newest failure. */
export function latestOf(records: DecisionRecord[]): DecisionRecord | undefined {
  const sorted = [...records].sort(newestFirst);
  return sorted.find((r) => r.kind !== 'failure') ?? sorted[0];
}

/** Among a job's records: the newest human decision, else the automated one (failures do not count). */
export function latestDecisionOf(records: DecisionRecord[]): DecisionRecord | undefined {
  const humans = records.filter((r) => r.kind === 'human').sort(newestFirst);
  return humans[0] ?? records.find((r) => r.kind === 'automated');
}

export class DynamoDecisionStore implements DecisionStore {
  private readonly table: HistoryTable;

  constructor(table: HistoryTable) {
    this.table = table;
  }

  async automated(jobId: string): Promise<DecisionRecord | undefined> {
    const { Item } = await callAws('DynamoDB', () => this.table.client.send(new GetCommand({ TableName: this.table.tableName, Key: this.key(jobId, AUTO_DECISION_SK), ConsistentRead: true })));
    return Item ? recordFromItem(Item) : undefined;
  }

  async latestDecision(jobId: string): Promise<DecisionRecord | undefined> {
    return latestDecisionOf(await this.partition(jobId, DECISION_PREFIX));
  }

  async putAutomatedOnce(decision: Decision): Promise<PutOnceResult> {
    const record = decisionItem(decision, { shards: this.table.statusShards });
    try {
      await this.put(record);
      return { written: true, record };
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    }
    const existing = await this.latestDecision(decision.jobId);
    if (!existing) throw new Error(`job ${decision.jobId}: the automated decision exists (the conditional write failed) but cannot be read`);
    return { written: false, existing };
  }

  async appendHuman(decision: Decision): Promise<DecisionRecord> {
    const humans = await this.partition(decision.jobId, HUMAN_DECISION_PREFIX);
    const record = decisionItem(decision, { shards: this.table.statusShards, revision: humans.length + 1 });
    try {
      await this.put(record);
      return record;
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    }
    const winner = latestDecisionOf(await this.partition(decision.jobId, HUMAN_DECISION_PREFIX));
    throw new DecisionConflictError(decision.jobId, winner);
  }

  async appendFailure(decision: Decision): Promise<DecisionRecord> {
    const record = decisionItem(decision, { shards: this.table.statusShards });
    await callAws('DynamoDB', () => this.table.client.send(new PutCommand({ TableName: this.table.tableName, Item: record })));
    return record;
  }

  async jobHistory(jobId: string): Promise<DecisionRecord[]> {
    return (await this.partition(jobId)).sort((a, b) => -newestFirst(a, b));
  }

  async imageHistory(bucket: string, key: string): Promise<DecisionRecord[]> {
    const records: DecisionRecord[] = [];
    let cursor: Record<string, unknown> | undefined;
    do {
      const page = await callAws('DynamoDB', () => this.table.client.send(
        new QueryCommand({
          TableName: this.table.tableName,
          IndexName: DECISION_INDEXES.byImage.name,
          KeyConditionExpression: '#image = :image',
          ExpressionAttributeNames: { '#image': DECISION_INDEXES.byImage.partitionKey },
          ExpressionAttributeValues: { ':image': imageKeyOf(bucket, key) },
          ScanIndexForward: false,
          ExclusiveStartKey: cursor,
        }),
      ));
      records.push(...(page.Items ?? []).map(recordFromItem));
      cursor = page.LastEvaluatedKey;
    } while (cursor);
    return records.sort(newestFirst);
  }

  async decidedStatuses(jobIds: string[]): Promise<Map<string, DecisionStatus>> {
    const statuses = new Map<string, DecisionStatus>();
    await Promise.all(
      [...new Set(jobIds)].map(async (jobId) => {
        const latest = await this.latestDecision(jobId);
        if (latest) statuses.set(jobId, latest.status);
      }),
    );
    return statuses;
  }

  query(query: AuditQuery): Promise<AuditPage> {
    return queryHistory(this.table, query);
  }

  iterate(query: Omit<AuditQuery, 'limit'> & { max?: number }): AsyncGenerator<DecisionRecord> {
    return iterateHistory(this.table, query);
  }

  /** The records of one job's partition (optionally under a sort-key prefix), consistent. */
  private async partition(jobId: string, prefix?: string): Promise<DecisionRecord[]> {
    const records: DecisionRecord[] = [];
    let from: Record<string, unknown> | undefined;
    do {
      const page = await callAws('DynamoDB', () => this.table.client.send(
        new QueryCommand({
          TableName: this.table.tableName,
          KeyConditionExpression: prefix ? '#pk = :pk AND begins_with(#sk, :prefix)' : '#pk = :pk',
          ExpressionAttributeNames: prefix ? { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey } : { '#pk': TABLE_KEYS.partitionKey },
          ExpressionAttributeValues: prefix ? { ':pk': jobPartitionKey(jobId), ':prefix': prefix } : { ':pk': jobPartitionKey(jobId) },
          ExclusiveStartKey: from,
          ConsistentRead: true,
        }),
      ));
      records.push(...(page.Items ?? []).map(recordFromItem));
      from = page.LastEvaluatedKey;
    } while (from);
    return records;
  }

  /** A conditional put: never overwrites an item with the same key (the history is append-only). */
  private put(record: DecisionRecord) {
    return callAws('DynamoDB', () => this.table.client.send(new PutCommand({ TableName: this.table.tableName, Item: record, ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey } })));
  }

  private key(jobId: string, sk: string) {
    return { [TABLE_KEYS.partitionKey]: jobPartitionKey(jobId), [TABLE_KEYS.sortKey]: sk };
  }
}
