/** The moderation policy for this container, parsed and validated once (a bad policy fails loudly at first use). */
import { handlerConfig } from './lib/config.ts';
import { resolvePolicy, type Policy } from './lib/policy.ts';

let policy: Policy | undefined;

export function currentPolicy(): Policy {
  policy ??= resolvePolicy(handlerConfig().policy);
  return policy;
}

/**
 * The name of the policy that has `version`, for the record (and its decision event): this
 * container's policy when its version matches, else undefined. Never throws: naming the policy
 * must not cost a decision.
 */
export function policyNameFor(version: string | undefined): string | undefined {
  if (!version) return undefined;
  try {
    const current = currentPolicy();
    return current.version === version ? current.name : undefined;
  } catch {
    return undefined;
  }
}
