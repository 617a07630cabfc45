/**
 * A policy set: named policies, and the routes that pick one of them for each upload (per tenant).
 * It is what lives in the live-policy parameter (docs/operating.md, "Live policy") and what
 * `moderation policy push` publishes. Pure: parsing, validation, routing and the stored form.
 *
 *   policies:
 *     kids: strict                              # a preset, by name
 *     photos:                                   # a full policy document (functions/lib/policy.ts)
 *       rules: { Explicit: { reject: 80, review: 50 }, Swimwear or Underwear: allow }
 *   routes:                                     # the first route that matches wins
 *     - { prefix: uploads/kids/, policy: kids }         # the object key starts with it
 *     - { uploader: "dating-*", policy: permissive }    # a glob on the uploader id (* and ?)
 *   default: photos                             # everything no route matches
 *
 * A route or the default may name a preset directly. A single plain policy (a document with
 * `rules`, or a preset name) is a set too: it is the default and there are no routes. A policy in a
 * set is named by its key (`kids`), and that name is what decision records carry (`policyName`).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { canonicalJson, contentVersion } from './canonical-json.ts';
import { didYouMean } from './did-you-mean.ts';
import { isPlainObject } from './plain-object.ts';
import { compilePolicy, PolicyError, PRESET_NAMES, presetPolicy, describeValue, type Policy, type PresetName } from './policy.ts';

/** A policy set that cannot be used. Like PolicyError, `issues` lists every problem, each naming the field and value. */
export class PolicySetError extends PolicyError {
  override name = 'PolicySetError';
}

export interface PolicyRoute {
  /** The object key starts with this (the whole key, uploads prefix included). */
  prefix?: string;
  /** A glob (`*` any run of characters, `?` one) on the uploader id the uploader pattern extracts. */
  uploader?: string;
  /** The name of the policy it picks: one of `policies`, or a preset. */
  policy: string;
}

export interface PolicySet {
  /** 'set': written with policies/routes/default; 'policy': one policy (a document or a preset) for every upload. */
  kind: 'set' | 'policy';
  /** Every policy a route or the default picks (presets named directly included), compiled, by name. */
  policies: Readonly<Record<string, Policy>>;
  routes: readonly PolicyRoute[];
  /** The name of the policy for uploads no route matches. */
  defaultPolicy: string;
  /** 'sha256:' + 16 hex chars over the policies' versions, the routes and the default. */
  version: string;
  warnings: string[];
  /** What was written (parsed), or the preset's name: what is stored (policySetParameterValue). */
  document: unknown;
}

export interface RoutedPolicy {
  policy: Policy;
  /** The route that matched (its index), absent for the default. */
  route?: number;
  /** In words: 'key prefix "uploads/kids/"', 'uploader "dating-*"' or 'default'. */
  via: string;
}

/** What the uploads are routed on: the object key and the uploader (Job has both). */
export interface Routable {
  key: string;
  uploader?: string;
}

const SET_FIELDS = ['policies', 'routes', 'default'];
const ROUTE_FIELDS = ['prefix', 'uploader', 'policy'];
/** A policy's own top-level fields: written at the top of a set, they belong under policies.<name>. */
const POLICY_FIELDS = ['name', 'rules', 'animation', 'formats', 'projectVersion', 'labels', 'text', 'faces', 'analysis'];
const POLICY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The most a parameter's value may hold, by SSM tier (bytes of UTF-8; SSM counts characters, so this
 * is never more lenient). Standard parameters are free; advanced ones cost per parameter and month.
 */
export const PARAMETER_VALUE_LIMITS = { standard: 4096, advanced: 8192 } as const;
export type ParameterTier = keyof typeof PARAMETER_VALUE_LIMITS;

/**
 * Parses a policy set, a plain policy (YAML or JSON) or a preset name, and validates it. Throws
 * PolicySetError (or PolicyError for a plain policy) listing every problem, prefixed with `origin`.
 */
export function parsePolicySet(text: string, origin = 'policy set'): PolicySet {
  const trimmed = text.trim();
  if (isPresetName(trimmed)) return compilePolicySet(trimmed.toLowerCase(), origin);
  let raw: unknown;
  try {
    raw = parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    const detail = (error instanceof Error ? error.message.split('\n')[0] : String(error)).replace(/:\s*$/, '');
    throw new PolicySetError(`${origin}: not valid YAML or JSON: ${detail}`, [`not valid YAML or JSON: ${detail}`]);
  }
  return compilePolicySet(raw, origin);
}

