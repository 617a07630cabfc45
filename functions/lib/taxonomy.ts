/**
 * The Rekognition moderation taxonomy (model 7) as lookups: find a label, map the names older models
 * and older policies use onto model 7, walk a label's ancestry, and normalise a DetectModerationLabels
 * response into canonical model-7 labels. Pure: the data lives in taxonomy-data.ts.
 */
import type { ModerationLabel, TaxonomyLevel } from './types.ts';
import { MODEL_6_L1_TO_7, MODEL_6_L2_TO_7, MODEL_7_LABELS, PRE_RELEASE_SPELLINGS } from './taxonomy-data.ts';

/** The model the taxonomy (and therefore every canonical label name) belongs to. */
export const MODERATION_MODEL_VERSION = '7.0';

export interface TaxonomyNode {
  name: string;
  /** '' for a top-level (L1) category. */
  parentName: string;
  level: TaxonomyLevel;
}

/**
 * Lookups are case-insensitive and whitespace-tolerant: AWS's own pre-release material spells the same
 * label 'Kissing on the lips' and 'Kissing on the Lips', and model 6 capitalised 'Or'/'And'.
 */
const keyOf = (name: string): string => name.trim().replace(/\s+/g, ' ').toLowerCase();

const NODES = new Map<string, TaxonomyNode>(
  MODEL_7_LABELS.map((entry) => [keyOf(entry.name), { name: entry.name, parentName: entry.parentName, level: entry.level }]),
);
const SPELLINGS = new Map<string, string>(Object.entries(PRE_RELEASE_SPELLINGS).map(([from, to]) => [keyOf(from), to]));
const V6_L1 = new Map<string, readonly string[]>(Object.entries(MODEL_6_L1_TO_7).map(([from, to]) => [keyOf(from), to]));
const V6_L2 = new Map<string, readonly string[]>(Object.entries(MODEL_6_L2_TO_7).map(([from, to]) => [keyOf(from), to.v7]));

/** Every model-7 label, parents before children. */
export function allCategories(): TaxonomyNode[] {
  return [...NODES.values()].map((node) => ({ ...node }));
}

/** Every name a caller may use for a category: model 7, its pre-release spellings, and model 6.1. */
export function knownCategoryNames(): string[] {
  return [
    ...MODEL_7_LABELS.map((entry) => entry.name),
    ...Object.keys(PRE_RELEASE_SPELLINGS),
    ...Object.keys(MODEL_6_L1_TO_7),
    ...Object.keys(MODEL_6_L2_TO_7),
  ];
}

/** A model-7 label by name (any letter case, or a known pre-release spelling); undefined otherwise. */
export function findCategory(name: string): TaxonomyNode | undefined {
  const key = keyOf(name);
  const node = NODES.get(key) ?? NODES.get(keyOf(SPELLINGS.get(key) ?? ''));
  return node ? { ...node } : undefined;
}

/** True for a name that only model 6/6.1 used (i.e. not also a model-7 name). */
export function isLegacyName(name: string): boolean {
  return findCategory(name) === undefined && resolveCategoryName(name).length > 0;
}

/**
 * The canonical model-7 names a category name stands for: a model-7 name stands for itself; a model-6.1
 * name for every model-7 label AWS maps it onto (several when a category was split, e.g. 'Suggestive');
 * an unknown name for nothing. Model 7 is tried first because 'Explicit Nudity' is a name in both
 * (a 6.1 L1, a 7 L2) and a model-7 response or policy means the model-7 one.
 */
export function resolveCategoryName(name: string): string[] {
  const node = findCategory(name);
  if (node) return [node.name];
  const key = keyOf(name);
  const mapped = V6_L1.get(key) ?? V6_L2.get(key);
  return mapped ? [...mapped] : [];
}

/**
 * The canonical path from the top-level category down to the label, e.g.
 * ['Explicit', 'Explicit Nudity', 'Exposed Female Nipple']. A model-6.1 name that maps onto exactly one
 * model-7 label gets that label's path; an unknown (or ambiguous) name is its own one-element path, so
 * callers can still look it up by name.
 */
export function ancestry(name: string): string[] {
  const node = nodeFor(name);
  return node ? pathOf(node) : [name];
}

/**
 * A detected label's path, for labels this taxonomy may not know: a known label's ancestry; an unknown
 * label under a known parent (a newer model's sub-label) is placed below that parent's path, so policy
 * rules for the parent still reach it; otherwise just the name.
 */
