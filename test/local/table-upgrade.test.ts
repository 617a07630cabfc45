/**
 * A data directory made by an earlier version keeps its history: its decision table (byUploader keyed
 * on `uploader`, every index projecting ALL, as before commit ff8a7d7) is upgraded at start into this
 * version's indexes, every item copied, the old table kept beside; a crash part-way loses nothing.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import dynalite from 'dynalite';
import { afterEach, describe, expect, it } from 'vitest';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, NumberValue, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { decisionTableDefinition, startLocalDynamo, upgradeDecisionTable, DECISION_TABLE_NAME, type LocalDynamo } from '../../local/dynamodb.ts';
import { closeServer, endpointOf, listen, LOOPBACK } from '../../local/net.ts';
import { automatedRecord } from '../../functions/lib/decision.ts';
import { decisionItem, DECISION_INDEXES } from '../../functions/store/table-schema.ts';
import type { DecisionStatus, ModerationState } from '../../functions/lib/types.ts';
import { eventually, tempHome } from './stack-helpers.ts';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const PRECISE = '0.12345678901234567890123456789';
const homes: Array<{ remove(): void }> = [];
const open: LocalDynamo[] = [];
afterEach(async () => {
  for (const dynamo of open.splice(0)) await dynamo.close();
  for (const home of homes.splice(0)) home.remove();
});

function record(n: number, status: DecisionStatus, uploader: string) {
  const at = new Date(Date.UTC(2026, 10, 20, 0, 0, n)).toISOString();
  const state: ModerationState = {
    job: { jobId: `${n}`.padStart(40, '0'), bucket: 'uploads', key: `uploads/${uploader}/${n}.jpg`, uploader, eventTime: at, receivedAt: at },
    detection: { verdict: ({ APPROVED: 'APPROVE', REJECTED: 'REJECT', REVIEW: 'BORDERLINE' } as const)[status as 'APPROVED' | 'REJECTED' | 'REVIEW'], labels: [], flagged: [], policyVersion: 'p', source: 's3-object', durationMs: 1 },
  };
  const decision = automatedRecord(state, { decidedAt: at });
  // As the earlier version wrote it: no uploaderKey (its byUploader was keyed on uploader).
  const { uploaderKey: _dropped, ...item } = decisionItem(decision, { shards: 8 }) as unknown as Record<string, unknown>;
  // More digits than a double holds: copied as DynamoDB stores it, or changed by a float on the way.
  return { ...item, precise: NumberValue.from(PRECISE) };
}

/** A table as the version before the index change made it, with these items. */
async function oldTable(path: string, items: Array<Record<string, unknown>>): Promise<void> {
  const server = dynalite({ path, createTableMs: 0 });
  const port = await listen(server, 0, LOOPBACK);
  const client = new DynamoDBClient({ endpoint: endpointOf(port, LOOPBACK), region: 'us-east-1', credentials });
  const definition = decisionTableDefinition();
  await client.send(
    new CreateTableCommand({
      ...definition,
      GlobalSecondaryIndexes: definition.GlobalSecondaryIndexes!.map((gsi) => ({
        ...gsi,
        KeySchema: gsi.IndexName === DECISION_INDEXES.byUploader.name ? [{ AttributeName: 'uploader', KeyType: 'HASH' }, gsi.KeySchema![1]!] : gsi.KeySchema,
        Projection: { ProjectionType: 'ALL' },
      })),
      AttributeDefinitions: [...definition.AttributeDefinitions!.filter((a) => a.AttributeName !== 'uploaderKey'), { AttributeName: 'uploader', AttributeType: 'S' }],
    }),
  );
  // dynalite creates a table asynchronously even with createTableMs 0: writes before ACTIVE are refused.
  await eventually(async () => ((await client.send(new DescribeTableCommand({ TableName: DECISION_TABLE_NAME }))).Table?.TableStatus === 'ACTIVE' ? true : undefined), 10_000, 10);
  const documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  for (const Item of items) await documents.send(new PutCommand({ TableName: DECISION_TABLE_NAME, Item }));
  client.destroy();
  await closeServer(server);
}

async function query(dynamo: LocalDynamo, index: string | undefined, key: string, value: string) {
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials }), { unmarshallOptions: { wrapNumbers: true } });
  try {
    const out = await client.send(
      new QueryCommand({ TableName: dynamo.tableName, IndexName: index, KeyConditionExpression: '#k = :v', ExpressionAttributeNames: { '#k': key }, ExpressionAttributeValues: { ':v': value } }),
    );
    return out.Items ?? [];
  } finally {
    client.destroy();
  }
}

