/**
 * The content index of the decision store: which job already decided these exact bytes under a policy
 * version, and which REJECTED images a new one looks like (docs/architecture.md, "Never pay twice for
 * the same bytes"). Two item kinds in the decision table beside the history (keys in table-schema.ts);
 * they carry no index attribute and are not decisions, so audits, histories and decision events never
 * see them.
 *
 * What the index holds is a pointer to a job, never a status: the caller follows it to the job's
 * latest decision, so a human who overturns the decision later is what a repeat gets.
 */
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { callAws } from '../errors.ts';
import type { HistoryTable } from './decision-query.ts';
import { CONTENT_SORT_KEY, TABLE_KEYS, contentPartitionKey, nearDuplicatePartitionKey } from './table-schema.ts';
import { bandKeys, bandKeysForStorage, hammingDistance } from '../lib/hash-bands.ts';

/** The job that first decided some bytes under a policy version. */
export interface ContentSource {
  /** SHA-256 of the object's bytes, hex. */
  contentHash: string;
  policyVersion: string;
  jobId: string;
  recordedAt: string;
}

/** A REJECTED image's perceptual hash (functions/lib/perceptual-hash.ts). */
export interface KnownBad {
  perceptualHash: string;
  policyVersion: string;
  jobId: string;
  recordedAt: string;
}

export interface NearMatch extends KnownBad {
  /** Bits (of 64) between the two hashes. */
  distance: number;
}

export interface ContentIndex {
  /** Remembers the job that decided these bytes; the first job stays (a later call changes nothing). */
  remember(source: ContentSource): Promise<void>;
  /** The job that first decided these bytes under this policy version. */
  sourceOf(contentHash: string, policyVersion: string): Promise<ContentSource | undefined>;
  /** Adds a REJECTED image's perceptual hash to its policy version's known-bad set (idempotent). */
  rememberRejected(entry: KnownBad): Promise<void>;
  /** Known-bad hashes within maxDistance bits, nearest first: one Query per band of the hash, never a Scan. */
  nearRejected(perceptualHash: string, policyVersion: string, maxDistance: number): Promise<NearMatch[]>;
}

/** Known-bad index writes in flight at once (one band's keys). */
const PUTS_IN_FLIGHT = 17;

export class DynamoContentIndex implements ContentIndex {
  constructor(private readonly table: Pick<HistoryTable, 'client' | 'tableName'>) {}

