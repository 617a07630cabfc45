/**
 * The analysis part of a policy: rules over what DetectLabels, DetectText and DetectFaces find, beside
 * the moderation rules (policy.ts), and which of those analyses the policy therefore needs.
 *
 *   labels:                              # DetectLabels: by label name, a parent's or a category's
 *     Weapon: { review: 80, reject: 95 }
 *     Toy: allow                         # the most specific rule wins: the label's own, then a parent's, then a category's
 *   text:                                # DetectText: lines of text in the image
 *     words: { reject: [slur], review: [casino, "buy followers"] }   # whole words, case-insensitive
 *     patterns: { review: ['t\.me/\w+'] }                           # regular expressions (flags i and u)
 *     presets: { urls: review, phone-numbers: review, emails: review }
 *   faces:
 *     childSafety: { confidence: 50 }    # a face estimated under 18 + a nudity/swimwear label ≥ 50: REJECTED
 *   analysis: { labels: true, faces: true, text: true }   # run (and record) on every image, rules or not
 *   objectTags: { labels: 3, minConfidence: 80 }           # write the top labels as S3 object tags (tags.ts)
 *
 * Pure: validation (every problem names the field and the value, with "did you mean"), compilation, and
 * the matching of an analysis' results against the rules. No AWS client here.
 */
import { didYouMean } from './did-you-mean.ts';
import { labelPath } from './taxonomy.ts';
import { PolicyError } from './errors.ts';
import { MAX_LABEL_TAGS, type ObjectTagsSetting } from './tags.ts';
import { isPlainObject } from './plain-object.ts';

// ---------------------------------------------------------------------------------------------------
// The three analyses and what a policy or a deployment says about them

export type AnalysisName = 'labels' | 'faces' | 'text';
export const ANALYSIS_NAMES: readonly AnalysisName[] = ['labels', 'faces', 'text'];

/** Which analyses are enabled (a deployment: granted; a local stack: offered), or asked for (--analyze). */
export type AnalysisSet = Readonly<Record<AnalysisName, boolean>>;

export const NO_ANALYSIS: AnalysisSet = Object.freeze({ labels: false, faces: false, text: false });

/**
 * What a policy needs of each analysis. Faces are `conditional` for the child-safety rule alone:
 * DetectFaces runs only on an image whose moderation labels include nudity or swimwear at the rule's
 * confidence (docs/architecture.md, "Labels, text and faces").
 */
export interface AnalysisNeeds {
  labels: boolean;
  text: boolean;
  faces: 'always' | 'conditional' | 'never';
}

/** Parses `labels,faces,text` (a flag or an environment variable); `none` or '' is nothing. */
export function parseAnalysisList(value: string, what = '--analyze'): AnalysisSet {
  const set: Record<AnalysisName, boolean> = { labels: false, faces: false, text: false };
  const items = value
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter(Boolean);
  if (items.length === 1 && items[0] === 'none') return set;
  for (const item of items) {
    if (!(ANALYSIS_NAMES as readonly string[]).includes(item)) {
      const suggestion = didYouMean(item, ANALYSIS_NAMES);
      throw new AnalysisListError(
        `${what}: unknown analysis "${item}"${suggestion ? ` (did you mean "${suggestion}"?)` : ''}; expected a comma-separated list of ${ANALYSIS_NAMES.join(', ')} (or none)`,
      );
    }
    set[item as AnalysisName] = true;
  }
  return set;
}

/** The list form of an analysis set: `labels,text`, or `none`. */
export function formatAnalysisList(set: AnalysisSet): string {
  const names = ANALYSIS_NAMES.filter((name) => set[name]);
  return names.length ? names.join(',') : 'none';
}

/** The analyses a policy uses at all (faces when always or for the child-safety rule). */
export function analysesUsed(needs: AnalysisNeeds): AnalysisSet {
  return { labels: needs.labels, text: needs.text, faces: needs.faces !== 'never' };
}

