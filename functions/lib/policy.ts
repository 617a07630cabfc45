/**
 * The moderation policy: per taxonomy category (any level) a `reject` and/or `review` confidence
 * threshold, or `allow`. Written as YAML or JSON, validated with zod, versioned by a content hash so a
 * decision record can say exactly which rules decided it.
 *
 *   name: standard
 *   default: allow            # labels no rule covers; 'allow' or {review, reject}
 *   rules:
 *     Explicit: { reject: 80, review: 50 }
 *     Swimwear or Underwear: allow
 *     Suggestive: { review: 70 }   # model-6.1 names are mapped onto every model-7 category they became
 *   animation: { maxFrames: 10 }   # DetectModerationLabels calls per file at most (frames.ts)
 *   formats: { svg: review }       # review (default), unusable or raster
 *   projectVersion: arn:aws:rekognition:...:project/p/version/v/1   # a custom moderation adapter (adapter.ts)
 *   labels: { Weapon: { review: 80 } }          # DetectLabels, DetectText and DetectFaces rules and what
 *   text: { presets: { urls: review } }         # they need: analysis-policy.ts
 *   faces: { childSafety: { confidence: 50 } }
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { canonicalJson, contentVersion } from './canonical-json.ts';
import { didYouMean } from './did-you-mean.ts';
import { PolicyError } from './errors.ts';
import { isPlainObject } from './plain-object.ts';
import { ProjectVersionSchema } from './adapter.ts';
import { PRESET_NAMES, PRESETS, type PresetName } from './policy-presets.ts';
import { allCategories, findCategory, knownCategoryNames, labelPath, resolveCategoryName } from './taxonomy.ts';
import { ANALYSIS_FIELDS, analysisVersionPart, compileAnalysis, EMPTY_ANALYSIS, type AnalysisDocument, type AnalysisPolicy } from './analysis-policy.ts';

export { PolicyError } from './errors.ts';
export { PRESETS, PRESET_NAMES, type PresetName } from './policy-presets.ts';

// ---------------------------------------------------------------------------------------------------
// The document (what people write)

export interface ThresholdSpec {
  reject?: number;
  review?: number;
}

export type RuleSpec = 'allow' | ThresholdSpec;

/** What to do with an SVG: hold it for a human (review), refuse it (unusable), or trust the rasteriser (raster). */
export type SvgMode = 'review' | 'unusable' | 'raster';
export const SVG_MODES = ['review', 'unusable', 'raster'] as const satisfies readonly SvgMode[];

/** Frames of an animation judged per file (one DetectModerationLabels call each), by default and at most. */
export const DEFAULT_ANIMATION_MAX_FRAMES = 10;
export const MAX_ANIMATION_MAX_FRAMES = 100;

export interface PolicySettings {
  animation: { maxFrames: number };
  formats: { svg: SvgMode };
}

export const DEFAULT_SETTINGS: PolicySettings = {
  animation: { maxFrames: DEFAULT_ANIMATION_MAX_FRAMES },
  formats: { svg: 'review' },
};

export interface PolicyDocument extends AnalysisDocument {
  name?: string;
  default?: RuleSpec;
  rules: Record<string, RuleSpec>;
  animation?: Partial<PolicySettings['animation']>;
  formats?: Partial<PolicySettings['formats']>;
  /** A Rekognition custom moderation adapter (project version ARN), sent as ProjectVersion (adapter.ts). */
  projectVersion?: string;
}

// ---------------------------------------------------------------------------------------------------
// The compiled policy (what the verdict uses)

/** A rule that never flags. `reject`/`review` are declared (never set) so callers can read them unnarrowed. */
export interface AllowRule {
  /** The canonical model-7 category, or '*' for the default. */
  category: string;
  action: 'allow';
  reject?: undefined;
  review?: undefined;
}

