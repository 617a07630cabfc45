/**
 * What DetectLabels, DetectFaces and DetectText found, reduced to a bounded summary for the decision
 * record (docs/architecture.md, "Labels, text and faces"). Pure: the responses come in as the AWS
 * documented shapes (every field optional, as the SDK types them); nothing here calls AWS.
 *
 * Bounds (so the DynamoDB item stays far below its 400 KB limit, and an audit row readable): at most
 * MAX_LABELS labels (most confident first) with at most MAX_PARENTS parents, MAX_CATEGORIES categories
 * and MAX_BOXES instance boxes each; MAX_FACES faces (largest first) with the two strongest emotions;
 * MAX_LINES lines of text of at most MAX_LINE_CHARS characters. Numbers are rounded. A summary of
 * the largest case is ~12 KB of JSON (test/unit/analysis.test.ts measures it).
 *
 * Faces: what is kept is what a moderation decision can use (estimated age range, the box, smile, eyes
 * open, sunglasses, the strongest emotions, pose and quality); never gender, landmarks or anything
 * that could identify a person (no face vectors: DetectFaces makes none; IndexFaces is not used).
 */
import type { AnalysisName, DetectedLabel, DetectedLine } from './analysis-policy.ts';

export const ANALYSIS_LIMITS = {
  MAX_LABELS: 25,
  MAX_PARENTS: 4,
  MAX_CATEGORIES: 3,
  MAX_BOXES: 3,
  MAX_FACES: 10,
  MAX_EMOTIONS: 2,
  MAX_LINES: 40,
  MAX_LINE_CHARS: 200,
  /** The labels (and their parents) written to the label index per image (functions/store/label-index.ts). */
  MAX_INDEXED_LABELS: 20,
} as const;

/** A box as a share of the image (0-1), as Rekognition gives it. */
export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface LabelSummary {
  name: string;
  confidence: number;
  parents?: string[];
  categories?: string[];
  /** How many instances (objects with a box) Rekognition found; the first MAX_BOXES boxes. */
  instances?: number;
  boxes?: Box[];
}

export interface FaceSummary {
  /** Estimated, not verified: see docs/architecture.md ("age estimation is not age verification"). */
  ageRange?: { low: number; high: number };
  box?: Box;
  confidence?: number;
  smile?: boolean;
  eyesOpen?: boolean;
  sunglasses?: boolean;
  /** The strongest emotions, e.g. [{ type: 'HAPPY', confidence: 97.1 }]. */
  emotions?: { type: string; confidence: number }[];
  pose?: { roll: number; yaw: number; pitch: number };
  quality?: { brightness: number; sharpness: number };
}

export interface TextSummary {
  /** LINE detections, in reading order (as Rekognition returns them), shortened. */
  lines: { text: string; confidence: number }[];
  /** Lines found in all (some may be left out of `lines`). */
  total: number;
}

/**
 * What the analyses found about one image, in the detection and the decision record. An analysis that
 * failed after its retries is `missing` with the reason; it never blocks the moderation decision.
 */
export interface AnalysisSummary {
  labels?: LabelSummary[];
  /** Labels found in all (some may be left out of `labels`). */
  labelCount?: number;
  labelModelVersion?: string;
  faces?: FaceSummary[];
  faceCount?: number;
  text?: TextSummary;
  textModelVersion?: string;
  /** Analyses asked for that failed; `reasons` says why, by analysis. */
  missing?: AnalysisName[];
  reasons?: Partial<Record<AnalysisName, string>>;
  /** An animation or multi-page file: the frame the analyses looked at (0-based). */
  frame?: number;
}

// ---------------------------------------------------------------------------------------------------
// The responses, as AWS documents them (every field optional, like the SDK's types)

interface RawBox {
  Width?: number;
  Height?: number;
  Left?: number;
  Top?: number;
}

export interface RawDetectLabels {
  Labels?: {
    Name?: string;
    Confidence?: number;
    Instances?: { BoundingBox?: RawBox; Confidence?: number }[];
    Parents?: { Name?: string }[];
    Aliases?: { Name?: string }[];
    Categories?: { Name?: string }[];
  }[];
  LabelModelVersion?: string;
}

