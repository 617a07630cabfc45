/**
 * The moderation policy a job is judged with. With POLICY_PARAMETER set (the construct and the local
 * runtime set it), the live policy set in SSM Parameter Store, read at most every
 * POLICY_CACHE_SECONDS (≤ 60) and routed per upload by key prefix or uploader
 * (functions/lib/policy-set.ts, functions/lib/live-policy.ts; docs/operating.md, "Live policy").
 * Without it, MODERATION_POLICY, parsed once per container (a bad policy fails loudly at first use).
 */
import { ssm } from './clients.ts';
import { handlerConfig } from './lib/config.ts';
import { LivePolicy } from './lib/live-policy.ts';
import { resolvePolicy, type Policy } from './lib/policy.ts';
import { parsePolicySet, policySetOf, routePolicy, type PolicySet, type Routable, type RoutedPolicy } from './lib/policy-set.ts';
import { logger, metrics, MetricUnit } from './observability.ts';
import { SsmPolicyParameter } from './store/policy-parameter.ts';
import type { Detection } from './lib/types.ts';

let policy: Policy | undefined;
let live: LivePolicy | undefined;

/** MODERATION_POLICY: the policy without a live parameter (and what review/record fall back to). */
export function currentPolicy(): Policy {
  policy ??= resolvePolicy(handlerConfig().policy);
  return policy;
}

/**
 * The policy for this upload: the live set's route for its key or uploader, else its default. Throws
 * PolicyUnavailable (retried by the state machine) when the live policy was never readable.
 */
export async function policyFor(upload: Routable): Promise<RoutedPolicy & { parameterVersion?: number }> {
  const parameter = handlerConfig().policyParameter;
  if (!parameter) return routePolicy(policySetOf(currentPolicy()), upload);
  const snapshot = await livePolicy(parameter).current();
  return { ...routePolicy(snapshot.set, upload), parameterVersion: snapshot.parameterVersion };
}

function livePolicy(parameterName: string): LivePolicy {
  live ??= new LivePolicy({
    read: () => new SsmPolicyParameter(ssm(), parameterName).get(),
    parse: (value, version) => parsePolicySet(value, `SSM parameter ${parameterName} (version ${version})`),
    maxAgeMs: handlerConfig().policyCacheSeconds * 1000,
    onChange: (now, before) => {
      logger.info('live policy in force', {
        parameter: parameterName,
        parameterVersion: now.parameterVersion,
        policySet: now.set.version,
        ...(before ? { previousParameterVersion: before.parameterVersion } : {}),
      });
    },
    onFallback: (reason, error, kept) => {
      logger.warn('live policy: using the last good copy', { parameter: parameterName, reason, error: error.message, parameterVersion: kept.parameterVersion });
      metrics.addMetric('PolicyFallbacks', MetricUnit.Count, 1);
    },
  });
  return live;
}

/** The name of the policy a detection was judged by, for the record (and its decision event). */
export function policyNameOf(detection: Pick<Detection, 'policyName' | 'policyVersion'> | undefined): string | undefined {
  return detection?.policyName ?? policyNameFor(detection?.policyVersion);
}

/**
 * The name of the policy that has `version` (for a state without `detection.policyName`): the one
 * policy of the live set this container last read with that version, else MODERATION_POLICY's when
 * its version matches, else undefined. Never throws: naming the policy must not cost a decision.
 */
function policyNameFor(version: string | undefined): string | undefined {
  if (!version) return undefined;
  try {
    const set: PolicySet | undefined = live?.lastGood()?.set;
    if (set) {
      const names = [...new Set(Object.values(set.policies).filter((p) => p.version === version).map((p) => p.name))];
      if (names.length === 1) return names[0];
      if (names.length > 1) return undefined; // two names for one version: which one judged is unknowable here
    }
    const current = currentPolicy();
    return current.version === version ? current.name : undefined;
  } catch {
    return undefined;
  }
}