/**
 * What a setting names (as resolvePolicy reads it): a preset name; the document itself (a newline or
 * a leading '{'); else a file path. The document may be a policy set or a plain policy.
 */
export function resolvePolicySet(spec: string, readFile: (path: string) => string = (path) => readFileSync(path, 'utf8')): PolicySet {
  const setting = spec.trim();
  const usage = `a preset (${PRESET_NAMES.join(', ')}), a path to a YAML or JSON policy or policy set file, or the document itself`;
  if (!setting) throw new PolicySetError(`the policy setting is empty: expected ${usage}`);
  if (isPresetName(setting)) return compilePolicySet(setting.toLowerCase(), `preset ${setting}`);
  if (setting.includes('\n') || setting.startsWith('{')) return parsePolicySet(setting, 'inline policy');
  let text: string;
  try {
    text = readFile(setting);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') {
      const suggestion = didYouMean(setting, PRESET_NAMES);
      throw new PolicySetError(
        `policy file not found: ${setting} (expected ${usage}${suggestion ? `; did you mean the preset "${suggestion}"?` : ''})`,
      );
    }
    throw new PolicySetError(`cannot read policy file ${setting}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parsePolicySet(text, setting);
}

/** Validates an already-parsed document (a set, a plain policy, or a preset name as a string). */
export function compilePolicySet(raw: unknown, origin = 'policy set'): PolicySet {
  if (typeof raw === 'string' && isPresetName(raw.trim())) {
    const name = raw.trim().toLowerCase() as PresetName;
    return single(presetPolicy(name), name);
  }
  if (!isPlainObject(raw)) {
    const suggestion = typeof raw === 'string' ? didYouMean(raw, PRESET_NAMES) : undefined;
    const issue = `must be a policy (with "rules"), a policy set (with "policies", "routes", "default") or a preset (${PRESET_NAMES.join(', ')}), got ${describeValue(raw)}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
    throw new PolicySetError(`${origin}: ${issue}`, [issue]);
  }
  if (!looksLikeSet(raw)) return single(compilePolicy(raw, origin), raw);

  const issues: string[] = [];
  const warnings: string[] = [];
  for (const key of Object.keys(raw)) {
    if (SET_FIELDS.includes(key)) continue;
    const suggestion = didYouMean(key, SET_FIELDS);
    const policyField = POLICY_FIELDS.includes(key) ? ' (a policy\'s own fields go under policies.<name>)' : '';
    issues.push(`unknown field ${JSON.stringify(key)} (${suggestion ? `did you mean "${suggestion}"?` : `expected ${SET_FIELDS.join(', ')}`})${policyField}`);
  }

  // policies: name -> a preset name or a policy document.
  const named: Record<string, Policy> = {};
  const declared = raw.policies ?? {};
  if (!isPlainObject(declared)) {
    issues.push(`policies: must be a mapping of policy name to a preset name or a policy document, got ${describeValue(declared)}`);
  } else {
    for (const [name, spec] of Object.entries(declared)) {
      const field = `policies.${fieldName(name)}`;
      if (!POLICY_NAME.test(name)) {
        issues.push(`${field}: a policy name is letters, digits, ".", "_" and "-" (at most 64, starting with a letter or digit), got ${JSON.stringify(name)}`);
        continue;
      }
      if (typeof spec === 'string') {
        if (!isPresetName(spec.trim())) {
          const suggestion = didYouMean(spec, PRESET_NAMES);
          issues.push(`${field}: unknown preset ${JSON.stringify(spec)} (${suggestion ? `did you mean "${suggestion}"?` : `presets: ${PRESET_NAMES.join(', ')}`}; or write the policy document here)`);
          continue;
        }
        named[name] = { ...presetPolicy(spec.trim().toLowerCase()), name };
        continue;
      }
      try {
        const policy = compilePolicy(spec, field);
        const ownName = isPlainObject(spec) && typeof spec.name === 'string' ? spec.name.trim() : undefined;
        if (ownName && ownName !== name) warnings.push(`${field}.name: ${JSON.stringify(ownName)} is not used; the policy is named by its key, ${JSON.stringify(name)}`);
        warnings.push(...policy.warnings.map((warning) => nested(field, warning)));
        named[name] = { ...policy, name };
      } catch (error) {
        if (!(error instanceof PolicyError)) throw error;
        issues.push(...error.issues.map((issue) => nested(field, issue)));
      }
    }
  }

  const policies: Record<string, Policy> = { ...named };
  const declaredNames = isPlainObject(declared) ? Object.keys(declared) : [];
  const used = new Set<string>();
  /** A reference to a policy: a name under policies, else a preset (added to `policies` under its own name). */
  const reference = (field: string, value: unknown): string | undefined => {
    if (typeof value !== 'string' || !value.trim()) {
      issues.push(`${field}: must name a policy (one under policies, or a preset), got ${describeValue(value)}`);
      return undefined;
    }
    const name = value.trim();
    if (Object.hasOwn(named, name)) {
      used.add(name);
      return name;
    }
    if (declaredNames.includes(name)) return name; // declared but invalid: already reported
    if (isPresetName(name)) {
      const preset = name.toLowerCase();
      policies[preset] ??= presetPolicy(preset);
      return preset;
    }
    const candidates = [...declaredNames, ...PRESET_NAMES];
    const suggestion = didYouMean(name, candidates);
    issues.push(
      `${field}: unknown policy ${JSON.stringify(name)} (${suggestion ? `did you mean "${suggestion}"?` : `policies: ${declaredNames.length ? declaredNames.join(', ') : '(none)'}; presets: ${PRESET_NAMES.join(', ')}`})`,
    );
    return undefined;
  };

  const routes: PolicyRoute[] = [];
  const routesInput = raw.routes ?? [];
  if (!Array.isArray(routesInput)) {
    issues.push(`routes: must be a list of routes ({ prefix: ..., policy: ... } or { uploader: ..., policy: ... }), got ${describeValue(routesInput)}`);
  } else {
    const seen = new Map<string, number>();
    routesInput.forEach((input: unknown, index) => {
      const field = `routes[${index}]`;
      if (!isPlainObject(input)) {
        issues.push(`${field}: must be a mapping with prefix or uploader, and policy, got ${describeValue(input)}`);
        return;
      }
      const before = issues.length;
      for (const key of Object.keys(input)) {
        if (ROUTE_FIELDS.includes(key)) continue;
        const suggestion = didYouMean(key, ROUTE_FIELDS);
        issues.push(`${field}: unknown field ${JSON.stringify(key)} (${suggestion ? `did you mean "${suggestion}"?` : `expected ${ROUTE_FIELDS.join(', ')}`})`);
      }
      const hasPrefix = input.prefix !== undefined;
      const hasUploader = input.uploader !== undefined;
      if (hasPrefix === hasUploader) {
        if (issues.length === before) issues.push(`${field}: must have exactly one of prefix (a key prefix) and uploader (a glob on the uploader id), got ${describeValue(input)}`);
      } else if (hasPrefix && (typeof input.prefix !== 'string' || input.prefix === '')) {
        issues.push(`${field}.prefix: must be a non-empty key prefix such as "uploads/kids/", got ${describeValue(input.prefix)}`);
      } else if (hasUploader && (typeof input.uploader !== 'string' || !input.uploader.trim())) {
        issues.push(`${field}.uploader: must be a non-empty glob such as "dating-*", got ${describeValue(input.uploader)}`);
      } else if (hasUploader && (input.uploader as string).includes('/')) {
        issues.push(`${field}.uploader: an uploader id is one key segment and has no "/", got ${describeValue(input.uploader)} (use prefix for key paths)`);
      }
      const policy = input.policy === undefined ? (issues.push(`${field}.policy: required (the name of the policy this route picks)`), undefined) : reference(`${field}.policy`, input.policy);
      if (issues.length !== before || !policy) return;
      const route: PolicyRoute = hasPrefix ? { prefix: input.prefix as string, policy } : { uploader: (input.uploader as string).trim(), policy };
      const identity = hasPrefix ? `prefix ${route.prefix}` : `uploader ${route.uploader}`;
      const earlier = seen.get(identity);
      if (earlier !== undefined) warnings.push(`${field}: never matches, routes[${earlier}] has the same ${hasPrefix ? 'prefix' : 'uploader'} ${JSON.stringify(hasPrefix ? route.prefix : route.uploader)} and comes first`);
      else seen.set(identity, index);
      routes.push(route);
    });
  }

  let defaultPolicy: string | undefined;
  if (raw.default === undefined) {
    issues.push(`default: required (the policy for uploads no route matches: a name under policies, or a preset such as "standard")`);
  } else {
    defaultPolicy = reference('default', raw.default);
  }

  for (const name of Object.keys(named)) {
    if (!used.has(name)) warnings.push(`policies.${fieldName(name)}: no route and not the default: it is never used`);
  }
  if (issues.length > 0 || !defaultPolicy) {
    const summary = issues.length === 1 ? issues[0] : `${issues.length} problems: ${issues.join('; ')}`;
    throw new PolicySetError(`${origin}: ${summary}`, issues);
  }
  return { kind: 'set', policies, routes, defaultPolicy, version: setVersion(policies, routes, defaultPolicy), warnings, document: raw };
}

