/** The moderation policy for this container, parsed and validated once (a bad policy fails loudly at first use). */
import { handlerConfig } from './lib/config.ts';
import { resolvePolicy, type Policy } from './lib/policy.ts';

let policy: Policy | undefined;

export function currentPolicy(): Policy {
  policy ??= resolvePolicy(handlerConfig().policy);
  return policy;
}
