/**
 * The live-policy parameter in SSM Parameter Store (docs/operating.md, "Live policy"): read by the
 * detect step (functions/policy-source.ts, cached), written by `moderation policy push`. The only
 * code that knows SSM's request and error shapes.
 */
import { GetParameterCommand, GetParameterHistoryCommand, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { UserFacingError } from '../lib/errors.ts';
import type { StoredPolicy } from '../lib/live-policy.ts';

/** The parameter does not exist (the stack that creates it is not deployed, or the name is wrong). */
export class PolicyParameterNotFoundError extends UserFacingError {
  override name = 'PolicyParameterNotFound';
}

export type ParameterTierName = 'Standard' | 'Advanced';

export interface PolicyParameterVersion extends StoredPolicy {
  modifiedBy?: string;
}

export interface PolicyParameter {
  readonly name: string;
  /** The current value and version; PolicyParameterNotFoundError when there is none. */
  get(): Promise<StoredPolicy>;
  /** Overwrites the value (a new version); creates the parameter when it does not exist. */
  put(value: string, options?: { tier?: ParameterTierName; description?: string }): Promise<{ version: number }>;
  /** The newest `max` versions, newest first. */
  history(max?: number): Promise<PolicyParameterVersion[]>;
}

export class SsmPolicyParameter implements PolicyParameter {
  constructor(
    private readonly client: SSMClient,
    readonly name: string,
  ) {}

  async get(): Promise<StoredPolicy> {
    try {
      const { Parameter } = await this.client.send(new GetParameterCommand({ Name: this.name }));
      if (Parameter?.Value === undefined || Parameter.Version === undefined) throw new PolicyParameterNotFoundError(`SSM parameter ${this.name} has no value`);
      return { value: Parameter.Value, version: Parameter.Version, ...(Parameter.LastModifiedDate ? { modifiedAt: Parameter.LastModifiedDate } : {}) };
    } catch (err) {
      throw this.notFound(err);
    }
  }

  async put(value: string, options: { tier?: ParameterTierName; description?: string } = {}): Promise<{ version: number }> {
    const out = await this.client.send(
      new PutParameterCommand({
        Name: this.name,
        Value: value,
        Type: 'String',
        Overwrite: true,
        ...(options.tier ? { Tier: options.tier } : {}),
        ...(options.description ? { Description: options.description } : {}),
      }),
    );
    return { version: out.Version ?? 0 };
  }

  async history(max = 10): Promise<PolicyParameterVersion[]> {
    const versions: PolicyParameterVersion[] = [];
    let NextToken: string | undefined;
    try {
      do {
        const page = await this.client.send(new GetParameterHistoryCommand({ Name: this.name, MaxResults: 50, NextToken }));
        for (const p of page.Parameters ?? []) {
          if (p.Value === undefined || p.Version === undefined) continue;
          versions.push({ value: p.Value, version: p.Version, ...(p.LastModifiedDate ? { modifiedAt: p.LastModifiedDate } : {}), ...(p.LastModifiedUser ? { modifiedBy: p.LastModifiedUser } : {}) });
        }
        NextToken = page.NextToken;
      } while (NextToken);
    } catch (err) {
      throw this.notFound(err);
    }
    // SSM lists the oldest first.
    return versions.sort((a, b) => b.version - a.version).slice(0, max);
  }

  private notFound(err: unknown): unknown {
    return (err as Error)?.name === 'ParameterNotFound' ? new PolicyParameterNotFoundError(`SSM parameter ${this.name} does not exist`, { cause: err }) : err;
  }
}