function home(): string {
  const made = tempHome('table-upgrade-');
  homes.push(made);
  return made.dir;
}

const items = () => [record(1, 'REJECTED', 'ann'), record(2, 'APPROVED', 'ann'), record(3, 'REVIEW', 'bob'), { pk: 'CONTENT#abc', sk: 'CONTENT', jobId: '1'.padStart(40, '0') }];

describe('upgrading a decision table an earlier version made', () => {
  it('copies every item into this version\'s indexes at start, keeps the old table, and does it once', async () => {
    const dir = home();
    const path = join(dir, 'dynamodb');
    await oldTable(path, items());

    const dynamo = await startLocalDynamo({ path });
    open.push(dynamo);
    expect(dynamo.upgraded).toMatchObject({ items: 4, changes: [expect.stringMatching(/^index byUploader keys uploader:HASH/)] });
    expect(existsSync(dynamo.upgraded!.previous)).toBe(true);
    // byUploader is sparse now: ann's rejection is there, her approval is not.
    expect((await query(dynamo, 'byUploader', 'uploaderKey', 'ann')).map((i) => i.status)).toEqual(['REJECTED']);
    expect((await query(dynamo, 'byUploader', 'uploaderKey', 'bob')).map((i) => i.status)).toEqual(['REVIEW']);
    expect(await query(dynamo, 'byImage', 'imageKey', 'uploads/uploads/ann/2.jpg')).toHaveLength(1);
    // The rest of every item as it was, a number to its last digit, and the items that are not decisions too.
    const [rejected] = await query(dynamo, undefined, 'pk', `JOB#${'1'.padStart(40, '0')}`);
    expect(String((rejected as { precise: NumberValue }).precise)).toBe(PRECISE);
    expect(await query(dynamo, undefined, 'pk', 'CONTENT#abc')).toEqual([{ pk: 'CONTENT#abc', sk: 'CONTENT', jobId: '1'.padStart(40, '0') }]);
    await dynamo.close();
    open.splice(0);

    const again = await startLocalDynamo({ path });
    open.push(again);
    expect(again.upgraded).toBeUndefined();
    expect(readdirSync(dir).filter((name) => name.includes('upgrad'))).toHaveLength(1); // the kept table only
  });

  it('copies a history larger than one Scan page (1 MB), page by page', async () => {
    const dir = home();
    const path = join(dir, 'dynamodb');
    const padding = 'x'.repeat(1_000);
    const many = Array.from({ length: 1_300 }, (_, i) => ({ ...record(i + 1, i % 3 ? 'APPROVED' : 'REJECTED', 'cy'), padding }));
    await oldTable(path, many);
    const dynamo = await startLocalDynamo({ path });
    open.push(dynamo);
    expect(dynamo.upgraded?.items).toBe(1_300);
    expect(await query(dynamo, 'byUploader', 'uploaderKey', 'cy')).toHaveLength(many.filter((_, i) => i % 3 === 0).length);
  });

  it('a copy a crash left half-made is dropped and made again; a complete one whose swap was cut short is put in place', async () => {
    const dir = home();
    const path = join(dir, 'dynamodb');
    await oldTable(path, items());
    // Half-made: a staging directory without the marker.
    mkdirSync(`${path}.upgrading`);
    writeFileSync(join(`${path}.upgrading`, 'junk'), 'x');
    const upgraded = await upgradeDecisionTable(path);
    expect(upgraded?.items).toBe(4);
    expect(existsSync(`${path}.upgrading`)).toBe(false);

    // Cut short between the two renames: the table moved away, the complete copy not yet in place.
    const dir2 = home();
    const path2 = join(dir2, 'dynamodb');
    await oldTable(path2, items());
    const first = await upgradeDecisionTable(path2);
    renameSync(path2, `${path2}.upgrading`);
    writeFileSync(`${path2}.upgrading.complete`, '{}\n');
    expect(await upgradeDecisionTable(path2)).toBeUndefined();
    expect(existsSync(`${path2}.upgrading`)).toBe(false);
    const dynamo = await startLocalDynamo({ path: path2 });
    open.push(dynamo);
    expect(first?.items).toBe(4);
    expect((await query(dynamo, 'byUploader', 'uploaderKey', 'ann')).map((i) => i.status)).toEqual(['REJECTED']);
  });
});
