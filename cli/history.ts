/** Reading the decision history the way the CLI needs it: the latest word on one object version. */
import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DECISION_INDEXES, SORT_BY_TIME, imageKeyOf } from '../functions/lib/table-schema.ts';
import type { DecisionRecord } from '../functions/lib/types.ts';

/** Every record of one image (all versions), newest first. */
export async function imageHistory(db: DynamoDBDocumentClient, table: string, bucket: string, key: string): Promise<DecisionRecord[]> {
  const records: DecisionRecord[] = [];
  let cursor: Record<string, unknown> | undefined;
  do {
    const page = await db.send(
      new QueryCommand({
        TableName: table,
        IndexName: DECISION_INDEXES.byImage.name,
        KeyConditionExpression: '#image = :image',
        ExpressionAttributeNames: { '#image': DECISION_INDEXES.byImage.partitionKey },
        ExpressionAttributeValues: { ':image': imageKeyOf(bucket, key) },
        ScanIndexForward: false,
        ExclusiveStartKey: cursor,
      }),
    );
    records.push(...((page.Items ?? []) as DecisionRecord[]));
    cursor = page.LastEvaluatedKey;
  } while (cursor);
  // Same-millisecond records: a human decision outranks the automated one it supersedes.
  return records.sort((a, b) => b[SORT_BY_TIME].localeCompare(a[SORT_BY_TIME]) || rank(b) - rank(a));
}

function rank(record: DecisionRecord): number {
  return record.sk.startsWith('DECISION#human') ? 2 : record.sk.startsWith('DECISION') ? 1 : 0;
}

/**
 * The current decision for an object version (by ETag): the newest decision record, or FAILED when
 * only failures exist so far.
 */
export async function currentDecision(
  db: DynamoDBDocumentClient,
  table: string,
  bucket: string,
  key: string,
  eTag: string,
): Promise<DecisionRecord | undefined> {
  const strip = (tag?: string) => (tag ?? '').replace(/"/g, '');
  const records = (await imageHistory(db, table, bucket, key)).filter((r) => strip(r.eTag) === strip(eTag));
  return records.find((r) => r.sk.startsWith('DECISION')) ?? records[0];
}
