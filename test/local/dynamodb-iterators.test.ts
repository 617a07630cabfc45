/**
 * The local table closes what it opens: every Query and Scan reads through a LevelDB iterator, and
 * an iterator left open keeps its native snapshot and grows the process for as long as `moderation
 * serve` runs (local/level-iterators.ts). Counted where abstract-level tracks them: each iterator
 * attaches itself to its database when it opens and detaches when it closes.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDBClient, PutItemCommand, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb.ts';
import { dynalitesAbstractLevel, levelIteratorPrototype } from '../../local/level-iterators.ts';
import { TABLE_KEYS } from '../../functions/store/table-schema.ts';
import { eventually, tempHome } from './stack-helpers.ts';

interface Tracked {
  attachResource(resource: object): void;
  detachResource(resource: object): void;
}

describe('the local decision table', () => {
  const openIterators = new Set<object>();
  const iteratorPrototype = levelIteratorPrototype();
  // abstract-level's database class, the one dynalite's LevelDB is built on.
  const prototype = dynalitesAbstractLevel().AbstractLevel.prototype as Tracked;
  const { attachResource, detachResource } = prototype;
  const home = tempHome('dynamo-iterators-');
  let dynamo: LocalDynamo;
  let client: DynamoDBClient;

  beforeAll(async () => {
    prototype.attachResource = function (resource) {
      if (iteratorPrototype.isPrototypeOf(resource)) openIterators.add(resource);
      return attachResource.call(this, resource);
    };
    prototype.detachResource = function (resource) {
      openIterators.delete(resource);
      return detachResource.call(this, resource);
    };
    dynamo = await startLocalDynamo({ path: join(home.dir, 'decisions') });
    client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    for (let i = 0; i < 5; i++) {
      await client.send(new PutItemCommand({ TableName: dynamo.tableName, Item: { [TABLE_KEYS.partitionKey]: { S: 'JOB#a' }, [TABLE_KEYS.sortKey]: { S: `DECISION#${i}` } } }));
    }
  });

  afterAll(async () => {
    prototype.attachResource = attachResource;
    prototype.detachResource = detachResource;
    client?.destroy();
    await dynamo?.close();
    home.remove();
  });

  it('closes the LevelDB iterator of every Query (read to the end or stopped at its Limit) and Scan', async () => {
    const before = openIterators.size;
    const query = (limit?: number) =>
      client.send(
        new QueryCommand({
          TableName: dynamo.tableName,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
          ExpressionAttributeValues: { ':pk': { S: 'JOB#a' } },
          ScanIndexForward: false,
          ...(limit ? { Limit: limit } : {}),
        }),
      );
    for (let i = 0; i < 20; i++) {
      expect((await query()).Items).toHaveLength(5);
      expect((await query(1)).Items).toHaveLength(1);
    }
    expect((await client.send(new ScanCommand({ TableName: dynamo.tableName }))).Items).toHaveLength(5);
    // The streams end after the response is written: give the closes a moment, not a fixed one.
    // If they stay open, the assertion below says how many.
    await eventually(async () => (openIterators.size === before ? true : undefined), 5_000).catch(() => undefined);
    expect(openIterators.size).toBe(before);
  });
});
