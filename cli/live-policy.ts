/**
 * `moderation policy push` and `moderation policy show`: the live policy (docs/operating.md, "Live
 * policy"). Push validates a policy or policy set (functions/lib/policy-set.ts) before anything is
 * published, then overwrites the SSM parameter that the detect step reads (cached at most 60 s);
 * show prints what is live. Both work against a deployed stack, a running `serve` and the embedded
 * local stack (cli/target.ts).
 */
import { refuseAnalysesNotEnabled } from '../functions/lib/analysis-policy.ts';
import type { Command } from 'commander';
import { MAX_POLICY_CACHE_SECONDS } from '../functions/lib/config.ts';
import type { StoredPolicy } from '../functions/lib/live-policy.ts';
import { describeRoute, parsePolicySet, policySetParameterValue, PARAMETER_VALUE_LIMITS, resolvePolicySet, type ParameterTier, type PolicySet } from '../functions/lib/policy-set.ts';
import { PolicyParameterNotFoundError, type ParameterTierName } from '../functions/store/policy-parameter.ts';
import { addTargetOptions, parseInteger, withTarget, type TargetFlags } from './flags.ts';
import { escapeControl, renderTable, type Row } from './output.ts';
import { policyParameterOf } from './stores.ts';
import type { Target } from './target.ts';

interface PushFlags extends TargetFlags {
  dryRun?: boolean;
  json?: boolean;
}

interface ShowFlags extends TargetFlags {
  history?: string | boolean;
  json?: boolean;
}

const PUSH_HELP = `
What can be pushed: a preset (strict, standard, permissive), a policy file (YAML or JSON, as for
\`policy validate\`; it applies to every upload), or a policy set: named policies and routes to them.

  # tenants.yaml
  policies:
    kids: strict                                  # a preset by name, or a full policy document
    photos: { rules: { Explicit: { reject: 80, review: 50 } } }
  routes:                                         # the first match wins
    - { prefix: uploads/kids/, policy: kids }     # the object key starts with it
    - { uploader: "dating-*", policy: permissive }  # a glob on the uploader id (* and ?)
  default: photos

Nothing is published unless the whole document is valid; the error names the field and the value.
The detect step re-reads the parameter at most every ${MAX_POLICY_CACHE_SECONDS} s (1 s on the local stack), so the next
uploads after that are judged by the new policy, without a redeploy. Each decision records the name and
version of the policy it was routed to (\`moderation audit --policy <name>\`).

Examples:
  moderation policy push tenants.yaml --dry-run
  moderation policy push strict --stack my-moderation
  moderation policy show --history 5`;

export function registerLivePolicy(policy: Command): void {
  addTargetOptions(
    policy
      .command('push')
      .argument('<file|preset>', 'a policy set or policy file (YAML or JSON), or a preset: strict, standard, permissive')
      .description('validate a policy or policy set and publish it as the live policy: in force within a minute, no redeploy')
      .option('--dry-run', 'validate and show what would be published; publish nothing')
      .option('--json', 'print the outcome as JSON'),
  )
    .addHelpText('after', PUSH_HELP)
    .action(async (spec: string, flags: PushFlags) => {
      // Validated before any target is touched: an invalid document publishes nothing.
      const set = resolvePolicySet(spec);
      await withTarget(flags, (target) => push(target, set, flags));
    });

  addTargetOptions(
    policy
      .command('show')
      .description('the live policy: the policy set in the parameter, its routes and the versions of its policies')
      .option('--history [n]', 'also list the last n published versions (default 10)')
      .option('--json', 'print it as JSON'),
  ).action(async (flags: ShowFlags) => {
    const history = flags.history === undefined ? 0 : flags.history === true ? 10 : parseInteger(String(flags.history), '--history', { min: 1, max: 100 });
    await withTarget(flags, (target) => show(target, history, flags));
  });
}

