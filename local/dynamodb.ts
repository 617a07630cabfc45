/**
 * DynamoDB on this machine: dynalite in-process, bound to 127.0.0.1, stored on disk (LevelDB) under
 * the data directory so the decision history survives a restart. The decision table is created from
 * functions/store/table-schema.ts, the same key design the CDK construct deploys. A table an earlier
 * version made with other indexes is upgraded at start (upgradeDecisionTable): dynalite cannot change
 * a GSI, so the items are copied into a new table, and the old one is kept beside it.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname } from 'node:path';
import dynalite from 'dynalite';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type CreateTableCommandInput,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { DECISION_INDEXES, INDEX_PROJECTED_ATTRIBUTES, SORT_BY_TIME, TABLE_KEYS, upgradedItem } from '../functions/store/table-schema.ts';
import { acquireLock, closeServer, endpointOf, listen, LOCAL_REGION, LOOPBACK } from './net.ts';
import { UserFacingError } from '../functions/lib/errors.ts';
import { tapPutItems, type TableStream } from './decision-events.ts';
import { closeLevelIteratorsOnReturn } from './level-iterators.ts';
import { DUMMY_CREDENTIALS } from './client-config.ts';

export const DECISION_TABLE_NAME = 'moderation-decisions';

export interface LocalDynamoOptions {
  /** LevelDB directory; absent: in memory (nothing persists). */
  path?: string;
  port?: number;
  host?: string;
  region?: string;
  tableName?: string;
  /** Told about every PutItem on the table, before and after (the local table stream: local/decision-events.ts). */
  stream?: TableStream;
}

export interface LocalDynamo {
  endpoint: string;
  port: number;
  tableName: string;
  /** Whether this start created the table or found it on disk. */
  table: 'created' | 'existing';
  /** Set when this start upgraded a table an earlier version made (upgradeDecisionTable). */
  upgraded?: TableUpgrade;
  close(): Promise<void>;
}

export interface TableUpgrade {
  /** Items copied into the new table. */
  items: number;
  /** Where the table as it was is kept (a LevelDB directory beside the new one). */
  previous: string;
  /** What differed: the schema problems the upgrade fixed. */
  changes: string[];
}

/** The decision table: pk/sk, and one GSI per access pattern, each sorted by decidedAt, projecting its keys and the filtered attributes. */
export function decisionTableDefinition(tableName = DECISION_TABLE_NAME): CreateTableCommandInput {
  const indexes = Object.values(DECISION_INDEXES);
  const attributes = new Set<string>([TABLE_KEYS.partitionKey, TABLE_KEYS.sortKey, SORT_BY_TIME, ...indexes.map((i) => i.partitionKey)]);
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributes].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
    KeySchema: [
      { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: indexes.map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' },
        { AttributeName: SORT_BY_TIME, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...INDEX_PROJECTED_ATTRIBUTES] },
    })),
  };
}

export class TableSchemaMismatchError extends UserFacingError {
  override name = 'TableSchemaMismatchError';
}

/**
 * Creates the decision table unless it exists, and waits until it is ACTIVE. An existing table must
 * have the expected keys and indexes (dynalite cannot add a GSI to an existing table).
 */
export async function ensureDecisionTable(client: DynamoDBClient, tableName = DECISION_TABLE_NAME): Promise<'created' | 'existing'> {
  const definition = decisionTableDefinition(tableName);
  let outcome: 'created' | 'existing' = 'existing';
  let table = await describe(client, tableName);
  if (!table) {
    try {
      await client.send(new CreateTableCommand(definition));
      outcome = 'created';
    } catch (err) {
      if ((err as Error).name !== 'ResourceInUseException') throw err;
    }
    table = await describe(client, tableName);
  }
  for (let i = 0; table?.TableStatus !== 'ACTIVE'; i++) {
    if (i > 200) throw new Error(`table ${tableName} did not become ACTIVE (status ${table?.TableStatus})`);
    await new Promise((resolve) => setTimeout(resolve, 10));
    table = await describe(client, tableName);
  }
  const problems = schemaProblems(table, definition);
  if (problems.length) {
    throw new TableSchemaMismatchError(
      `table ${tableName} exists with another schema (${problems.join('; ')}); it was made by another version of this project. ` +
        'Move the data directory aside (or delete its dynamodb folder) to start a fresh history.',
    );
  }
  return outcome;
}

