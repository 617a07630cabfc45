/**
 * The stores (functions/store/) over a CLI target's clients: the same decision store, object store
 * and dead-letter format the handlers use, so the CLI never talks to DynamoDB or S3 by itself.
 * Stores are thin (a client and names), so one is made per call.
 */
import { DynamoDecisionStore, type DecisionStore } from '../functions/store/decision-store.ts';
import { S3ObjectStore, type ObjectStore } from '../functions/store/object-store.ts';
import type { Target } from './target.ts';

type HistoryTarget = Pick<Target, 'dynamodb'> & { names: Pick<Target['names'], 'decisionTable' | 'statusShards'> };

export function decisionStoreOf(target: HistoryTarget): DecisionStore {
  return new DynamoDecisionStore({ client: target.dynamodb, tableName: target.names.decisionTable, statusShards: target.names.statusShards });
}

export function objectStoreOf(target: Pick<Target, 's3'>): ObjectStore {
  return new S3ObjectStore(target.s3);
}
