/**
 * nsfwjs class probabilities -> Rekognition DetectModerationLabels output (moderation model 7).
 * Pure: no I/O, no model. docs/local-runtime.md ("The mapping", "Limits") explains the mapping, its calibration and limits.
 *
 * nsfwjs answers five classes (Drawing, Hentai, Neutral, Porn, Sexy) for the whole image. Four
 * signals are derived from them, each calibrated into a 0-100 confidence with a piecewise-linear
 * curve, and reported as a model-7 label together with its ancestors, as Rekognition returns them:
 *
 * | signal                      | from          | labels (deepest first)                                                                    |
 * | explicit                    | Porn + Hentai | Explicit Nudity (L2) > Explicit (L1)                                                      |
 * | non-explicit                | 2·√(Sexy·Porn)| Implied Nudity (L3) > Non-Explicit Nudity (L2) > Non-Explicit Nudity of Intimate parts and Kissing (L1) |
 * | swimwear                    | Sexy          | Female Swimwear or Underwear (L2) > Swimwear or Underwear (L1)                            |
 * | content type                | Drawing+Hentai| ContentTypes: Animated when Hentai > Drawing, else Illustrated                            |
 *
 * The model cannot see violence, weapons, drugs, alcohol, gambling, gestures or hate symbols:
 * those categories are never reported.
 */
import type { ClassScores } from './classifier.ts';

export const MODERATION_MODEL_VERSION = '7.0';
/** Rekognition's default when the request has no MinConfidence. */
export const DEFAULT_MIN_CONFIDENCE = 50;

/** One label in Rekognition's response shape. */
export interface RekognitionModerationLabel {
  Name: string;
  /** '' for a top-level (L1) label. */
  ParentName: string;
  TaxonomyLevel: 1 | 2 | 3;
  /** 0-100 */
  Confidence: number;
}

export interface RekognitionContentType {
  Name: 'Animated' | 'Illustrated';
  Confidence: number;
}

/** The DetectModerationLabels response body this detector produces. */
export interface DetectModerationLabelsOutput {
  ModerationLabels: RekognitionModerationLabel[];
  ModerationModelVersion: string;
  ContentTypes: RekognitionContentType[];
}

/** A calibration curve: (signal 0-1, confidence 0-100) knots, x ascending; linear in between. */
export type Curve = ReadonlyArray<readonly [signal: number, confidence: number]>;

/**
 * The calibration. MobileNetV2 puts Porn at 0.45-0.5 on some clothed group photos and is easily
 * excited by large smooth skin-coloured areas, so a raw probability is not a Rekognition-like
 * confidence: mid-range signals are pulled down (0.5 -> 25-45) and only a clear majority reaches
 * the 80s. The knots are round numbers chosen so that (a) Porn ~0.5 stays under 50, Rekognition's
 * default MinConfidence, (b) the project's synthetic samples land on the branches they are meant
 * to exercise (samples/README.md). They are not fitted to a labelled data set.
 */
export const CALIBRATION = {
  /** Porn + Hentai -> Explicit / Explicit Nudity. */
  explicit: [
    [0, 0],
    [0.5, 25],
    [0.7, 50],
    [0.85, 80],
    [1, 99],
  ],
  /** 2·√(Sexy·Porn) -> Non-Explicit Nudity / Implied Nudity. Highest when the model hesitates between Sexy and Porn. */
  nonExplicit: [
    [0, 0],
    [0.5, 30],
    [0.8, 60],
    [1, 85],
  ],
  /** Sexy -> Swimwear or Underwear / Female Swimwear or Underwear. */
  swimwear: [
    [0, 0],
    [0.5, 45],
    [0.8, 75],
    [1, 95],
  ],
  /** Drawing + Hentai -> ContentTypes (Animated / Illustrated). Uncalibrated: the probability itself. */
  contentType: [
    [0, 0],
    [1, 100],
  ],
} as const satisfies Record<string, Curve>;