/**
 * The analyses a policy needs that a deployment does not enable (empty: the policy can run there).
 * Used by the detect handler (which refuses such a policy), `moderation policy validate --stack`, the
 * construct at synth and a policy push.
 */
export function analysesNotEnabled(policy: { analysis: { needs: AnalysisNeeds } }, enabled: AnalysisSet): AnalysisName[] {
  const used = analysesUsed(policy.analysis.needs);
  return ANALYSIS_NAMES.filter((name) => used[name] && !enabled[name]);
}

/** One sentence for a policy that needs analyses a deployment does not enable. */
export function notEnabledMessage(policyName: string, missing: readonly AnalysisName[], where: string): string {
  const why = missing.map((name) => `${name} (${WHY_NEEDED[name]})`).join(', ');
  return `policy "${policyName}" needs ${why}, which ${where} does not enable; enable ${missing.length > 1 ? 'them' : 'it'} (the construct's analysis prop, or --analyze ${missing.join(',')} locally) or remove the rules that need ${missing.length > 1 ? 'them' : 'it'}`;
}

/**
 * Refuses (PolicyError, one line) policies that need an analysis a target does not enable: what
 * `moderation policy validate --stack` and `moderation policy push` call with the target's
 * `AnalysisEnabled` (a list; undefined: a target that does not say, which refuses nothing).
 */
export function refuseAnalysesNotEnabled(policies: readonly { name: string; analysis: { needs: AnalysisNeeds } }[], enabledList: string | undefined, where: string): void {
  if (enabledList === undefined) return;
  const enabled = parseAnalysisList(enabledList, 'AnalysisEnabled');
  const problems = policies.flatMap((policy) => {
    const missing = analysesNotEnabled(policy, enabled);
    return missing.length ? [notEnabledMessage(policy.name, missing, `${where} (analyses enabled: ${formatAnalysisList(enabled)})`)] : [];
  });
  if (problems.length) throw new PolicyError(problems.join('; '), problems);
}

const WHY_NEEDED: Record<AnalysisName, string> = {
  labels: 'DetectLabels: labels rules, analysis.labels or objectTags.labels',
  faces: 'DetectFaces: the child-safety rule or analysis.faces',
  text: 'DetectText: text rules or analysis.text',
};

export class AnalysisListError extends Error {
  override name = 'AnalysisListError';
}

// ---------------------------------------------------------------------------------------------------
// The document (what people write)

export type AnalysisAction = 'review' | 'reject';
export const ANALYSIS_ACTIONS: readonly AnalysisAction[] = ['review', 'reject'];

export type TextPreset = 'urls' | 'phone-numbers' | 'emails';
export const TEXT_PRESETS: readonly TextPreset[] = ['urls', 'phone-numbers', 'emails'];

export interface AnalysisDocument {
  labels?: Record<string, 'allow' | { reject?: number; review?: number }>;
  text?: {
    words?: Partial<Record<AnalysisAction, string[]>>;
    patterns?: Partial<Record<AnalysisAction, string[]>>;
    presets?: Partial<Record<TextPreset, AnalysisAction>>;
  };
  faces?: { childSafety?: false | { confidence?: number } };
  analysis?: Partial<Record<AnalysisName, boolean>>;
  objectTags?: { labels?: number; minConfidence?: number };
}

/** The top-level fields this module owns in a policy document. */
export const ANALYSIS_FIELDS = ['labels', 'text', 'faces', 'analysis', 'objectTags'] as const;

// ---------------------------------------------------------------------------------------------------
// The compiled rules (what the verdict uses)

export interface LabelRule {
  /** The name as written (its case), for the record. */
  name: string;
  action: 'allow' | 'threshold';
  reject?: number;
  review?: number;
}

export interface TextRule {
  /** `word`, `pattern` or `preset`, and what: the word, the pattern's source or the preset's name. */
  kind: 'word' | 'pattern' | 'preset';
  source: string;
  action: AnalysisAction;
}