/** A rule with thresholds: at least one of them is set, and review <= reject when both are. */
export interface ThresholdRule {
  /** The canonical model-7 category, or '*' for the default. */
  category: string;
  /** Always set on rules this module builds; optional so hand-written fixtures need not repeat it. */
  action?: 'threshold';
  reject?: number;
  review?: number;
}

export type PolicyRule = AllowRule | ThresholdRule;

export interface Policy {
  name: string;
  /** 'sha256:' + 16 hex chars of the canonical rules: the same meaning always has the same version. */
  version: string;
  /** By canonical model-7 category name, in taxonomy order. */
  rules: Readonly<Record<string, PolicyRule>>;
  /** What applies to a label no rule covers (category '*'). */
  default: PolicyRule;
  /** The MinConfidence to send to DetectModerationLabels: below it no rule could flag anything. */
  minConfidence: number;
  /** Animations: at most this many frames judged per file; a file they cannot cover is held for review. */
  animation: PolicySettings['animation'];
  /** Formats that render differently in a browser than in the rasteriser (SVG). */
  formats: PolicySettings['formats'];
  /** The custom moderation adapter every DetectModerationLabels call names (ProjectVersion), if any (adapter.ts). */
  projectVersion?: string;
  /**
   * Rules over DetectLabels, DetectText and DetectFaces (labels, text, faces.childSafety), what to run
   * on every image (the document's `analysis`), and what the policy therefore needs (analysis-policy.ts).
   */
  analysis: AnalysisPolicy;
  /** The document as it was written (parsed), for display and audit. */
  document: unknown;
  /** Things that are valid but worth telling the author (model-6.1 names and how they were read). */
  warnings: string[];
}

/** Rekognition's own default MinConfidence; used when no rule can flag anything. */
const REKOGNITION_DEFAULT_MIN_CONFIDENCE = 50;

// ---------------------------------------------------------------------------------------------------
// Validation. Every message names the field and the offending value.

const THRESHOLD_MESSAGE = (input: unknown): string => `must be a number from 0 to 100, got ${describe(input)}`;

const ThresholdSchema = z
  .number({ error: (issue) => THRESHOLD_MESSAGE(issue.input) })
  .min(0, { error: (issue) => THRESHOLD_MESSAGE(issue.input) })
  .max(100, { error: (issue) => THRESHOLD_MESSAGE(issue.input) });

const ThresholdRuleSchema = z
  .strictObject({ reject: ThresholdSchema.optional(), review: ThresholdSchema.optional() })
  .superRefine((rule, ctx) => {
    if (rule.reject === undefined && rule.review === undefined) {
      ctx.addIssue({ code: 'custom', message: `must set reject and/or review (or be "allow"), got ${describe(rule)}` });
    } else if (rule.reject !== undefined && rule.review !== undefined && rule.review > rule.reject) {
      ctx.addIssue({ code: 'custom', message: `review (${rule.review}) must not be above reject (${rule.reject})` });
    }
  });

// A union of 'allow' and the object: the issue formatter reports whichever branch matches the value's type.
const RuleSchema = z.union([z.literal('allow'), ThresholdRuleSchema]);

const MAX_FRAMES_MESSAGE = (input: unknown): string => `must be a whole number from 1 to ${MAX_ANIMATION_MAX_FRAMES}, got ${describe(input)}`;

/** A settings section must be a mapping; other problems (unknown fields) keep zod's issue for formatIssue. */
const sectionError =
  (fields: string) =>
  (issue: { code?: string; input?: unknown }): string | undefined =>
    issue.code === 'invalid_type' ? `must be a mapping with ${fields}, got ${describe(issue.input)}` : undefined;

const AnimationSchema = z.strictObject(
  {
    maxFrames: z
      .number({ error: (issue) => MAX_FRAMES_MESSAGE(issue.input) })
      .int({ error: (issue) => MAX_FRAMES_MESSAGE(issue.input) })
      .min(1, { error: (issue) => MAX_FRAMES_MESSAGE(issue.input) })
      .max(MAX_ANIMATION_MAX_FRAMES, { error: (issue) => MAX_FRAMES_MESSAGE(issue.input) })
      .optional(),
  },
  { error: sectionError('maxFrames') },
);