export interface RawDetectFaces {
  FaceDetails?: {
    BoundingBox?: RawBox;
    AgeRange?: { Low?: number; High?: number };
    Smile?: { Value?: boolean; Confidence?: number };
    EyesOpen?: { Value?: boolean; Confidence?: number };
    Sunglasses?: { Value?: boolean; Confidence?: number };
    Emotions?: { Type?: string; Confidence?: number }[];
    Pose?: { Roll?: number; Yaw?: number; Pitch?: number };
    Quality?: { Brightness?: number; Sharpness?: number };
    Confidence?: number;
  }[];
}

export interface RawDetectText {
  TextDetections?: { DetectedText?: string; Type?: string; Confidence?: number; Id?: number; ParentId?: number }[];
  TextModelVersion?: string;
}

// ---------------------------------------------------------------------------------------------------
// Normalising (everything, for the rules) and summarising (bounded, for the record)

/** Every label, most confident first (what the label rules look at). */
export function normaliseDetectedLabels(response: RawDetectLabels): DetectedLabel[] {
  return (response.Labels ?? [])
    .filter((label) => typeof label.Name === 'string' && label.Name.trim())
    .map((label) => ({
      name: label.Name!.trim(),
      confidence: number(label.Confidence),
      parents: names(label.Parents),
      categories: names(label.Categories),
    }))
    .sort((a, b) => b.confidence - a.confidence || a.name.localeCompare(b.name));
}

export function summariseLabels(response: RawDetectLabels): Pick<AnalysisSummary, 'labels' | 'labelCount' | 'labelModelVersion'> {
  const { MAX_LABELS, MAX_PARENTS, MAX_CATEGORIES, MAX_BOXES } = ANALYSIS_LIMITS;
  const all = (response.Labels ?? []).filter((label) => typeof label.Name === 'string' && label.Name.trim());
  all.sort((a, b) => number(b.Confidence) - number(a.Confidence) || String(a.Name).localeCompare(String(b.Name)));
  const labels = all.slice(0, MAX_LABELS).map((label): LabelSummary => {
    const parents = names(label.Parents).slice(0, MAX_PARENTS);
    const categories = names(label.Categories).slice(0, MAX_CATEGORIES);
    const instances = (label.Instances ?? []).filter((instance) => instance.BoundingBox);
    return {
      name: shorten(label.Name!.trim(), 100),
      confidence: round(number(label.Confidence), 1),
      ...(parents.length ? { parents } : {}),
      ...(categories.length ? { categories } : {}),
      ...(instances.length ? { instances: instances.length, boxes: instances.slice(0, MAX_BOXES).map((instance) => box(instance.BoundingBox!)) } : {}),
    };
  });
  return { labels, labelCount: all.length, ...(response.LabelModelVersion ? { labelModelVersion: response.LabelModelVersion } : {}) };
}

/** Every face's estimated age range (what the child-safety rule looks at). */
export function normaliseFaces(response: RawDetectFaces): { ageRange?: { low: number; high: number } }[] {
  return (response.FaceDetails ?? []).map((face) => (face.AgeRange && typeof face.AgeRange.Low === 'number' ? { ageRange: { low: face.AgeRange.Low, high: number(face.AgeRange.High ?? face.AgeRange.Low) } } : {}));
}