export interface ChildSafetyRule {
  /** A moderation label in the nudity or swimwear categories at or above this confidence triggers the check. */
  confidence: number;
}

export interface AnalysisPolicy {
  /** By lower-cased name. */
  labels: Readonly<Record<string, LabelRule>>;
  text: readonly TextRule[];
  childSafety?: ChildSafetyRule;
  /** Run on every image and record, rules or not (the document's `analysis`). */
  always: AnalysisSet;
  /** What the apply step writes on the object besides the decision: the top labels (the document's `objectTags`). */
  objectTags?: ObjectTagsSetting;
  /** Derived from the rules and `always`: which analyses a detection must run. */
  needs: AnalysisNeeds;
}

/** Nothing: a policy without analysis rules (the version of such a policy does not change). */
export const EMPTY_ANALYSIS: AnalysisPolicy = Object.freeze({ labels: {}, text: [], always: NO_ANALYSIS, needs: { labels: false, text: false, faces: 'never' } }) as AnalysisPolicy;

/** The child-safety rule's confidence when the document says `childSafety: {}` or `true`. */
export const DEFAULT_CHILD_SAFETY_CONFIDENCE = 50;

/** An estimated age range starting below this is a possible minor. */
export const MINOR_AGE = 18;

/** The moderation categories (model 7, at any level below them) that count as nudity or swimwear for the child-safety rule. */
export const CHILD_SAFETY_CATEGORIES = ['Explicit', 'Non-Explicit Nudity', 'Obstructed Intimate Parts', 'Swimwear or Underwear'] as const;

/** A regular expression this long or longer is refused (a policy travels in an environment variable). */
const MAX_PATTERN_CHARS = 500;

// ---------------------------------------------------------------------------------------------------
// Validation and compilation

const THRESHOLD_FIELDS = ['reject', 'review'];
const TEXT_FIELDS = ['words', 'patterns', 'presets'];
const FACES_FIELDS = ['childSafety'];
const CHILD_SAFETY_FIELDS = ['confidence'];
const OBJECT_TAGS_FIELDS = ['labels', 'minConfidence'];

/** The label tags' confidence when the document does not say: labels this sure are worth a tag. */
export const DEFAULT_LABEL_TAG_CONFIDENCE = 80;

/** DetectLabels is asked for labels at this confidence or more (functions/analysis.ts): nothing sees a lower one. */
export const DETECT_LABELS_MIN_CONFIDENCE = 50;

/**
 * Validates and compiles the analysis sections of a policy document. Returns the compiled rules and
 * every problem found (each `field: problem, got value`), so they are reported with the moderation
 * rules' problems in one error.
 */
export function compileAnalysis(document: Record<string, unknown>): { analysis: AnalysisPolicy; issues: string[] } {
  const issues: string[] = [];
  const labels = compileLabels(document.labels, issues);
  const text = compileText(document.text, issues);
  const childSafety = compileFaces(document.faces, issues);
  const always = compileAlways(document.analysis, issues);
  const objectTags = compileObjectTags(document.objectTags, issues);
  const needs: AnalysisNeeds = {
    labels: always.labels || Object.values(labels).some((rule) => rule.action === 'threshold') || (objectTags?.labels ?? 0) > 0,
    text: always.text || text.length > 0,
    faces: always.faces ? 'always' : childSafety ? 'conditional' : 'never',
  };
  return { analysis: { labels, text, ...(childSafety ? { childSafety } : {}), always, ...(objectTags ? { objectTags } : {}), needs }, issues };
}

/**
 * What of the analysis part changes decisions, for the policy's version; undefined when there is
 * nothing. Not `objectTags`: label tags decide nothing, so changing them neither starts a new version
 * in the history nor stops repeats from reusing decisions (a repeat's tags are made under the
 * setting in force, from the earlier labels).
 */
