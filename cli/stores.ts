/**
 * The stores (functions/store/) over a CLI target's clients: the same decision store, object store
 * and dead-letter format the handlers use, so the CLI never talks to DynamoDB or S3 by itself.
 * Stores are thin (a client and names), so one is made per call.
 */
import { DynamoDecisionStore, type DecisionStore } from '../functions/store/decision-store.ts';
import { S3ObjectStore, type ObjectStore } from '../functions/store/object-store.ts';
import { SsmPolicyParameter, type PolicyParameter } from '../functions/store/policy-parameter.ts';
import { UsageError } from './output.ts';
import type { Target } from './target.ts';

type HistoryTarget = Pick<Target, 'dynamodb'> & { names: Pick<Target['names'], 'decisionTable' | 'statusShards'> };

export function decisionStoreOf(target: HistoryTarget): DecisionStore {
  return new DynamoDecisionStore({ client: target.dynamodb, tableName: target.names.decisionTable, statusShards: target.names.statusShards });
}

export function objectStoreOf(target: Pick<Target, 's3'>): ObjectStore {
  return new S3ObjectStore(target.s3);
}

/** The live policy's parameter (`moderation policy push|show`), or a one-line error saying why there is none. */
export function policyParameterOf(target: Pick<Target, 'ssm' | 'names' | 'kind' | 'endpoints' | 'description'>): PolicyParameter {
  const name = target.names.policyParameter;
  if (!name || (target.kind !== 'deployed' && !target.endpoints.ssm)) {
    throw new UsageError(
      target.kind === 'deployed'
        ? `${target.description} has no output PolicyParameterName: deploy this version of the stack (it creates the live-policy parameter), or set MODERATION_POLICY_PARAMETER`
        : `${target.description} has no live-policy parameter: it was started by an older version; restart \`moderation serve\``,
    );
  }
  return new SsmPolicyParameter(target.ssm, name);
}