export function summariseFaces(response: RawDetectFaces): Pick<AnalysisSummary, 'faces' | 'faceCount'> {
  const { MAX_FACES, MAX_EMOTIONS } = ANALYSIS_LIMITS;
  const all = [...(response.FaceDetails ?? [])];
  const area = (face: (typeof all)[number]) => number(face.BoundingBox?.Width) * number(face.BoundingBox?.Height);
  // The largest first; but every face under 18 is kept, whatever its size (the child-safety rule's evidence).
  all.sort((a, b) => Number(isMinor(b)) - Number(isMinor(a)) || area(b) - area(a));
  const faces = all.slice(0, MAX_FACES).map((face): FaceSummary => {
    const emotions = (face.Emotions ?? [])
      .filter((emotion) => emotion.Type)
      .sort((a, b) => number(b.Confidence) - number(a.Confidence))
      .slice(0, MAX_EMOTIONS)
      .map((emotion) => ({ type: String(emotion.Type), confidence: round(number(emotion.Confidence), 1) }));
    return {
      ...(face.AgeRange && typeof face.AgeRange.Low === 'number' ? { ageRange: { low: face.AgeRange.Low, high: number(face.AgeRange.High ?? face.AgeRange.Low) } } : {}),
      ...(face.BoundingBox ? { box: box(face.BoundingBox) } : {}),
      ...(face.Confidence !== undefined ? { confidence: round(number(face.Confidence), 1) } : {}),
      ...(face.Smile?.Value !== undefined ? { smile: face.Smile.Value } : {}),
      ...(face.EyesOpen?.Value !== undefined ? { eyesOpen: face.EyesOpen.Value } : {}),
      ...(face.Sunglasses?.Value !== undefined ? { sunglasses: face.Sunglasses.Value } : {}),
      ...(emotions.length ? { emotions } : {}),
      ...(face.Pose ? { pose: { roll: round(number(face.Pose.Roll), 1), yaw: round(number(face.Pose.Yaw), 1), pitch: round(number(face.Pose.Pitch), 1) } } : {}),
      ...(face.Quality ? { quality: { brightness: round(number(face.Quality.Brightness), 1), sharpness: round(number(face.Quality.Sharpness), 1) } } : {}),
    };
  });
  return { faces, faceCount: all.length };
}

/** Every LINE detection (what the text rules look at); WORD detections repeat the lines' words. */
export function normaliseText(response: RawDetectText): DetectedLine[] {
  const detections = response.TextDetections ?? [];
  const lines = detections.filter((d) => d.Type === 'LINE' && d.DetectedText);
  // A detector that only reports words: each word is its own line.
  const chosen = lines.length ? lines : detections.filter((d) => d.DetectedText);
  return chosen.map((d) => ({ text: String(d.DetectedText), confidence: round(number(d.Confidence), 1) }));
}

export function summariseText(response: RawDetectText): Pick<AnalysisSummary, 'text' | 'textModelVersion'> {
  const lines = normaliseText(response);
  return {
    text: { lines: lines.slice(0, ANALYSIS_LIMITS.MAX_LINES).map((line) => ({ text: shorten(line.text, ANALYSIS_LIMITS.MAX_LINE_CHARS), confidence: line.confidence })), total: lines.length },
    ...(response.TextModelVersion ? { textModelVersion: response.TextModelVersion } : {}),
  };
}

/**
 * The names a record is found by with `moderation audit --label`: its labels, most confident first,
 * then their parents, each once, at most MAX_INDEXED_LABELS.
 */
export function indexedLabelNames(summary: AnalysisSummary | undefined): string[] {
  const seen = new Map<string, string>();
  const add = (name: string) => {
    const key = labelIndexName(name);
    if (key && !seen.has(key)) seen.set(key, name);
  };
  for (const label of summary?.labels ?? []) add(label.name);
  for (const label of summary?.labels ?? []) for (const parent of label.parents ?? []) add(parent);
  return [...seen.values()].slice(0, ANALYSIS_LIMITS.MAX_INDEXED_LABELS);
}

/** How a label name is keyed in the label index: case and surrounding spaces do not matter. */
export function labelIndexName(name: string): string {
  return name.trim().replace(/\s+/g, ' ').toLowerCase();
}

// ---------------------------------------------------------------------------------------------------

function isMinor(face: { AgeRange?: { Low?: number } }): boolean {
  return typeof face.AgeRange?.Low === 'number' && face.AgeRange.Low < 18;
}

function names(list: { Name?: string }[] | undefined): string[] {
  return [...new Set((list ?? []).map((item) => item.Name?.trim()).filter((name): name is string => !!name))];
}

function box(raw: RawBox): Box {
  return { left: round(number(raw.Left), 3), top: round(number(raw.Top), 3), width: round(number(raw.Width), 3), height: round(number(raw.Height), 3) };
}

function number(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function shorten(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