export function analysisVersionPart(analysis: AnalysisPolicy): unknown {
  const labels = Object.fromEntries(
    Object.entries(analysis.labels).map(([key, rule]) => [key, rule.action === 'allow' ? 'allow' : { reject: rule.reject, review: rule.review }]),
  );
  const part = {
    ...(Object.keys(labels).length ? { labels } : {}),
    // Order does not change what matches: sorted, so reordering a block list keeps the version.
    ...(analysis.text.length ? { text: [...analysis.text].map((rule) => `${rule.action}:${rule.kind}:${rule.source}`).sort() } : {}),
    ...(analysis.childSafety ? { childSafety: analysis.childSafety } : {}),
    ...(ANALYSIS_NAMES.some((name) => analysis.always[name]) ? { always: analysis.always } : {}),
  };
  // Canonicalised (keys sorted, undefined thresholds dropped) with the rest of the policy by policyVersion.
  return Object.keys(part).length ? part : undefined;
}

function compileLabels(input: unknown, issues: string[]): Record<string, LabelRule> {
  const rules: Record<string, LabelRule> = {};
  if (input === undefined) return rules;
  if (!isPlainObject(input)) {
    issues.push(`labels: must be a mapping of label name to rule (e.g. Weapon: { review: 80 }), got ${describe(input)}`);
    return rules;
  }
  for (const [name, spec] of Object.entries(input)) {
    const field = `labels.${JSON.stringify(name)}`;
    const key = name.trim().toLowerCase();
    if (!key) {
      issues.push(`${field}: a label name must not be empty`);
      continue;
    }
    if (Object.hasOwn(rules, key)) {
      issues.push(`${field}: duplicates labels.${JSON.stringify(rules[key]!.name)} (label names are not case-sensitive)`);
      continue;
    }
    const rule = thresholdRule(spec, field, issues);
    if (rule) rules[key] = { name: name.trim(), ...rule };
  }
  return rules;
}

function thresholdRule(spec: unknown, field: string, issues: string[]): Omit<LabelRule, 'name'> | undefined {
  if (spec === 'allow') return { action: 'allow' };
  if (!isPlainObject(spec)) {
    issues.push(`${field}: must be "allow" or an object with reject and/or review, got ${describe(spec)}`);
    return undefined;
  }
  let ok = true;
  for (const key of Object.keys(spec)) {
    if (!THRESHOLD_FIELDS.includes(key)) {
      issues.push(unknownField(field, key, THRESHOLD_FIELDS));
      ok = false;
    }
  }
  if (!ok) return undefined;
  const rule: Omit<LabelRule, 'name'> = { action: 'threshold' };
  for (const key of ['reject', 'review'] as const) {
    const value = spec[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
      issues.push(`${field}.${key}: must be a number from 0 to 100, got ${describe(value)}`);
      ok = false;
    } else rule[key] = value;
  }
  if (!ok) return undefined;
  if (rule.reject === undefined && rule.review === undefined) {
    issues.push(`${field}: must set reject and/or review (or be "allow"), got ${describe(spec)}`);
    return undefined;
  }
  if (rule.reject !== undefined && rule.review !== undefined && rule.review > rule.reject) {
    issues.push(`${field}: review (${rule.review}) must not be above reject (${rule.reject})`);
    return undefined;
  }
  return rule;
}