const FormatsSchema = z.strictObject(
  {
    svg: z
      .enum(SVG_MODES, {
        error: (issue) => {
          const suggestion = typeof issue.input === 'string' ? didYouMean(issue.input, SVG_MODES) : undefined;
          return `must be one of ${SVG_MODES.map((m) => `"${m}"`).join(', ')}, got ${describe(issue.input)}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
        },
      })
      .optional(),
  },
  { error: sectionError('svg') },
);

const PolicyDocumentSchema = z.strictObject({
  name: z
    .string({ error: (issue) => `must be a string, got ${describe(issue.input)}` })
    .trim()
    .min(1, { error: 'must not be empty' })
    .optional(),
  default: RuleSchema.optional(),
  animation: AnimationSchema.optional(),
  formats: FormatsSchema.optional(),
  projectVersion: ProjectVersionSchema.optional(),
  // Validated by analysis-policy.ts (compileAnalysis), which reports its own problems.
  labels: z.unknown().optional(),
  text: z.unknown().optional(),
  faces: z.unknown().optional(),
  analysis: z.unknown().optional(),
  objectTags: z.unknown().optional(),
  rules: z.record(z.string(), RuleSchema, {
    error: (issue) =>
      issue.input === undefined
        ? 'required (a mapping of category name to rule)'
        : `must be a mapping of category name to rule, got ${describe(issue.input)}`,
  }),
});

const TOP_LEVEL_FIELDS = ['name', 'default', 'rules', 'animation', 'formats', 'projectVersion', ...ANALYSIS_FIELDS];
const RULE_FIELDS = ['reject', 'review'];
/** The fields of each top-level settings section, for "did you mean". */
const SECTION_FIELDS: Record<string, string[]> = { animation: ['maxFrames'], formats: ['svg'] };

/**
 * Parses a policy written as YAML or JSON (JSON is YAML, so one parser reads both) and validates it.
 * Throws PolicyError listing every problem, prefixed with `origin` (a file name, 'inline policy', ...).
 */
export function parsePolicy(text: string, origin?: string): Policy {
  let raw: unknown;
  try {
    // uniqueKeys: a category written twice is a mistake, not "last one wins".
    raw = parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    // The yaml library's first line says what and where ('... at line 3, column 1:'); the rest is a code frame.
    const detail = (error instanceof Error ? error.message.split('\n')[0] : String(error)).replace(/:\s*$/, '');
    throw new PolicyError(`${origin ?? 'policy'}: not valid YAML or JSON: ${detail}`, [`not valid YAML or JSON: ${detail}`]);
  }
  return compilePolicy(raw, origin);
}

/** Validates an already-parsed document (e.g. a preset, or JSON from elsewhere) and compiles it. */
export function compilePolicy(raw: unknown, origin?: string): Policy {
  const fail = (issues: string[]): never => {
    const summary = issues.length === 1 ? issues[0] : `${issues.length} problems: ${issues.join('; ')}`;
    throw new PolicyError(`${origin ?? 'policy'}: ${summary}`, issues);
  };

  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    fail([`must be a mapping with "rules" (and optionally "name", "default", "animation", "formats"), got ${describe(raw)}`]);
  }

  const parsed = PolicyDocumentSchema.safeParse(raw);
  const issues = parsed.success ? [] : withoutEchoes(parsed.error.issues).flatMap((issue) => formatIssue(issue, [], raw));
  const rulesInput = (raw as { rules?: unknown }).rules;
  const compiled = isPlainObject(rulesInput) ? compileRules(rulesInput) : undefined;
  if (compiled) issues.push(...compiled.issues);
  const analysis = compileAnalysis(raw as Record<string, unknown>);
  issues.push(...analysis.issues);
  if (issues.length > 0 || !parsed.success || !compiled) return fail(issues);

  const document = parsed.data as PolicyDocument;
  const defaultRule = toRule('*', document.default ?? 'allow');
  const rules: Record<string, PolicyRule> = {};
  for (const [category, spec] of compiled.rules) rules[category] = toRule(category, spec);
  const settings: PolicySettings = {
    animation: { maxFrames: document.animation?.maxFrames ?? DEFAULT_SETTINGS.animation.maxFrames },
    formats: { svg: document.formats?.svg ?? DEFAULT_SETTINGS.formats.svg },
  };

  return {
    name: document.name ?? 'custom',
    version: policyVersion(rules, defaultRule, settings, document.projectVersion, analysis.analysis),
    rules,
    default: defaultRule,
    minConfidence: minConfidenceFor([...Object.values(rules), defaultRule], analysis.analysis),
    animation: settings.animation,
    formats: settings.formats,
    analysis: analysis.analysis,
    ...(document.projectVersion ? { projectVersion: document.projectVersion } : {}),
    document: raw,
    warnings: compiled.warnings,
  };
}

/** A built-in policy by name: strict, standard or permissive. */
export function presetPolicy(name: PresetName | (string & {})): Policy {
  const document = Object.hasOwn(PRESETS, name) ? PRESETS[name as PresetName] : undefined;
  if (!document) {
    throw new PolicyError(`unknown policy preset "${String(name)}" (presets: ${PRESET_NAMES.join(', ')})`);
  }
  return compilePolicy(document, `preset ${name}`);
}

/**
 * The policy a setting names: a preset name; else the policy itself (JSON or YAML, recognised by a
 * newline or a leading '{', which is how it arrives in an environment variable); else a file path.
 */
export function resolvePolicy(spec: string, readFile: (path: string) => string = readUtf8): Policy {
  const setting = spec.trim();
  const usage = `a preset (${PRESET_NAMES.join(', ')}), a path to a YAML or JSON policy file, or the policy itself`;
  if (!setting) throw new PolicyError(`the policy setting is empty: expected ${usage}`);

  const preset = setting.toLowerCase() as PresetName;
  if (PRESET_NAMES.includes(preset)) return presetPolicy(preset);
  if (setting.includes('\n') || setting.startsWith('{')) return parsePolicy(setting, 'inline policy');

  let text: string;
  try {
    text = readFile(setting);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ENOENT') {
      throw new PolicyError(
        `policy file not found: ${setting} (expected ${usage}; an inline policy must start with '{' or span several lines)`,
      );
    }
    const detail = error instanceof Error ? error.message : String(error);
    throw new PolicyError(`cannot read policy file ${setting}: ${detail}`);
  }
  return parsePolicy(text, setting);
}

/**
 * The rule that applies to a label: the most specific rule on its path (the label itself, then its
 * parent, then the top-level category); else the default. `parentName` places a label this taxonomy
 * does not know (a newer model's) under its known parent, so it inherits the parent's rule.
 */
export function ruleFor(policy: Policy, labelName: string, parentName?: string): PolicyRule {
  const path = labelPath(labelName, parentName);
  for (let i = path.length - 1; i >= 0; i--) {
    // hasOwn: a label called 'constructor' must not find Object.prototype's.
    if (Object.hasOwn(policy.rules, path[i])) return policy.rules[path[i]];
  }
  return policy.default;
}

/** True when the rule can never flag a label. */
export function isAllow(rule: PolicyRule): rule is AllowRule {
  return rule.action === 'allow';
}

// ---------------------------------------------------------------------------------------------------
// Compilation

interface CompiledRules {
  /** Canonical category -> spec, in taxonomy order. */
  rules: Map<string, RuleSpec>;
  issues: string[];
  warnings: string[];
}

/**
 * Maps every rule key onto canonical model-7 categories. A model-7 name (any case, or a pre-release
 * spelling) is itself; a model-6.1 name expands to every category it became. A model-7 name written
 * explicitly beats an expansion; two expansions that disagree on one category are an error, because
 * which one the author meant is unknowable.
 */
function compileRules(rules: Record<string, unknown>): CompiledRules {
  const issues: string[] = [];
  const warnings: string[] = [];
  const explicit = new Map<string, { spec: unknown; key: string }>();
  const expanded = new Map<string, { spec: unknown; key: string }>();
  const suggestions = knownCategoryNames();

  for (const [key, spec] of Object.entries(rules)) {
    const field = `rules.${JSON.stringify(key)}`;
    const node = findCategory(key);
    if (node) {
      const earlier = explicit.get(node.name);
      if (earlier) {
        issues.push(`${field}: duplicates rules.${JSON.stringify(earlier.key)} (both name the category "${node.name}")`);
        continue;
      }
      explicit.set(node.name, { spec, key });
      if (node.name === 'Explicit Nudity') {
        warnings.push(
          `${field}: read as the model-7 category Explicit > Explicit Nudity; model 6.1's top-level "Explicit Nudity" is model 7's "Explicit"`,
        );
      } else if (node.name.toLowerCase() !== key.trim().toLowerCase()) {
        warnings.push(`${field}: pre-release spelling, read as "${node.name}"`);
      }
      continue;
    }

    const targets = resolveCategoryName(key);
    if (targets.length === 0) {
      const suggestion = didYouMean(key, suggestions);
      issues.push(`${field}: unknown category ${JSON.stringify(key)}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`);
      continue;
    }
    warnings.push(`${field}: model-6.1 name, applied to ${targets.map((t) => `"${t}"`).join(' and ')}`);
    for (const target of targets) {
      const earlier = expanded.get(target);
      if (earlier && canonicalJson(earlier.spec) !== canonicalJson(spec)) {
        issues.push(
          `${field}: conflicts with rules.${JSON.stringify(earlier.key)} on "${target}" (both are model-6.1 names for it); write a rule for "${target}" itself`,
        );
        continue;
      }
      expanded.set(target, { spec, key });
    }
  }

  const merged = new Map<string, RuleSpec>();
  for (const { name } of allCategories()) {
    const chosen = explicit.get(name) ?? expanded.get(name);
    if (chosen) merged.set(name, chosen.spec as RuleSpec);
  }
  return { rules: merged, issues, warnings };
}

function toRule(category: string, spec: RuleSpec): PolicyRule {
  if (spec === 'allow') return { category, action: 'allow' };
  const rule: ThresholdRule = { category, action: 'threshold' };
  if (spec.reject !== undefined) rule.reject = spec.reject;
  if (spec.review !== undefined) rule.review = spec.review;
  return rule;
}

/**
 * The content hash of what the policy does: canonical categories, rules and default, with keys sorted.
 * The name is left out on purpose: renaming a policy, reformatting it, reordering it, or writing a
 * model-6.1 name instead of the model-7 names it stands for does not change any decision.
 */
function policyVersion(
  rules: Record<string, PolicyRule>,
  defaultRule: PolicyRule,
  settings: PolicySettings,
  projectVersion?: string,
  analysis: AnalysisPolicy = EMPTY_ANALYSIS,
): string {
  const specOf = (rule: PolicyRule): unknown => (isAllow(rule) ? 'allow' : { reject: rule.reject, review: rule.review });
  // Settings count only when they differ from the defaults: a policy that leaves them out keeps the
  // version it had before they existed, and writing a default explicitly changes no decision.
  const nonDefault = canonicalJson(settings) === canonicalJson(DEFAULT_SETTINGS) ? {} : { settings };
  const analysisPart = analysisVersionPart(analysis);
  return contentVersion({
    default: specOf(defaultRule),
    rules: Object.fromEntries(Object.entries(rules).map(([category, rule]) => [category, specOf(rule)])),
    ...nonDefault,
    // Another adapter is another model: it changes decisions (absent, the version is what it was before adapters).
    ...(projectVersion ? { projectVersion } : {}),
    // Likewise the analysis rules (labels, text, child safety, what runs on every image): only when there are some.
    ...(analysisPart === undefined ? {} : { analysis: analysisPart }),
  });
}

/**
 * The lowest confidence at which any rule acts (its review threshold, else its reject threshold).
 * Asking Rekognition for less only returns labels no rule could flag; asking for more would hide some.
 */
function minConfidenceFor(rules: PolicyRule[], analysis: AnalysisPolicy = EMPTY_ANALYSIS): number {
  const thresholds = rules.flatMap((rule) => (isAllow(rule) ? [] : [rule.review ?? rule.reject ?? 100]));
  // The child-safety rule looks at nudity and swimwear labels from its own confidence up.
  if (analysis.childSafety) thresholds.push(analysis.childSafety.confidence);
  if (thresholds.length === 0) return REKOGNITION_DEFAULT_MIN_CONFIDENCE;
  return Math.min(100, Math.max(0, Math.min(...thresholds)));
}

// ---------------------------------------------------------------------------------------------------
// Issue formatting

/** One zod issue as 'field: problem, got value' lines. Unions report the branch the value was meant for. */
function formatIssue(issue: z.core.$ZodIssue, base: PropertyKey[], root: unknown): string[] {
  const path = [...base, ...issue.path];
  const at = (message: string): string => (path.length > 0 ? `${formatPath(path)}: ${message}` : message);

  if (issue.code === 'invalid_union') {
    const value = valueAt(root, path);
    if (isPlainObject(value)) {
      // Branch 0 is 'allow', branch 1 the thresholds object: an object was meant as thresholds.
      return withoutEchoes(issue.errors[1] ?? []).flatMap((inner) => formatIssue(inner, path, root));
    }
    return [at(`must be "allow" or an object with reject and/or review, got ${describe(value)}`)];
  }
  if (issue.code === 'unrecognized_keys') {
    const section = path.length === 1 && Object.hasOwn(SECTION_FIELDS, String(path[0])) ? SECTION_FIELDS[String(path[0])] : undefined;
    const expected = path.length === 0 ? TOP_LEVEL_FIELDS : (section ?? RULE_FIELDS);
    return issue.keys.map((key) => {
      const suggestion = didYouMean(key, expected);
      const hint = suggestion ? `did you mean "${suggestion}"?` : `expected ${expected.join(', ')}`;
      return at(`unknown field ${JSON.stringify(key)} (${hint})`);
    });
  }
  return [at(issue.message)];
}

/**
 * An unknown field (a typo such as 'rejet') also leaves its object without a threshold; the typo is
 * reported alone, since "must set reject and/or review" at the same place would only repeat it.
 */
function withoutEchoes(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const typoAt = new Set(issues.filter((issue) => issue.code === 'unrecognized_keys').map((issue) => issue.path.join('\u0000')));
  return issues.filter((issue) => !(issue.code === 'custom' && typoAt.has(issue.path.join('\u0000'))));
}

/** rules."Violence".reject — category keys are always quoted since they contain spaces and '&'. */
function formatPath(path: PropertyKey[]): string {
  return path
    .map((segment, index) => {
      const text = String(segment);
      const quote = (index === 1 && path[0] === 'rules') || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(text);
      return quote ? JSON.stringify(text) : text;
    })
    .join('.');
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let value: unknown = root;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

/** A value as it should appear after 'got': strings quoted, short, never '[object Object]'. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  const text = typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? `a list ${safeJson(value)}` : safeJson(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** describe() for other validators (policy sets): the same wording for the same values. */
export { describe as describeValue };

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function readUtf8(path: string): string {
  return readFileSync(path, 'utf8');
}
