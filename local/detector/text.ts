/**
 * DetectText at the local detector, the pure part: Tesseract's lines and words (tesseract.js, see
 * analyzers.ts) -> Rekognition's `TextDetections` (docs/local-runtime.md, "Text").
 *
 * As Rekognition answers: the LINEs first (Ids 0..n-1), then their WORDs, each with the Id of its
 * line as ParentId; a line's text is its kept words joined by single spaces; geometry in ratios of
 * the image. Tesseract gives axis-aligned boxes, so every Polygon is the box's four corners.
 */
import { clampBox, round, type BoundingBox } from './labels.ts';

export const TEXT_MODEL_VERSION = '3.0';
/** Rekognition detects up to 100 words in an image. */
export const MAX_WORDS = 100;
/**
 * Words Tesseract reads with less confidence than this are noise, not text: on photographs without
 * text it "reads" shadows and edges as `§`, `aE` or `|` at 0-60.
 */
export const NOISE_CONFIDENCE = 60;
/** One-character words need more (a lone "A" at 84 on a photograph of a space suit). */
export const NOISE_CONFIDENCE_SINGLE = 90;
/** WordFilter.MinConfidence when a WordFilter is given without one (Rekognition's documented default). */
export const DEFAULT_WORD_FILTER_CONFIDENCE = 80;

/** Pixel box, as Tesseract gives it. */
export interface PixelBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface OcrWord {
  text: string;
  /** 0-100. */
  confidence: number;
  bbox: PixelBox;
}

export interface OcrLine {
  words: OcrWord[];
  bbox: PixelBox;
}

export interface TextFilters {
  WordFilter?: { MinConfidence?: number; MinBoundingBoxHeight?: number; MinBoundingBoxWidth?: number };
  RegionsOfInterest?: { BoundingBox?: BoundingBox; Polygon?: { X: number; Y: number }[] }[];
}

export interface TextDetection {
  DetectedText: string;
  Type: 'LINE' | 'WORD';
  Id: number;
  ParentId?: number;
  Confidence: number;
  Geometry: { BoundingBox: BoundingBox; Polygon: { X: number; Y: number }[] };
}

export interface DetectTextOutput {
  TextDetections: TextDetection[];
  TextModelVersion: string;
}

/** Tesseract's lines of one image (width x height px) -> DetectText's answer. */
export function toDetectTextOutput(lines: OcrLine[], size: { width: number; height: number }, filters: TextFilters = {}): DetectTextOutput {
  const geometry = (box: PixelBox) => toGeometry(box, size);
  const wordFilter = filters.WordFilter;
  const minConfidence = wordFilter ? (wordFilter.MinConfidence ?? DEFAULT_WORD_FILTER_CONFIDENCE) : 0;
  const regions = (filters.RegionsOfInterest ?? []).map(regionBox).filter((box): box is BoundingBox => box !== undefined);

  const kept: { words: { text: string; confidence: number; geometry: TextDetection['Geometry'] }[] }[] = [];
  let wordCount = 0;
  for (const line of lines) {
    const words = [];
    for (const word of line.words) {
      const text = word.text.trim();
      if (!isText(text, word.confidence)) continue;
      if (word.confidence < minConfidence) continue;
      const g = geometry(word.bbox);
      if (wordFilter?.MinBoundingBoxHeight !== undefined && g.BoundingBox.Height < wordFilter.MinBoundingBoxHeight) continue;
      if (wordFilter?.MinBoundingBoxWidth !== undefined && g.BoundingBox.Width < wordFilter.MinBoundingBoxWidth) continue;
      if (regions.length && !regions.some((region) => halfInside(g.BoundingBox, region))) continue;
      if (wordCount >= MAX_WORDS) break;
      wordCount++;
      words.push({ text, confidence: word.confidence, geometry: g });
    }
    if (words.length) kept.push({ words });
  }

  const detections: TextDetection[] = [];
  kept.forEach((line, id) => {
    const box = union(line.words.map((w) => w.geometry.BoundingBox));
    detections.push({
      DetectedText: line.words.map((w) => w.text).join(' '),
      Type: 'LINE',
      Id: id,
      Confidence: round(line.words.reduce((sum, w) => sum + w.confidence, 0) / line.words.length),
      Geometry: { BoundingBox: box, Polygon: corners(box) },
    });
  });
  let nextId = kept.length;
  kept.forEach((line, parentId) => {
    for (const word of line.words) {
      detections.push({ DetectedText: word.text, Type: 'WORD', Id: nextId++, ParentId: parentId, Confidence: round(word.confidence), Geometry: word.geometry });
    }
  });
  return { TextDetections: detections, TextModelVersion: TEXT_MODEL_VERSION };
}

/** A word worth reporting: a letter or digit in it, and enough confidence not to be noise. */
function isText(text: string, confidence: number): boolean {
  const alphanumeric = text.match(/[\p{L}\p{N}]/gu)?.length ?? 0;
  if (!alphanumeric) return false;
  return confidence >= (alphanumeric === 1 ? NOISE_CONFIDENCE_SINGLE : NOISE_CONFIDENCE);
}

function toGeometry(box: PixelBox, size: { width: number; height: number }): TextDetection['Geometry'] {
  const bbox = clampBox({
    Left: box.x0 / size.width,
    Top: box.y0 / size.height,
    Width: (box.x1 - box.x0) / size.width,
    Height: (box.y1 - box.y0) / size.height,
  });
  return { BoundingBox: bbox, Polygon: corners(bbox) };
}

function corners(box: BoundingBox): { X: number; Y: number }[] {
  const right = round(box.Left + box.Width, 6);
  const bottom = round(box.Top + box.Height, 6);
  return [
    { X: box.Left, Y: box.Top },
    { X: right, Y: box.Top },
    { X: right, Y: bottom },
    { X: box.Left, Y: bottom },
  ];
}

function union(boxes: BoundingBox[]): BoundingBox {
  const left = Math.min(...boxes.map((b) => b.Left));
  const top = Math.min(...boxes.map((b) => b.Top));
  const right = Math.max(...boxes.map((b) => b.Left + b.Width));
  const bottom = Math.max(...boxes.map((b) => b.Top + b.Height));
  return clampBox({ Left: left, Top: top, Width: right - left, Height: bottom - top });
}

/** A region of interest as a box (a Polygon's bounding box). */
function regionBox(region: NonNullable<TextFilters['RegionsOfInterest']>[number]): BoundingBox | undefined {
  if (region.BoundingBox) return region.BoundingBox;
  const points = region.Polygon ?? [];
  if (!points.length) return undefined;
  const xs = points.map((p) => p.X);
  const ys = points.map((p) => p.Y);
  return { Left: Math.min(...xs), Top: Math.min(...ys), Width: Math.max(...xs) - Math.min(...xs), Height: Math.max(...ys) - Math.min(...ys) };
}

/** At least half of the word's box inside the region (Rekognition's rule for regions of interest). */
function halfInside(box: BoundingBox, region: BoundingBox): boolean {
  const width = Math.min(box.Left + box.Width, region.Left + region.Width) - Math.max(box.Left, region.Left);
  const height = Math.min(box.Top + box.Height, region.Top + region.Height) - Math.max(box.Top, region.Top);
  if (width <= 0 || height <= 0) return false;
  return (width * height) / Math.max(1e-12, box.Width * box.Height) >= 0.5;
}