async function push(target: Target, set: PolicySet, flags: PushFlags): Promise<void> {
  // A policy that needs an analysis (labels, faces, text) the target does not enable is refused: its detect step would refuse it.
  refuseAnalysesNotEnabled(Object.values(set.policies), target.names.analysisEnabled, target.description);
  const parameter = policyParameterOf(target);
  const tier = tierOf(target.names.policyParameterTier);
  const value = policySetParameterValue(set, tier); // too large for the tier: refused, nothing published
  const live = await currentValue(parameter.get());
  const unchanged = live?.value === value;
  let parameterVersion = live?.version;
  if (!flags.dryRun && !unchanged) {
    parameterVersion = (await parameter.put(value, target.names.policyParameterTier ? { tier: tierName(tier) } : {})).version;
  }
  const published = !flags.dryRun && !unchanged;
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({
        parameter: parameter.name,
        parameterVersion: parameterVersion ?? null,
        published,
        unchanged,
        dryRun: Boolean(flags.dryRun),
        bytes: Buffer.byteLength(value),
        limit: PARAMETER_VALUE_LIMITS[tier],
        ...policySetSummary(set),
      })}\n`,
    );
    return;
  }
  const what = `${set.kind === 'set' ? 'policy set' : 'policy'} ${set.version}`;
  const size = `${Buffer.byteLength(value)} of ${PARAMETER_VALUE_LIMITS[tier]} bytes`;
  const head = unchanged
    ? `already live: ${parameter.name} version ${parameterVersion} holds this ${what}; nothing published`
    : flags.dryRun
      ? `dry run: would publish ${what} to ${parameter.name} (${size}; live now: ${live ? `version ${live.version}` : 'nothing'}); nothing published`
      : `published ${what} to ${parameter.name}: parameter version ${parameterVersion} (${size}, ${target.description})`;
  const lines = [head, '', ...describeSet(set), ''];
  if (published) lines.push(`In force within ${MAX_POLICY_CACHE_SECONDS} s (the detect step re-reads it at most that often); each decision records the routed policy's name and version.`, '');
  process.stdout.write(lines.join('\n'));
}

async function show(target: Target, history: number, flags: ShowFlags): Promise<void> {
  const parameter = policyParameterOf(target);
  const live = await currentValue(parameter.get());
  if (!live) {
    const message = `${parameter.name} does not exist (${target.description}): publish a policy with \`moderation policy push\``;
    if (flags.json) process.stdout.write(`${JSON.stringify({ parameter: parameter.name, parameterVersion: null, message })}\n`);
    else process.stdout.write(`${message}\n`);
    return;
  }
  const set = parsePolicySet(live.value, `${parameter.name} (version ${live.version})`);
  const versions = history ? await parameter.history(history) : [];
  const listed = versions.map((v) => ({ parameterVersion: v.version, modifiedAt: v.modifiedAt?.toISOString(), modifiedBy: v.modifiedBy, ...versionOf(v.value) }));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ parameter: parameter.name, parameterVersion: live.version, modifiedAt: live.modifiedAt?.toISOString() ?? null, ...policySetSummary(set), ...(history ? { history: listed } : {}) })}\n`);
    return;
  }
  const lines = [
    `live: ${set.kind === 'set' ? 'policy set' : 'policy'} ${set.version} in ${parameter.name}, parameter version ${live.version}${live.modifiedAt ? ` (published ${live.modifiedAt.toISOString()})` : ''}, ${target.description}`,
    '',
    ...describeSet(set),
    '',
  ];
  if (history) {
    lines.push(
      renderTable(
        listed.map((v) => ({ version: v.parameterVersion, published: v.modifiedAt, by: v.modifiedBy, 'policy set': v.policySet ?? `invalid: ${v.problem}` })),
        ['version', 'published', 'by', 'policy set'],
      ),
      '',
    );
  }
  process.stdout.write(lines.join('\n'));
}

/** The routes, the default and the policies they pick, as a table, then the warnings. */
export function describeSet(set: PolicySet): string[] {
  const policyRow = (name: string) => {
    const policy = set.policies[name]!;
    return { policy: name, version: policy.version, MinConfidence: policy.minConfidence };
  };
  const rows: Row[] = [
    ...set.routes.map((route, i) => ({ route: `${i + 1}: ${describeRoute(route)}`, ...policyRow(route.policy) })),
    { route: set.routes.length ? 'default (no route matches)' : 'every upload', ...policyRow(set.defaultPolicy) },
  ];
  return [renderTable(rows, ['route', 'policy', 'version', 'MinConfidence']), ...set.warnings.map((warning) => `warning: ${escapeControl(warning)}`)];
}

/** A policy set as `--json` prints it: its version, routes, default and the version of each policy. */
export function policySetSummary(set: PolicySet) {
  return {
    policySet: {
      kind: set.kind,
      version: set.version,
      routes: set.routes.map((route) => ({ ...route, policyVersion: set.policies[route.policy]!.version })),
      default: set.defaultPolicy,
      policies: Object.fromEntries(Object.entries(set.policies).map(([name, p]) => [name, { version: p.version, minConfidence: p.minConfidence }])),
    },
    warnings: set.warnings,
  };
}

function versionOf(value: string): { policySet?: string; problem?: string } {
  try {
    return { policySet: parsePolicySet(value).version };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

async function currentValue(read: Promise<StoredPolicy>): Promise<StoredPolicy | undefined> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof PolicyParameterNotFoundError) return undefined;
    throw err;
  }
}

function tierOf(output: string | undefined): ParameterTier {
  return output?.toLowerCase() === 'advanced' ? 'advanced' : 'standard';
}

function tierName(tier: ParameterTier): ParameterTierName {
  return tier === 'advanced' ? 'Advanced' : 'Standard';
}