/** The policy for one upload: the first route that matches its key or uploader, else the default. */
export function routePolicy(set: PolicySet, upload: Routable): RoutedPolicy {
  for (const [index, route] of set.routes.entries()) {
    if (routeMatches(route, upload)) return { policy: set.policies[route.policy]!, route: index, via: describeRoute(route) };
  }
  return { policy: set.policies[set.defaultPolicy]!, via: 'default' };
}

function routeMatches(route: PolicyRoute, upload: Routable): boolean {
  if (route.prefix !== undefined) return upload.key.startsWith(route.prefix);
  return upload.uploader !== undefined && route.uploader !== undefined && globRegex(route.uploader).test(upload.uploader);
}

export function describeRoute(route: PolicyRoute): string {
  return route.prefix !== undefined ? `key prefix ${JSON.stringify(route.prefix)}` : `uploader ${JSON.stringify(route.uploader)}`;
}

/**
 * The parameter's value: a preset's name as is, anything else as compact JSON of what was written.
 * Throws PolicySetError when it does not fit the tier (nothing is published then).
 */
export function policySetParameterValue(set: PolicySet, tier: ParameterTier = 'standard'): string {
  const value = typeof set.document === 'string' ? set.document : JSON.stringify(set.document);
  const bytes = Buffer.byteLength(value, 'utf8');
  const limit = PARAMETER_VALUE_LIMITS[tier];
  if (bytes > limit) {
    const advice =
      tier === 'standard'
        ? 'name presets instead of copying them, let a parent category cover its children, or deploy with policyParameterTier: "advanced" (8 KB, billed per parameter and month)'
        : 'name presets instead of copying them, or let a parent category cover its children';
    const issue = `is ${bytes} bytes as compact JSON; a ${tier} SSM parameter holds at most ${limit}: ${advice}`;
    throw new PolicySetError(`the policy set ${issue}`, [issue]);
  }
  return value;
}