function compileText(input: unknown, issues: string[]): TextRule[] {
  const rules: TextRule[] = [];
  if (input === undefined) return rules;
  if (!isPlainObject(input)) {
    issues.push(`text: must be a mapping with ${TEXT_FIELDS.join(', ')}, got ${describe(input)}`);
    return rules;
  }
  for (const key of Object.keys(input)) {
    if (!TEXT_FIELDS.includes(key)) issues.push(unknownField('text', key, TEXT_FIELDS));
  }
  for (const kind of ['words', 'patterns'] as const) {
    const section = input[kind];
    if (section === undefined) continue;
    const field = `text.${kind}`;
    if (!isPlainObject(section)) {
      issues.push(`${field}: must be a mapping of action (review, reject) to a list of ${kind}, got ${describe(section)}`);
      continue;
    }
    for (const [action, list] of Object.entries(section)) {
      if (!(ANALYSIS_ACTIONS as readonly string[]).includes(action)) {
        issues.push(unknownField(field, action, ANALYSIS_ACTIONS));
        continue;
      }
      const at = `${field}.${action}`;
      if (!Array.isArray(list)) {
        issues.push(`${at}: must be a list of ${kind}, got ${describe(list)}`);
        continue;
      }
      list.forEach((entry, index) => {
        if (typeof entry !== 'string' || !entry.trim()) {
          issues.push(`${at}[${index}]: must be a non-empty string, got ${describe(entry)}`);
          return;
        }
        if (kind === 'patterns') {
          const problem = patternProblem(entry);
          if (problem) {
            issues.push(`${at}[${index}]: not a valid regular expression ${JSON.stringify(entry)}: ${problem}`);
            return;
          }
          rules.push({ kind: 'pattern', source: entry, action: action as AnalysisAction });
        } else {
          rules.push({ kind: 'word', source: entry.trim().toLowerCase(), action: action as AnalysisAction });
        }
      });
    }
  }
  const presets = input.presets;
  if (presets !== undefined) {
    if (!isPlainObject(presets)) {
      issues.push(`text.presets: must be a mapping of preset (${TEXT_PRESETS.join(', ')}) to action (review, reject), got ${describe(presets)}`);
    } else {
      for (const [name, action] of Object.entries(presets)) {
        if (!(TEXT_PRESETS as readonly string[]).includes(name)) {
          const suggestion = didYouMean(name, TEXT_PRESETS);
          issues.push(`text.presets: unknown preset ${JSON.stringify(name)} (${suggestion ? `did you mean "${suggestion}"?` : `presets: ${TEXT_PRESETS.join(', ')}`})`);
          continue;
        }
        if (action !== 'review' && action !== 'reject') {
          const suggestion = typeof action === 'string' ? didYouMean(action, ANALYSIS_ACTIONS) : undefined;
          issues.push(`text.presets.${JSON.stringify(name)}: must be "review" or "reject", got ${describe(action)}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`);
          continue;
        }
        rules.push({ kind: 'preset', source: name, action });
      }
    }
  }
  return rules;
}

function patternProblem(source: string): string | undefined {
  if (source.length >= MAX_PATTERN_CHARS) return `longer than ${MAX_PATTERN_CHARS - 1} characters`;
  try {
    new RegExp(source, 'iu');
    return undefined;
  } catch (error) {
    // V8's message repeats the pattern ('Invalid regular expression: /x/iu: Unterminated group'): keep the reason.
    const message = error instanceof Error ? error.message : String(error);
    return message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '').toLowerCase();
  }
}

function compileFaces(input: unknown, issues: string[]): ChildSafetyRule | undefined {
  if (input === undefined) return undefined;
  if (!isPlainObject(input)) {
    issues.push(`faces: must be a mapping with ${FACES_FIELDS.join(', ')}, got ${describe(input)}`);
    return undefined;
  }
  for (const key of Object.keys(input)) {
    if (!FACES_FIELDS.includes(key)) issues.push(unknownField('faces', key, FACES_FIELDS));
  }
  const spec = input.childSafety;
  if (spec === undefined || spec === false) return undefined;
  if (spec === true) return { confidence: DEFAULT_CHILD_SAFETY_CONFIDENCE };
  if (!isPlainObject(spec)) {
    issues.push(`faces.childSafety: must be true, false or { confidence: 0-100 }, got ${describe(spec)}`);
    return undefined;
  }
  let ok = true;
  for (const key of Object.keys(spec)) {
    if (!CHILD_SAFETY_FIELDS.includes(key)) {
      issues.push(unknownField('faces.childSafety', key, CHILD_SAFETY_FIELDS));
      ok = false;
    }
  }
  const confidence = spec.confidence ?? DEFAULT_CHILD_SAFETY_CONFIDENCE;
  if (typeof confidence !== 'number' || !Number.isFinite(confidence) || confidence < 0 || confidence > 100) {
    issues.push(`faces.childSafety.confidence: must be a number from 0 to 100, got ${describe(confidence)}`);
    ok = false;
  }
  return ok ? { confidence: confidence as number } : undefined;
}