async function describe(client: DynamoDBClient, tableName: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException') return undefined;
    throw err;
  }
}

function schemaProblems(table: TableDescription, expected: CreateTableCommandInput): string[] {
  const keys = (schema?: Array<{ AttributeName?: string; KeyType?: string }>) => (schema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
  const problems: string[] = [];
  if (keys(table.KeySchema) !== keys(expected.KeySchema)) problems.push(`keys ${keys(table.KeySchema)}`);
  const existing = new Map((table.GlobalSecondaryIndexes ?? []).map((gsi) => [gsi.IndexName, gsi]));
  for (const gsi of expected.GlobalSecondaryIndexes ?? []) {
    const found = existing.get(gsi.IndexName);
    if (!found) problems.push(`index ${gsi.IndexName} missing`);
    else if (keys(found.KeySchema) !== keys(gsi.KeySchema)) problems.push(`index ${gsi.IndexName} keys ${keys(found.KeySchema)}`);
    // ALL (tables made before the indexes were narrowed) holds everything the queries need too.
    else if (!projects(found.Projection, gsi.Projection)) problems.push(`index ${gsi.IndexName} projection ${found.Projection?.ProjectionType}`);
  }
  return problems;
}

function projects(found: { ProjectionType?: string; NonKeyAttributes?: string[] } | undefined, wanted: { NonKeyAttributes?: string[] } | undefined): boolean {
  if (found?.ProjectionType === 'ALL') return true;
  return found?.ProjectionType === 'INCLUDE' && (wanted?.NonKeyAttributes ?? []).every((name) => found.NonKeyAttributes?.includes(name));
}

export async function startLocalDynamo(options: LocalDynamoOptions = {}): Promise<LocalDynamo> {
  const host = options.host ?? LOOPBACK;
  const tableName = options.tableName ?? DECISION_TABLE_NAME;
  closeLevelIteratorsOnReturn(); // else every Query and Scan leaves a LevelDB iterator open (local/level-iterators.ts)
  let release = () => {};
  if (options.path) {
    mkdirSync(dirname(options.path), { recursive: true });
    release = acquireLock(`${options.path}.lock`, `the decision table's store ${options.path}`);
    // Before the store opens: a table an interrupted upgrade moved away must not be made afresh.
    finishInterruptedUpgrade(options.path);
  }
  try {
    let upgraded: TableUpgrade | undefined;
    let served: Served;
    try {
      served = await serveStore(options, host, tableName);
    } catch (err) {
      // A table an earlier version made with other indexes: copied into this version's, then served
      // (the one start that opens the store twice; every other start opens it once).
      if (!(err instanceof TableSchemaMismatchError) || !options.path) throw err;
      upgraded = await upgradeDecisionTable(options.path, tableName);
      if (!upgraded) throw err;
      served = await serveStore(options, host, tableName);
    }
    const { server, port, table } = served;
    return {
      endpoint: endpointOf(port, host),
      port,
      tableName,
      table,
      ...(upgraded ? { upgraded } : {}),
      close: async () => {
        try {
          await closeServer(server);
        } finally {
          release();
        }
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}

interface Served {
  server: Server;
  port: number;
  table: 'created' | 'existing';
}

/** dynalite on the store (tapped for the table stream), listening, with the decision table ensured; closed again if the table is refused. */
async function serveStore(options: LocalDynamoOptions, host: string, tableName: string): Promise<Served> {
  const server = dynalite({ path: options.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  if (options.stream) tapPutItems(server, tableName, options.stream);
  const port = await listen(server, options.port ?? 0, host);
  const client = new DynamoDBClient({ endpoint: endpointOf(port, host), region: options.region ?? LOCAL_REGION, credentials: DUMMY_CREDENTIALS, maxAttempts: 1 });
  try {
    return { server, port, table: await ensureDecisionTable(client, tableName) };
  } catch (err) {
    await closeServer(server).catch(() => undefined);
    throw err;
  } finally {
    client.destroy();
  }
}

/** dynalite on a LevelDB directory, untapped and on a free port: the upgrade's old table and its copy. */
async function openStore(path: string): Promise<{ client: DynamoDBClient; documents: DynamoDBDocumentClient; close(): Promise<void> }> {
  const server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const port = await listen(server, 0, LOOPBACK);
  const client = new DynamoDBClient({ endpoint: endpointOf(port, LOOPBACK), region: LOCAL_REGION, credentials: DUMMY_CREDENTIALS, maxAttempts: 3 });
  // wrapNumbers: numbers are copied as the strings DynamoDB stores, never through a float.
  const documents = DynamoDBDocumentClient.from(client, { unmarshallOptions: { wrapNumbers: true } });
  return {
    client,
    documents,
    close: async () => {
      client.destroy();
      await closeServer(server);
    },
  };
}

const upgradingPath = (path: string) => `${path}.upgrading`;
const upgradedMarker = (path: string) => `${path}.upgrading.complete`;

/**
 * Upgrades the decision table in `path` when an earlier version of this project made it with other
 * indexes (the same primary key): every item is copied, as this version writes it
 * (functions/store/table-schema.ts, upgradedItem), into a new table in `<path>.upgrading`, which then
 * takes the table's place; the table as it was stays in `<path>.before-upgrade-<time>`. Nothing is
 * deleted, and a crash at any step leaves either the old table in place (the copy is made again at the
 * next start) or a complete copy that the next start puts in place. No decision event is sent for the
 * copied items: they are not new decisions. Undefined when there is nothing to upgrade.
 */
export async function upgradeDecisionTable(path: string, tableName = DECISION_TABLE_NAME): Promise<TableUpgrade | undefined> {
  finishInterruptedUpgrade(path);
  if (!existsSync(path)) return undefined;
  const definition = decisionTableDefinition(tableName);
  const old = await openStore(path);
  let copied = 0;
  let changes: string[];
  try {
    const table = await describe(old.client, tableName);
    if (!table) return undefined;
    changes = schemaProblems(table, definition);
    // Another primary key is another design, not an upgrade: ensureDecisionTable refuses it.
    if (!changes.length || changes.some((problem) => problem.startsWith('keys '))) return undefined;
    const staging = upgradingPath(path);
    rmSync(staging, { recursive: true, force: true });
    const next = await openStore(staging);
    try {
      await ensureDecisionTable(next.client, tableName);
      // A page at a time (Scan pages are at most 1 MB): memory stays flat however long the history.
      let ExclusiveStartKey: Record<string, unknown> | undefined;
      do {
        const page = await old.documents.send(new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey }));
        const items = (page.Items ?? []).map(upgradedItem);
        for (let i = 0; i < items.length; i += 25) await writeAll(next.documents, tableName, items.slice(i, i + 25), path);
        copied += items.length;
        ExclusiveStartKey = page.LastEvaluatedKey;
      } while (ExclusiveStartKey);
    } finally {
      await next.close();
    }
  } finally {
    await old.close();
  }
  writeFileSync(upgradedMarker(path), `${JSON.stringify({ items: copied, changes })}\n`);
  const previous = `${path}.before-upgrade-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  renameSync(path, previous);
  finishInterruptedUpgrade(path);
  return { items: copied, previous, changes };
}

/** One BatchWriteItem of up to 25 items, again for what comes back unprocessed. */
async function writeAll(documents: DynamoDBDocumentClient, tableName: string, items: Array<Record<string, unknown>>, path: string): Promise<void> {
  let requests = items.map((Item) => ({ PutRequest: { Item } }));
  for (let attempt = 0; requests.length; attempt++) {
    if (attempt > 20) throw new Error(`upgrading the decision table in ${path}: the copy's writes keep coming back unprocessed`);
    const out = await documents.send(new BatchWriteCommand({ RequestItems: { [tableName]: requests } }));
    requests = (out.UnprocessedItems?.[tableName] ?? []) as typeof requests;
  }
}

/** A complete copy whose swap a crash interrupted goes in place; an incomplete one is dropped. */
function finishInterruptedUpgrade(path: string): void {
  const staging = upgradingPath(path);
  const complete = existsSync(upgradedMarker(path));
  if (complete && !existsSync(path) && existsSync(staging)) renameSync(staging, path);
  if (!complete || existsSync(path)) rmSync(staging, { recursive: true, force: true });
  rmSync(upgradedMarker(path), { force: true });
}