  async remember(source: ContentSource): Promise<void> {
    const item = {
      [TABLE_KEYS.partitionKey]: contentPartitionKey(source.contentHash, source.policyVersion),
      [TABLE_KEYS.sortKey]: CONTENT_SORT_KEY,
      contentHash: source.contentHash,
      policyVersion: source.policyVersion,
      sourceJobId: source.jobId,
      recordedAt: source.recordedAt,
    };
    try {
      await callAws('DynamoDB', () =>
        this.table.client.send(
          new PutCommand({ TableName: this.table.tableName, Item: item, ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey } }),
        ),
      );
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    }
  }

  async sourceOf(contentHash: string, policyVersion: string): Promise<ContentSource | undefined> {
    // Eventually consistent (half a read unit): a lookup that misses a second-old entry only costs a Rekognition call.
    const { Item } = await callAws('DynamoDB', () =>
      this.table.client.send(
        new GetCommand({
          TableName: this.table.tableName,
          Key: { [TABLE_KEYS.partitionKey]: contentPartitionKey(contentHash, policyVersion), [TABLE_KEYS.sortKey]: CONTENT_SORT_KEY },
        }),
      ),
    );
    if (!Item) return undefined;
    return { contentHash, policyVersion, jobId: String(Item.sourceJobId), recordedAt: String(Item.recordedAt) };
  }

  async rememberRejected(entry: KnownBad): Promise<void> {
    // PutItem, not BatchWriteItem: no function may delete from the history, and BatchWriteItem would
    // allow it. One band's 17 keys at a time, each write idempotent (same key, same item).
    const keys = bandKeysForStorage(entry.perceptualHash);
    for (let i = 0; i < keys.length; i += PUTS_IN_FLIGHT) {
      await Promise.all(
        keys.slice(i, i + PUTS_IN_FLIGHT).map((bandKey) =>
          callAws('DynamoDB', () =>
            this.table.client.send(
              new PutCommand({
                TableName: this.table.tableName,
                Item: {
                  [TABLE_KEYS.partitionKey]: nearDuplicatePartitionKey(entry.policyVersion, bandKey),
                  [TABLE_KEYS.sortKey]: entry.jobId,
                  nearHash: entry.perceptualHash,
                  sourceJobId: entry.jobId,
                  recordedAt: entry.recordedAt,
                },
              }),
            ),
          ),
        ),
      );
    }
  }

  async nearRejected(perceptualHash: string, policyVersion: string, maxDistance: number): Promise<NearMatch[]> {
    const found = new Map<string, KnownBad>();
    await Promise.all(
      bandKeys(perceptualHash).map(async (bandKey) => {
        let from: Record<string, unknown> | undefined;
        do {
          const page = await callAws('DynamoDB', () =>
            this.table.client.send(
              new QueryCommand({
                TableName: this.table.tableName,
                KeyConditionExpression: '#pk = :pk',
                ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
                ExpressionAttributeValues: { ':pk': nearDuplicatePartitionKey(policyVersion, bandKey) },
                ExclusiveStartKey: from,
              }),
            ),
          );
          for (const item of page.Items ?? []) {
            found.set(String(item.sourceJobId), { perceptualHash: String(item.nearHash), policyVersion, jobId: String(item.sourceJobId), recordedAt: String(item.recordedAt) });
          }
          from = page.LastEvaluatedKey;
        } while (from);
      }),
    );
    return nearestWithin([...found.values()], perceptualHash, maxDistance);
  }
}

/** The same contract in memory (tests, callers without a table). */
export class InMemoryContentIndex implements ContentIndex {
  private readonly contents = new Map<string, ContentSource>();
  /** Band key → known-bad entries stored under it, as the table would hold them. */
  private readonly bands = new Map<string, Map<string, KnownBad>>();

  async remember(source: ContentSource): Promise<void> {
    const key = contentPartitionKey(source.contentHash, source.policyVersion);
    if (!this.contents.has(key)) this.contents.set(key, { ...source });
  }

  async sourceOf(contentHash: string, policyVersion: string): Promise<ContentSource | undefined> {
    const found = this.contents.get(contentPartitionKey(contentHash, policyVersion));
    return found && { ...found };
  }

  async rememberRejected(entry: KnownBad): Promise<void> {
    for (const bandKey of bandKeysForStorage(entry.perceptualHash)) {
      const key = nearDuplicatePartitionKey(entry.policyVersion, bandKey);
      const bucket = this.bands.get(key) ?? new Map<string, KnownBad>();
      bucket.set(entry.jobId, { ...entry });
      this.bands.set(key, bucket);
    }
  }

  async nearRejected(perceptualHash: string, policyVersion: string, maxDistance: number): Promise<NearMatch[]> {
    const found = new Map<string, KnownBad>();
    for (const bandKey of bandKeys(perceptualHash)) {
      for (const entry of this.bands.get(nearDuplicatePartitionKey(policyVersion, bandKey))?.values() ?? []) found.set(entry.jobId, entry);
    }
    return nearestWithin([...found.values()], perceptualHash, maxDistance);
  }
}

function nearestWithin(candidates: KnownBad[], perceptualHash: string, maxDistance: number): NearMatch[] {
  return candidates
    .map((entry) => ({ ...entry, distance: hammingDistance(entry.perceptualHash, perceptualHash) }))
    .filter((match) => match.distance <= maxDistance)
    .sort((a, b) => a.distance - b.distance || a.recordedAt.localeCompare(b.recordedAt) || a.jobId.localeCompare(b.jobId));
}