function compileAlways(input: unknown, issues: string[]): AnalysisSet {
  if (input === undefined) return NO_ANALYSIS;
  if (!isPlainObject(input)) {
    issues.push(`analysis: must be a mapping with ${ANALYSIS_NAMES.join(', ')} (true or false), got ${describe(input)}`);
    return NO_ANALYSIS;
  }
  const set: Record<AnalysisName, boolean> = { labels: false, faces: false, text: false };
  for (const [key, value] of Object.entries(input)) {
    if (!(ANALYSIS_NAMES as readonly string[]).includes(key)) {
      issues.push(unknownField('analysis', key, ANALYSIS_NAMES));
      continue;
    }
    if (typeof value !== 'boolean') {
      issues.push(`analysis.${key}: must be true or false, got ${describe(value)}`);
      continue;
    }
    set[key as AnalysisName] = value;
  }
  return set;
}

function compileObjectTags(input: unknown, issues: string[]): ObjectTagsSetting | undefined {
  if (input === undefined) return undefined;
  if (!isPlainObject(input)) {
    issues.push(`objectTags: must be a mapping with ${OBJECT_TAGS_FIELDS.join(', ')} (e.g. { labels: 3 }), got ${describe(input)}`);
    return undefined;
  }
  let ok = true;
  for (const key of Object.keys(input)) {
    if (!OBJECT_TAGS_FIELDS.includes(key)) {
      issues.push(unknownField('objectTags', key, OBJECT_TAGS_FIELDS));
      ok = false;
    }
  }
  const labels = input.labels ?? 0;
  if (typeof labels !== 'number' || !Number.isInteger(labels) || labels < 0 || labels > MAX_LABEL_TAGS) {
    issues.push(`objectTags.labels: must be a whole number from 0 to ${MAX_LABEL_TAGS} (S3 keeps 10 tags; the status and job tags take 2), got ${describe(labels)}`);
    ok = false;
  }
  const minConfidence = input.minConfidence ?? DEFAULT_LABEL_TAG_CONFIDENCE;
  if (typeof minConfidence !== 'number' || !Number.isFinite(minConfidence) || minConfidence < DETECT_LABELS_MIN_CONFIDENCE || minConfidence > 100) {
    issues.push(`objectTags.minConfidence: must be a number from ${DETECT_LABELS_MIN_CONFIDENCE} to 100 (DetectLabels is asked for labels at ${DETECT_LABELS_MIN_CONFIDENCE} or more), got ${describe(minConfidence)}`);
    ok = false;
  }
  // labels: 0 is the same as no objectTags (and keeps the policy's version).
  return ok && (labels as number) > 0 ? { labels: labels as number, minConfidence: minConfidence as number } : undefined;
}

function unknownField(at: string, key: string, expected: readonly string[]): string {
  const suggestion = didYouMean(key, expected);
  return `${at}: unknown field ${JSON.stringify(key)} (${suggestion ? `did you mean "${suggestion}"?` : `expected ${expected.join(', ')}`})`;
}

// ---------------------------------------------------------------------------------------------------
// Matching (pure): what the rules make of an analysis' results

/** A DetectLabels label, normalised (analysis.ts). */
export interface DetectedLabel {
  name: string;
  confidence: number;
  parents: string[];
  categories: string[];
}

/** A line of DetectText, normalised (analysis.ts). */
export interface DetectedLine {
  text: string;
  confidence: number;
}