/** Piecewise-linear interpolation on a curve; x is clamped to [0, 1]. */
export function calibrate(curve: Curve, x: number): number {
  const v = Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
  for (let i = 1; i < curve.length; i++) {
    const [x1, y1] = curve[i];
    if (v <= x1) {
      const [x0, y0] = curve[i - 1];
      return x1 === x0 ? y1 : y0 + ((v - x0) / (x1 - x0)) * (y1 - y0);
    }
  }
  return curve[curve.length - 1][1];
}

/** The four uncalibrated signals (each 0-1) derived from the class probabilities. */
export function signals(scores: ClassScores): { explicit: number; nonExplicit: number; swimwear: number; illustrated: number } {
  const p = (v: number) => (Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0);
  const porn = p(scores.Porn);
  const hentai = p(scores.Hentai);
  const sexy = p(scores.Sexy);
  const drawing = p(scores.Drawing);
  return {
    explicit: Math.min(1, porn + hentai),
    nonExplicit: Math.min(1, 2 * Math.sqrt(sexy * porn)),
    swimwear: sexy,
    illustrated: Math.min(1, drawing + hentai),
  };
}

/** A label path, deepest first, as it is reported. */
const PATHS = {
  explicit: [
    { Name: 'Explicit Nudity', ParentName: 'Explicit', TaxonomyLevel: 2 },
    { Name: 'Explicit', ParentName: '', TaxonomyLevel: 1 },
  ],
  nonExplicit: [
    { Name: 'Implied Nudity', ParentName: 'Non-Explicit Nudity', TaxonomyLevel: 3 },
    { Name: 'Non-Explicit Nudity', ParentName: 'Non-Explicit Nudity of Intimate parts and Kissing', TaxonomyLevel: 2 },
    { Name: 'Non-Explicit Nudity of Intimate parts and Kissing', ParentName: '', TaxonomyLevel: 1 },
  ],
  swimwear: [
    { Name: 'Female Swimwear or Underwear', ParentName: 'Swimwear or Underwear', TaxonomyLevel: 2 },
    { Name: 'Swimwear or Underwear', ParentName: '', TaxonomyLevel: 1 },
  ],
} as const satisfies Record<string, ReadonlyArray<Omit<RekognitionModerationLabel, 'Confidence'>>>;

export interface MappingOptions {
  /** Labels (and content types) below this confidence are left out, as Rekognition does. Default 50. */
  minConfidence?: number;
}

/**
 * Maps nsfwjs probabilities to a DetectModerationLabels response: every label path whose
 * calibrated confidence reaches MinConfidence, ancestors included (with the same confidence),
 * paths ordered by confidence, strongest first.
 */
export function toModerationLabels(scores: ClassScores, options: MappingOptions = {}): DetectModerationLabelsOutput {
  const min = options.minConfidence ?? DEFAULT_MIN_CONFIDENCE;
  const s = signals(scores);
  const branches = (['explicit', 'nonExplicit', 'swimwear'] as const)
    .map((branch) => ({ branch, confidence: calibrate(CALIBRATION[branch], s[branch]) }))
    .filter(({ confidence }) => confidence > 0 && confidence >= min)
    .sort((a, b) => b.confidence - a.confidence);

  const ModerationLabels = branches.flatMap(({ branch, confidence }) =>
    PATHS[branch].map((label) => ({ ...label, Confidence: confidence }) as RekognitionModerationLabel),
  );

  const ContentTypes: RekognitionContentType[] = [];
  const illustrated = calibrate(CALIBRATION.contentType, s.illustrated);
  if (illustrated > 0 && illustrated >= min) {
    ContentTypes.push({ Name: scores.Hentai > scores.Drawing ? 'Animated' : 'Illustrated', Confidence: illustrated });
  }

  return { ModerationLabels, ModerationModelVersion: MODERATION_MODEL_VERSION, ContentTypes };
}
