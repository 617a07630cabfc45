/**
 * The stores a handler container works with, made on first use from the SDK clients (clients.ts)
 * and the configuration, like the clients themselves. Tests and the local runtime may put in their
 * own (e.g. the in-memory stores of functions/store/memory.ts) with useStores().
 */
import { decisions, s3, sqs } from './clients.ts';
import { handlerConfig, required } from './lib/config.ts';
import { DynamoDecisionStore, type DecisionStore } from './store/decision-store.ts';
import { S3ObjectStore, type ObjectStore } from './store/object-store.ts';
import { SqsDeadLetterChannel, type DeadLetterChannel } from './store/dead-letter-channel.ts';

export interface PipelineStores {
  decisions: DecisionStore;
  objects: ObjectStore;
  deadLetters: DeadLetterChannel;
}

let overrides: Partial<PipelineStores> = {};
let decisionStore: DecisionStore | undefined;
let objectStore: ObjectStore | undefined;
let deadLetterChannel: DeadLetterChannel | undefined;

export function decisionHistory(): DecisionStore {
  decisionStore ??=
    overrides.decisions ??
    new DynamoDecisionStore({ client: decisions(), tableName: required(handlerConfig(), 'decisionTable'), statusShards: handlerConfig().statusShards });
  return decisionStore;
}

export function objects(): ObjectStore {
  objectStore ??= overrides.objects ?? new S3ObjectStore(s3());
  return objectStore;
}

export function deadLetters(): DeadLetterChannel {
  deadLetterChannel ??= overrides.deadLetters ?? new SqsDeadLetterChannel(sqs(), required(handlerConfig(), 'deadLetterQueueUrl'));
  return deadLetterChannel;
}

/** Replaces some stores (tests, the local runtime); the others are made from the clients as usual. */
export function useStores(stores: Partial<PipelineStores>): void {
  overrides = { ...stores };
  decisionStore = undefined;
  objectStore = undefined;
  deadLetterChannel = undefined;
}