/** One analysis rule that reached review or reject level: what the record says decided it. */
export interface AnalysisMatch {
  /** `label:<rule name>`, `text:<preset|word|pattern>` or `child-safety`. */
  rule: string;
  /** The label name or the matched text (shortened). */
  subject: string;
  confidence: number;
  action: AnalysisAction;
  threshold?: number;
  /** One sentence for the record's reason. */
  reason: string;
}

/**
 * The rule for a DetectLabels label: the label's own name, else its parents' (in the order
 * Rekognition lists them, the nearest first), else its categories'.
 */
export function labelRuleFor(analysis: AnalysisPolicy, label: DetectedLabel): LabelRule | undefined {
  for (const name of [label.name, ...label.parents, ...label.categories]) {
    const rule = analysis.labels[name.trim().toLowerCase()];
    if (rule) return rule;
  }
  return undefined;
}

/** The labels that reach their rule's review or reject threshold, strongest first. */
export function matchLabels(analysis: AnalysisPolicy, labels: readonly DetectedLabel[]): AnalysisMatch[] {
  const matches: AnalysisMatch[] = [];
  for (const label of labels) {
    const rule = labelRuleFor(analysis, label);
    if (!rule || rule.action === 'allow') continue;
    const via = rule.name.toLowerCase() === label.name.toLowerCase() ? '' : ` (via "${rule.name}")`;
    const base = { rule: `label:${rule.name}`, subject: label.name, confidence: label.confidence };
    const reached = (action: AnalysisAction, threshold: number): AnalysisMatch => ({
      ...base,
      action,
      threshold,
      reason: `label ${label.name}${via} ${label.confidence.toFixed(1)}% ≥ ${action} threshold ${threshold} of labels rule "${rule.name}"`,
    });
    if (rule.reject !== undefined && label.confidence >= rule.reject) matches.push(reached('reject', rule.reject));
    else if (rule.review !== undefined && label.confidence >= rule.review) matches.push(reached('review', rule.review));
  }
  return strongestFirst(matches);
}

/** The lines that match a text rule (one match per rule, the first line that matches), strongest first. */
export function matchText(analysis: AnalysisPolicy, lines: readonly DetectedLine[]): AnalysisMatch[] {
  const matches: AnalysisMatch[] = [];
  for (const rule of analysis.text) {
    const matcher = matcherFor(rule);
    for (const line of lines) {
      const found = matcher(line.text);
      if (found === undefined) continue;
      const what = rule.kind === 'preset' ? `preset ${rule.source}` : rule.kind === 'word' ? `word ${JSON.stringify(rule.source)}` : `pattern /${rule.source}/`;
      matches.push({
        rule: `text:${rule.kind === 'preset' ? rule.source : rule.kind}`,
        subject: shorten(found, 80),
        confidence: line.confidence,
        action: rule.action,
        reason: `text ${JSON.stringify(shorten(found, 80))} matches the ${what} (text rule: ${rule.action})`,
      });
      break;
    }
  }
  return strongestFirst(matches);
}

/** True for a moderation label in the nudity or swimwear categories (at any level below them). */
export function isChildSafetyLabel(label: { name: string; parentName?: string }): boolean {
  const path = labelPath(label.name, label.parentName);
  return path.some((name) => (CHILD_SAFETY_CATEGORIES as readonly string[]).includes(name)) && !path.includes('Kissing on the Lips');
}

/** The moderation labels that make the child-safety rule look for faces, most confident first. */
export function childSafetyTriggers<T extends { name: string; parentName?: string; confidence: number }>(analysis: AnalysisPolicy, labels: readonly T[]): T[] {
  const rule = analysis.childSafety;
  if (!rule) return [];
  return labels.filter((label) => label.confidence >= rule.confidence && isChildSafetyLabel(label)).sort((a, b) => b.confidence - a.confidence);
}

/**
 * The child-safety rule: a face whose estimated age range starts below 18 together with a nudity or
 * swimwear moderation label at the rule's confidence is a REJECT with the reason "possible minor".
 * Age estimation is not age verification: the rule errs towards rejecting (an appeal can restore it).
 */
