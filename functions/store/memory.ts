/**
 * In-memory stores with the same contracts as the AWS ones, for tests and for callers that want a
 * pipeline without any service behind it. The decision store keeps the same keys (table-schema.ts)
 * and the same conditional writes, so what a test sees is what the table would hold.
 */
import type { Decision, DecisionRecord, DecisionStatus } from '../lib/types.ts';
import { AppealOpenError, DecisionConflictError } from './errors.ts';
import { latestDecisionOf, openAppealOf, type DecisionStore, type PutOnceResult } from './decision-store.ts';
import { qualitySampleEntry } from '../lib/decision.ts';
import { planQuery, type AuditPage, type AuditQuery } from './decision-query.ts';
import { InMemoryContentIndex } from './content-index.ts';
import { InMemoryLabelIndex } from './label-index.ts';
import { AUTO_DECISION_SK, DEFAULT_STATUS_SHARDS, decisionItem, imageKeyOf, jobPartitionKey, newestFirst, recordIdOf } from './table-schema.ts';

export class InMemoryDecisionStore implements DecisionStore {
  /** Every item by its record id (`<pk>|<sk>`), as the table would hold it. */
  readonly items = new Map<string, DecisionRecord>();
  /** The content index (content-index.ts), kept apart from `items`: its entries are not decision records. */
  readonly content = new InMemoryContentIndex();
  /** The label index (label-index.ts), kept apart from `items` like the content index; it reads the automated records. */
  readonly labels = new InMemoryLabelIndex((jobId) => this.items.get(`${jobPartitionKey(jobId)}|${AUTO_DECISION_SK}`));

  constructor(private readonly statusShards = DEFAULT_STATUS_SHARDS) {}

  async automated(jobId: string): Promise<DecisionRecord | undefined> {
    return this.copy(this.items.get(`${jobPartitionKey(jobId)}|${AUTO_DECISION_SK}`));
  }

  async latestDecision(jobId: string): Promise<DecisionRecord | undefined> {
    return this.copy(latestDecisionOf(this.partition(jobId)));
  }

  async putAutomatedOnce(decision: Decision): Promise<PutOnceResult> {
    const record = decisionItem(decision, { shards: this.statusShards });
    const written = this.putIfAbsent(record);
    if (decision.qualitySample) this.putIfAbsent(decisionItem(qualitySampleEntry(decision, recordIdOf(record)), { shards: this.statusShards }));
    if (written) return { written: true, record: this.copy(record)! };
    return { written: false, existing: (await this.latestDecision(decision.jobId))! };
  }

  async appendHuman(decision: Decision): Promise<DecisionRecord> {
    const revision = this.partition(decision.jobId).filter((r) => r.kind === 'human').length + 1;
    const record = decisionItem(decision, { shards: this.statusShards, revision });
    // The table's read and conditional write are two round trips; so are these, so a concurrent
    // reviewer can compute the same revision and lose the write, exactly as against DynamoDB.
    await Promise.resolve();
    if (!this.putIfAbsent(record)) throw new DecisionConflictError(decision.jobId, await this.latestDecision(decision.jobId));
    return this.copy(record)!;
  }

  async appendFailure(decision: Decision): Promise<DecisionRecord> {
    const record = decisionItem(decision, { shards: this.statusShards });
    this.items.set(recordIdOf(record), structuredClone(record));
    return this.copy(record)!;
  }

  async appendAppeal(appeal: Decision): Promise<DecisionRecord> {
    const records = this.partition(appeal.jobId);
    const open = openAppealOf(records);
    if (open) throw new AppealOpenError(appeal.jobId, this.copy(open));
    const record = decisionItem(appeal, { shards: this.statusShards, revision: records.filter((r) => r.kind === 'appeal').length + 1 });
    // Two round trips, as against the table: two appeals filed at once compute the same revision.
    await Promise.resolve();
    if (!this.putIfAbsent(record)) throw new AppealOpenError(appeal.jobId, this.copy(openAppealOf(this.partition(appeal.jobId))));
    return this.copy(record)!;
  }

  async appendBlindAnswer(answer: Decision): Promise<DecisionRecord> {
    const record = decisionItem(answer, { shards: this.statusShards });
    if (!this.putIfAbsent(record)) throw new DecisionConflictError(answer.jobId, this.copy(this.items.get(recordIdOf(record))));
    return this.copy(record)!;
  }

  async jobHistory(jobId: string): Promise<DecisionRecord[]> {
    return this.partition(jobId)
      .sort((a, b) => -newestFirst(a, b))
      .map((r) => this.copy(r)!);
  }

  async imageHistory(bucket: string, key: string): Promise<DecisionRecord[]> {
    const imageKey = imageKeyOf(bucket, key);
    return [...this.items.values()]
      .filter((r) => r.imageKey === imageKey)
      .sort(newestFirst)
      .map((r) => this.copy(r)!);
  }

  async decidedStatuses(jobIds: string[]): Promise<Map<string, DecisionStatus>> {
    const statuses = new Map<string, DecisionStatus>();
    for (const jobId of new Set(jobIds)) {
      const latest = latestDecisionOf(this.partition(jobId));
      if (latest) statuses.set(jobId, latest.status);
    }
    return statuses;
  }

  /** The same matches and order as the table's indexes; the cursor is an offset into them. */
  async query(query: AuditQuery): Promise<AuditPage> {
    const { plan } = planQuery(query, this.statusShards);
    const all = this.matching(query);
    const offset = query.cursor ? Number(Buffer.from(query.cursor, 'base64url').toString('utf8')) : 0;
    const end = query.limit === undefined ? all.length : offset + query.limit;
    const items = all.slice(offset, end);
    return { items, nextCursor: end < all.length ? Buffer.from(String(end)).toString('base64url') : undefined, plan };
  }

  async *iterate(query: Omit<AuditQuery, 'limit'> & { max?: number }): AsyncGenerator<DecisionRecord> {
    yield* this.matching(query).slice(0, query.max ?? Number.POSITIVE_INFINITY);
  }

  private matching(query: AuditQuery): DecisionRecord[] {
    const since = query.since?.toISOString();
    const until = query.until?.toISOString();
    const matches = [...this.items.values()].filter(
      (r) =>
        (!query.image || r.imageKey === imageKeyOf(query.image.bucket, query.image.key)) &&
        (!query.statuses?.length || query.statuses.includes(r.status)) &&
        (query.uploader === undefined || r.uploader === query.uploader) &&
        (query.policy === undefined || r.policyName === query.policy) &&
        (!query.categories?.length || (r.category !== undefined && query.categories.includes(r.category))) &&
        (!since || r.decidedAt >= since) &&
        (!until || r.decidedAt <= until),
    );
    matches.sort(newestFirst);
    if (query.order === 'oldest') matches.reverse();
    return matches.map((r) => this.copy(r)!);
  }

  private partition(jobId: string): DecisionRecord[] {
    const pk = jobPartitionKey(jobId);
    return [...this.items.values()].filter((r) => r.pk === pk);
  }

  /** The conditional write: false when an item with this key exists. */
  private putIfAbsent(record: DecisionRecord): boolean {
    const id = recordIdOf(record);
    if (this.items.has(id)) return false;
    this.items.set(id, structuredClone(record));
    return true;
  }

  /** Callers get copies, as they would from the table: mutating one never changes the history. */
  private copy(record: DecisionRecord | undefined): DecisionRecord | undefined {
    return record && structuredClone(record);
  }
}
