/**
 * The decision store: the decision history (DynamoDB) as handlers, CLI and console use it. The only
 * code that reads or writes the table; it alone knows its keys (table-schema.ts). Append-only: the
 * automated decision is written once per job (with its quality-sample queue entry when it was
 * sampled), human decisions, appeals and failures are appended, a blind answer is written once.
 */
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Decision, DecisionRecord, DecisionStatus } from '../lib/types.ts';
import { qualitySampleEntry } from '../lib/decision.ts';
import { callAws } from '../errors.ts';
import { iterateHistory, queryHistory, wholeRecords, type AuditPage, type AuditQuery, type HistoryTable } from './decision-query.ts';
import {
  AUTO_DECISION_SK,
  APPEAL_PREFIX,
  DECISION_INDEXES,
  DECISION_PREFIX,
  HUMAN_DECISION_PREFIX,
  TABLE_KEYS,
  decisionItem,
  imageKeyOf,
  jobPartitionKey,
  newestFirst,
  recordFromItem,
  recordIdOf,
} from './table-schema.ts';
import { AppealOpenError, DecisionConflictError } from './errors.ts';
import { DynamoContentIndex, type ContentIndex } from './content-index.ts';
import { DynamoLabelIndex, type LabelIndex } from './label-index.ts';

export type PutOnceResult = { written: true; record: DecisionRecord } | { written: false; existing: DecisionRecord };

export interface DecisionStore {
  /** Which job already decided these bytes, which REJECTED images a new one looks like (content-index.ts). */
  readonly content: ContentIndex;
  /** Which automated decisions found a DetectLabels label (`moderation audit --label`; label-index.ts). */
  readonly labels: LabelIndex;
  /** The job's automated decision (a consistent read). */
  automated(jobId: string): Promise<DecisionRecord | undefined>;
  /** The latest word on a job: its newest human decision, else its automated decision. */
  latestDecision(jobId: string): Promise<DecisionRecord | undefined>;
  /**
   * Writes the automated decision unless the job has one; then returns the latest decision instead.
   * A decision chosen for quality sampling (`qualitySample`) also gets its review-queue entry (kind
   * `sample`), written after it and only if absent, on both paths: a redelivery after a crash between
   * the two writes repairs it (the choice is a function of the job id, so it is the same).
   */
  putAutomatedOnce(decision: Decision): Promise<PutOnceResult>;
  /**
   * Appends a human decision as the job's next revision. Two reviewers deciding at once compute the
   * same revision: exactly one write wins, the other gets DecisionConflictError naming the winner.
   */
  appendHuman(decision: Decision): Promise<DecisionRecord>;
  /** Appends a failure (never conditional: a later replay can still write the decision). */
  appendFailure(decision: Decision): Promise<DecisionRecord>;
  /**
   * Appends an appeal (kind `appeal`) as the job's next appeal revision. Refused with AppealOpenError
   * while an earlier appeal has no outcome (a human decision whose `appealOf` names it), and for the
   * loser of two appeals filed at once (the same revision: one conditional write wins).
   */
  appendAppeal(appeal: Decision): Promise<DecisionRecord>;
  /**
   * Writes a reviewer's blind answer to a quality sample (kind `blind`), once per job: of two answers
   * at once exactly one is written, the other gets DecisionConflictError naming it.
   */
  appendBlindAnswer(answer: Decision): Promise<DecisionRecord>;
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

/**
 * The current decision among a job's or an image's records: the newest decision, else the newest
 * failure. Appeals and quality samples are not decisions.
 */
export function latestOf(records: DecisionRecord[]): DecisionRecord | undefined {
  const sorted = [...records].sort(newestFirst);
  return sorted.find((r) => r.kind === 'human' || r.kind === 'automated') ?? sorted.find((r) => r.kind === 'failure');
}

/** Among a job's records: its newest appeal that has no outcome yet (no human decision names it in `appealOf`). */
export function openAppealOf(records: DecisionRecord[]): DecisionRecord | undefined {
  const latest = records.filter((r) => r.kind === 'appeal').sort(newestFirst)[0];
  if (!latest) return undefined;
  const id = recordIdOf(latest);
  return records.some((r) => r.kind === 'human' && r.appealOf === id) ? undefined : latest;
}

/** Among a job's records: the newest human decision, else the automated one (failures do not count). */
export function latestDecisionOf(records: DecisionRecord[]): DecisionRecord | undefined {
  const humans = records.filter((r) => r.kind === 'human').sort(newestFirst);
  return humans[0] ?? records.find((r) => r.kind === 'automated');
}

export class DynamoDecisionStore implements DecisionStore {
  private readonly table: HistoryTable;
  readonly content: ContentIndex;
  readonly labels: LabelIndex;

  constructor(table: HistoryTable) {
    this.table = table;
    this.content = new DynamoContentIndex(table);
    this.labels = new DynamoLabelIndex(table);
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
    let written = false;
    try {
      await this.put(record);
      written = true;
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    }
    if (decision.qualitySample) await this.putIfAbsent(decisionItem(qualitySampleEntry(decision, recordIdOf(record)), { shards: this.table.statusShards }));
    if (written) return { written: true, record };
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

  async appendAppeal(appeal: Decision): Promise<DecisionRecord> {
    const records = await this.partition(appeal.jobId);
    const open = openAppealOf(records);
    if (open) throw new AppealOpenError(appeal.jobId, open);
    const revision = records.filter((r) => r.kind === 'appeal').length + 1;
    const record = decisionItem(appeal, { shards: this.table.statusShards, revision });
    if (await this.putIfAbsent(record)) return record;
    throw new AppealOpenError(appeal.jobId, openAppealOf(await this.partition(appeal.jobId, APPEAL_PREFIX)));
  }

  async appendBlindAnswer(answer: Decision): Promise<DecisionRecord> {
    const record = decisionItem(answer, { shards: this.table.statusShards });
    if (await this.putIfAbsent(record)) return record;
    const winner = (await this.partition(answer.jobId)).find((r) => r.sk === record.sk);
    throw new DecisionConflictError(answer.jobId, winner);
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
      // The index holds keys and a few attributes: the whole records come from the table.
      records.push(...(await wholeRecords(this.table, page.Items ?? [])));
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

  /** A conditional put that says whether it wrote (false: an item with this key exists). */
  private async putIfAbsent(record: DecisionRecord): Promise<boolean> {
    try {
      await this.put(record);
      return true;
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
      return false;
    }
  }

  /** A conditional put: never overwrites an item with the same key (the history is append-only). */
  private put(record: DecisionRecord) {
    return callAws('DynamoDB', () => this.table.client.send(new PutCommand({ TableName: this.table.tableName, Item: record, ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey } })));
  }

  private key(jobId: string, sk: string) {
    return { [TABLE_KEYS.partitionKey]: jobPartitionKey(jobId), [TABLE_KEYS.sortKey]: sk };
  }
}