export function matchChildSafety(
  analysis: AnalysisPolicy,
  moderationLabels: readonly { name: string; parentName?: string; confidence: number }[],
  faces: readonly { ageRange?: { low: number; high: number } }[],
): AnalysisMatch | undefined {
  const trigger = childSafetyTriggers(analysis, moderationLabels)[0];
  if (!trigger) return undefined;
  const minor = faces.filter((face) => face.ageRange && face.ageRange.low < MINOR_AGE).sort((a, b) => a.ageRange!.low - b.ageRange!.low)[0];
  if (!minor) return undefined;
  return {
    rule: 'child-safety',
    subject: trigger.name,
    confidence: trigger.confidence,
    action: 'reject',
    threshold: analysis.childSafety!.confidence,
    reason: `possible minor: a face estimated aged ${minor.ageRange!.low}-${minor.ageRange!.high} with ${trigger.name} ${trigger.confidence.toFixed(1)}% (child-safety rule: any face estimated under ${MINOR_AGE} with nudity or swimwear at ≥ ${analysis.childSafety!.confidence}; age estimation is not age verification)`,
  };
}

function strongestFirst(matches: AnalysisMatch[]): AnalysisMatch[] {
  return matches.sort((a, b) => (a.action === b.action ? 0 : a.action === 'reject' ? -1 : 1) || b.confidence - a.confidence || a.subject.localeCompare(b.subject));
}

// Text matchers -------------------------------------------------------------------------------------

type Matcher = (text: string) => string | undefined;

const matchers = new Map<string, Matcher>();

function matcherFor(rule: TextRule): Matcher {
  const key = `${rule.kind}\u0000${rule.source}`;
  let matcher = matchers.get(key);
  if (!matcher) {
    matcher = rule.kind === 'preset' ? PRESET_MATCHERS[rule.source as TextPreset] : regexMatcher(rule.kind === 'word' ? wordPattern(rule.source) : rule.source);
    matchers.set(key, matcher);
  }
  return matcher;
}

/** A whole word (or phrase), case-insensitive: not inside a longer word ("ass" does not match "class"). */
function wordPattern(word: string): string {
  const escaped = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+');
  return `(?<![\\p{L}\\p{N}_])${escaped}(?![\\p{L}\\p{N}_])`;
}

function regexMatcher(source: string): Matcher {
  const regex = new RegExp(source, 'iu');
  return (text) => regex.exec(text)?.[0];
}

const URL_PATTERN =
  /(?:\bhttps?:\/\/|\bwww\.)[^\s]+|\b[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|co|me|ly|gg|xyz|app|link|info|biz|ru|cn|tk|to|tv|site|online|shop|club|top|de|uk|fr)\b(?:\/[^\s]*)?/iu;
const EMAIL_PATTERN = /[a-z0-9._%+-]+\s?@\s?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/iu;
/** A run of digits with the separators phone numbers are written with. */
const PHONE_CANDIDATES = /\+?\(?\d[\d\s().-]{5,}\d/gu;

const PRESET_MATCHERS: Record<TextPreset, Matcher> = {
  urls: (text) => (EMAIL_PATTERN.test(text) ? URL_PATTERN.exec(text.replace(EMAIL_PATTERN, ' '))?.[0] : URL_PATTERN.exec(text)?.[0]),
  emails: (text) => EMAIL_PATTERN.exec(text)?.[0],
  // 7 to 15 digits (E.164 allows 15), written with spaces, dots, dashes or brackets; not a date or a price.
  'phone-numbers': (text) => {
    for (const candidate of text.matchAll(PHONE_CANDIDATES)) {
      const digits = candidate[0].replace(/\D/g, '').length;
      if (digits >= 7 && digits <= 15 && !/^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$/.test(candidate[0].trim())) return candidate[0].trim();
    }
    return undefined;
  },
};

// ---------------------------------------------------------------------------------------------------

function shorten(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? `a list ${JSON.stringify(value)}` : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