/** One policy for every upload, as a set. */
export function policySetOf(policy: Policy, document: unknown = policy.document): PolicySet {
  return single(policy, document);
}

/**
 * The set's default policy as a MODERATION_POLICY setting (a preset's name, or the document as
 * compact JSON named as in the set): what the functions fall back to without the parameter.
 */
export function defaultPolicySetting(set: PolicySet): string {
  const policy = set.policies[set.defaultPolicy]!;
  if (set.kind === 'policy' && typeof set.document === 'string') return set.document;
  if (isPresetName(policy.name) && canonicalJson(policy.document) === canonicalJson(presetPolicy(policy.name).document)) return policy.name;
  return JSON.stringify({ ...(policy.document as Record<string, unknown>), name: policy.name });
}

// ---------------------------------------------------------------------------------------------------

function single(policy: Policy, document: unknown): PolicySet {
  return { kind: 'policy', policies: { [policy.name]: policy }, routes: [], defaultPolicy: policy.name, version: policy.version, warnings: [...policy.warnings], document };
}

/** A document is a set when it says so (policies/routes), or has no rules and a field that is a typo of one. */
function looksLikeSet(raw: Record<string, unknown>): boolean {
  if ('policies' in raw || 'routes' in raw) return true;
  if ('rules' in raw) return false;
  return Object.keys(raw).some((key) => didYouMean(key, ['policies', 'routes']) !== undefined);
}

function setVersion(policies: Record<string, Policy>, routes: readonly PolicyRoute[], defaultPolicy: string): string {
  return contentVersion({
    default: defaultPolicy,
    routes,
    policies: Object.fromEntries(Object.entries(policies).map(([name, policy]) => [name, policy.version])),
  });
}

/** `policies.kids` + `rules."Explicit".rejcet: ...` → `policies.kids.rules."Explicit".rejcet: ...`. */
function nested(field: string, issue: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*(\.|:|\[)/.test(issue) ? `${field}.${issue}` : `${field}: ${issue}`;
}

function fieldName(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? name : JSON.stringify(name);
}

const globs = new Map<string, RegExp>();

function globRegex(glob: string): RegExp {
  let regex = globs.get(glob);
  if (!regex) {
    const source = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    regex = new RegExp(`^${source}$`, 's');
    if (globs.size > 1000) globs.clear();
    globs.set(glob, regex);
  }
  return regex;
}

function isPresetName(value: string): boolean {
  return (PRESET_NAMES as readonly string[]).includes(value.toLowerCase());
}

