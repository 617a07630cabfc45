/**
 * DetectLabels at the local detector, the pure part: COCO-80 object detections (CenterNet in
 * @vladmandic/human, see analyzers.ts) -> Rekognition's `Labels` (docs/local-runtime.md, "Labels").
 *
 * The names, parents, aliases and categories come from coco-labels.json. As Rekognition does, a
 * detected label brings its ancestors as labels of their own (Car brings Vehicle and Transportation)
 * with the confidence of their strongest descendant and no instances; each label lists all its
 * ancestors in `Parents`.
 */
import { readFileSync } from 'node:fs';

/** What this stand-in answers in LabelModelVersion (Rekognition's current label model is 3.0). */
export const LABEL_MODEL_VERSION = '3.0';
/** Rekognition's default MinConfidence for DetectLabels. */
export const DEFAULT_LABELS_MIN_CONFIDENCE = 55;

export interface LabelEntry {
  /** Direct parents (label names); all ancestors are derived. */
  parents: string[];
  aliases: string[];
  categories: string[];
}

export interface LabelData {
  /** COCO class name (as the model names it) -> label name. */
  coco: Record<string, string>;
  labels: Record<string, LabelEntry>;
}

export const LABEL_DATA: LabelData = JSON.parse(readFileSync(new URL('./coco-labels.json', import.meta.url), 'utf8'));

/** A box in Rekognition's form: ratios of the image's width and height. */
export interface BoundingBox {
  Width: number;
  Height: number;
  Left: number;
  Top: number;
}

/** One object the model found: its COCO class, its score (0-1) and its box (ratios, 0-1). */
export interface ObjectDetection {
  label: string;
  score: number;
  box: BoundingBox;
}

export interface RekognitionLabel {
  Name: string;
  Confidence: number;
  Instances: { BoundingBox: BoundingBox; Confidence: number }[];
  Parents: { Name: string }[];
  Aliases: { Name: string }[];
  Categories: { Name: string }[];
}

export interface ImageQuality {
  Brightness: number;
  Sharpness: number;
  Contrast: number;
}

export interface DetectLabelsOutput {
  Labels: RekognitionLabel[];
  LabelModelVersion: string;
  ImageProperties?: { Quality: ImageQuality };
}

export interface LabelsOptions {
  /** Labels (and instances) under this confidence are left out. Default 55. */
  minConfidence?: number;
  /** At most this many labels, the most confident first. Default: all. */
  maxLabels?: number;
  /** Settings.GeneralLabels. */
  filters?: {
    LabelInclusionFilters?: string[];
    LabelExclusionFilters?: string[];
    LabelCategoryInclusionFilters?: string[];
    LabelCategoryExclusionFilters?: string[];
  };
}

/**
 * The model's score (0-1) as a Rekognition-like confidence. CenterNet's scores are low for good
 * detections (a clear cup 0.45, a person 0.6), so a raw probability would fall under Rekognition's
 * default MinConfidence of 55. Piecewise linear, knots chosen by hand (not fitted to a data set):
 * 0.2 -> 50, 0.3 -> 62, 0.45 -> 80, 0.6 -> 90, 1 -> 99.
 */
export const OBJECT_CALIBRATION: readonly (readonly [number, number])[] = [
  [0, 0],
  [0.2, 50],
  [0.3, 62],
  [0.45, 80],
  [0.6, 90],
  [1, 99],
];

export function objectConfidence(score: number): number {
  return round(interpolate(OBJECT_CALIBRATION, Math.min(1, Math.max(0, score))));
}

/** All ancestors of a label, nearest first, each once. Throws for a label that is not in the data. */
export function ancestorsOf(name: string, data: LabelData = LABEL_DATA): string[] {
  const out: string[] = [];
  const queue = [...entry(name, data).parents];
  while (queue.length) {
    const next = queue.shift()!;
    if (out.includes(next)) continue;
    out.push(next);
    queue.push(...entry(next, data).parents);
  }
  return out;
}

function entry(name: string, data: LabelData): LabelEntry {
  const found = data.labels[name];
  if (!found) throw new Error(`label ${name} is not in coco-labels.json`);
  return found;
}