export function labelPath(name: string, parentName?: string): string[] {
  const node = nodeFor(name);
  if (node) return pathOf(node);
  const parent = parentName ? nodeFor(parentName) : undefined;
  return parent ? [...pathOf(parent), name] : [name];
}

/** The model-7 node a name stands for: itself, or the single label a model-6.1 name maps onto. */
function nodeFor(name: string): TaxonomyNode | undefined {
  const node = findCategory(name);
  if (node) return node;
  const mapped = resolveCategoryName(name);
  return mapped.length === 1 ? findCategory(mapped[0]) : undefined;
}

function pathOf(node: TaxonomyNode): string[] {
  const path: string[] = [];
  // Bounded by the depth of the taxonomy; the guard only protects against a corrupted data file.
  for (let current: TaxonomyNode | undefined = node; current && path.length < 3; ) {
    path.unshift(current.name);
    current = current.parentName ? NODES.get(keyOf(current.parentName)) : undefined;
  }
  return path;
}

/**
 * The top-level (L1) category of a label, or undefined for an unknown name or a model-6.1 name that
 * spans several (e.g. 'Suggestive').
 */
export function topLevelCategory(name: string): string | undefined {
  const tops = new Set(resolveCategoryName(name).map((canonical) => ancestry(canonical)[0]));
  return tops.size === 1 ? [...tops][0] : undefined;
}

/** A label as DetectModerationLabels returns it (the SDK's ModerationLabel, every field optional). */
export interface RawModerationLabel {
  Name?: string;
  ParentName?: string;
  TaxonomyLevel?: number;
  Confidence?: number;
}

/**
 * Canonical model-7 labels from a DetectModerationLabels response, whichever model produced it.
 *
 * - Model-7 names (any case, pre-release spellings) get their parent and level from the taxonomy.
 * - Model-6.1 names become every model-7 label they map onto, with the same confidence: when a 6.1
 *   category was split we cannot tell which half was meant, so both are kept and the policy decides
 *   (over-flagging fails closed; dropping one could approve what should have been held).
 * - A top-level 'Explicit Nudity' (ParentName '') is the 6.1 category, i.e. model-7 'Explicit'.
 * - Unknown labels (a newer model) are kept as they came, so nothing the detector saw is lost.
 * Duplicates (a name reached twice) keep the highest confidence; the result is sorted by confidence
 * descending, then shallower level first, then name, so it is deterministic.
 */
export function normaliseLabels(raw: readonly RawModerationLabel[]): ModerationLabel[] {
  const byName = new Map<string, ModerationLabel>();
  const keep = (label: ModerationLabel): void => {
    const existing = byName.get(label.name);
    if (!existing || label.confidence > existing.confidence) byName.set(label.name, label);
  };

  for (const item of raw) {
    const name = item.Name?.trim();
    if (!name) continue;
    const confidence = typeof item.Confidence === 'number' && Number.isFinite(item.Confidence) ? item.Confidence : 0;

    let node = findCategory(name);
    // A name model 7 places below the top level, reported at the top level (by a 6.1 response, which
    // has no TaxonomyLevel), is the 6.1 category of that name: 'Explicit Nudity' -> 'Explicit'.
    const reportedTop = item.ParentName === '' && (item.TaxonomyLevel === undefined || item.TaxonomyLevel === 1);
    if (node && node.level !== 1 && reportedTop && V6_L1.has(keyOf(name))) node = undefined;

    const targets = node ? [node.name] : resolveLegacy(name);
    if (targets.length > 0) {
      for (const target of targets) {
        const found = findCategory(target);
        if (found) keep({ name: found.name, parentName: found.parentName, level: found.level, confidence });
      }
      continue;
    }

    const parentName = item.ParentName?.trim() ?? '';
    keep({ name, parentName, level: levelOf(item.TaxonomyLevel, parentName), confidence });
  }

  return [...byName.values()].sort(
    (a, b) => b.confidence - a.confidence || a.level - b.level || a.name.localeCompare(b.name),
  );
}

/** Model-6.1 mapping only (L1 before L2), for names model 7 does not know or that a response marks as 6.1. */
function resolveLegacy(name: string): readonly string[] {
  const key = keyOf(name);
  return V6_L1.get(key) ?? V6_L2.get(key) ?? [];
}

/** The level Rekognition reported, else one below a known parent, else top level. */
function levelOf(reported: number | undefined, parentName: string): TaxonomyLevel {
  if (reported === 1 || reported === 2 || reported === 3) return reported;
  if (!parentName) return 1;
  const parent = findCategory(parentName);
  return parent ? (Math.min(parent.level + 1, 3) as TaxonomyLevel) : 2;
}