/** Detections -> DetectLabels' Labels: mapped, with ancestors, filtered, sorted, cut to MaxLabels. */
export function toDetectLabelsOutput(detections: ObjectDetection[], options: LabelsOptions = {}, data: LabelData = LABEL_DATA): DetectLabelsOutput {
  const minConfidence = options.minConfidence ?? DEFAULT_LABELS_MIN_CONFIDENCE;
  const byName = new Map<string, RekognitionLabel>();
  const labelFor = (name: string): RekognitionLabel => {
    let label = byName.get(name);
    if (!label) {
      const { aliases, categories } = entry(name, data);
      label = {
        Name: name,
        Confidence: 0,
        Instances: [],
        Parents: ancestorsOf(name, data).map((parent) => ({ Name: parent })),
        Aliases: aliases.map((alias) => ({ Name: alias })),
        Categories: categories.map((category) => ({ Name: category })),
      };
      byName.set(name, label);
    }
    return label;
  };

  for (const detection of detections) {
    const name = data.coco[detection.label];
    if (!name) continue; // a class the data does not know (test/local/detector-labels.test.ts keeps this from happening)
    const confidence = objectConfidence(detection.score);
    if (confidence < minConfidence) continue;
    const label = labelFor(name);
    label.Instances.push({ BoundingBox: clampBox(detection.box), Confidence: confidence });
    label.Confidence = Math.max(label.Confidence, confidence);
    for (const parent of ancestorsOf(name, data)) {
      const ancestor = labelFor(parent);
      ancestor.Confidence = Math.max(ancestor.Confidence, confidence);
    }
  }

  let labels = [...byName.values()];
  for (const label of labels) label.Instances.sort((a, b) => b.Confidence - a.Confidence);
  labels = applyFilters(labels, options.filters);
  labels.sort((a, b) => b.Confidence - a.Confidence || a.Name.localeCompare(b.Name));
  if (options.maxLabels !== undefined) labels = labels.slice(0, options.maxLabels);
  return { Labels: labels, LabelModelVersion: LABEL_MODEL_VERSION };
}

/**
 * Settings.GeneralLabels: an inclusion filter keeps a label named in it or whose category is in it
 * (and, for names, the label's descendants: including Vehicle keeps Car); exclusion filters drop a
 * label by name or category. Names and categories compare case-insensitively.
 */
function applyFilters(labels: RekognitionLabel[], filters: LabelsOptions['filters']): RekognitionLabel[] {
  if (!filters) return labels;
  const set = (values?: string[]) => (values?.length ? new Set(values.map((v) => v.toLowerCase())) : undefined);
  const includeNames = set(filters.LabelInclusionFilters);
  const excludeNames = set(filters.LabelExclusionFilters);
  const includeCategories = set(filters.LabelCategoryInclusionFilters);
  const excludeCategories = set(filters.LabelCategoryExclusionFilters);
  return labels.filter((label) => {
    const names = [label.Name, ...label.Parents.map((p) => p.Name)].map((n) => n.toLowerCase());
    const categories = label.Categories.map((c) => c.Name.toLowerCase());
    if (includeNames || includeCategories) {
      const byName = includeNames ? names.some((n) => includeNames.has(n)) : false;
      const byCategory = includeCategories ? categories.some((c) => includeCategories.has(c)) : false;
      if (!byName && !byCategory) return false;
    }
    if (excludeNames?.has(label.Name.toLowerCase())) return false;
    if (excludeCategories && categories.some((c) => excludeCategories.has(c))) return false;
    return true;
  });
}

export function clampBox(box: BoundingBox): BoundingBox {
  const left = clamp01(box.Left);
  const top = clamp01(box.Top);
  return {
    Width: round(Math.min(1 - left, Math.max(0, box.Width + Math.min(0, box.Left))), 6),
    Height: round(Math.min(1 - top, Math.max(0, box.Height + Math.min(0, box.Top))), 6),
    Left: round(left, 6),
    Top: round(top, 6),
  };
}

function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
}

/** Linear interpolation between the knots (x ascending). */
export function interpolate(knots: readonly (readonly [number, number])[], x: number): number {
  if (x <= knots[0][0]) return knots[0][1];
  for (let i = 1; i < knots.length; i++) {
    const [x1, y1] = knots[i];
    if (x <= x1) {
      const [x0, y0] = knots[i - 1];
      return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
  }
  return knots[knots.length - 1][1];
}

export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
