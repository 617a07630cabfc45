/**
 * The built-in policies. Each is an ordinary policy document (what a user would write in YAML), so it
 * goes through the same validation and gets a content-hash version like any other.
 *
 * How to read a rule: a label at or above `reject` confidence rejects the upload, at or above `review`
 * holds it for review; `allow` never flags. The most specific rule on a label's path wins, so a child
 * can relax (or tighten) its parent. Thresholds are Rekognition confidences (0-100).
 */
import type { PolicyDocument } from './policy.ts';

export type PresetName = 'strict' | 'standard' | 'permissive';

export const PRESET_NAMES: readonly PresetName[] = ['strict', 'standard', 'permissive'];

/**
 * The child-safety rule in every preset (analysis-policy.ts): a face estimated under 18 together with a
 * nudity or swimwear moderation label at this confidence is REJECTED ("possible minor"), never sent to
 * the LLM, never approved automatically. DetectFaces runs only on such images. 50 is Rekognition's own
 * default confidence and strict's swimwear review level; permissive asks Rekognition for nothing below 60.
 */
const CHILD_SAFETY = { strict: 50, standard: 50, permissive: 60 } as const;

/**
 * strict: a children's platform. Every category is at least reviewed and most are rejected at modest
 * confidence; unknown labels (a newer model's categories) are reviewed rather than allowed.
 * The lowest review threshold (30) is what Rekognition is asked for, so weak signals still arrive.
 */
const strict: PolicyDocument = {
  name: 'strict',
  default: { review: 50 },
  rules: {
    Explicit: { reject: 50, review: 30 },
    'Non-Explicit Nudity of Intimate parts and Kissing': { reject: 60, review: 40 },
    // Swimwear is held at 50 and rejected when Rekognition is sure of it.
    'Swimwear or Underwear': { reject: 80, review: 50 },
    Violence: { reject: 60, review: 40 },
    'Visually Disturbing': { reject: 60, review: 40 },
    'Drugs & Tobacco': { reject: 70, review: 50 },
    Alcohol: { reject: 70, review: 50 },
    Gambling: { reject: 70, review: 50 },
    'Hate Symbols': { reject: 50, review: 30 },
    'Rude Gestures': { reject: 70, review: 50 },
  },
  faces: { childSafety: { confidence: CHILD_SAFETY.strict } },
};

/**
 * standard: a general-audience platform. Explicit content is rejected when likely and reviewed when
 * possible; suggestive-but-legal content (swimwear, kissing, bare chests, smoking, alcohol, gambling,
 * rude gestures) is allowed; graphic violence and hate symbols are rejected when likely; weapons and
 * disturbing imagery are reviewed. Unknown labels are allowed (default).
 */
const standard: PolicyDocument = {
  name: 'standard',
  default: 'allow',
  rules: {
    Explicit: { reject: 80, review: 50 },
    'Non-Explicit Nudity of Intimate parts and Kissing': { review: 60 },
    'Kissing on the Lips': 'allow',
    // A bare male chest is ordinary beach content where swimwear is allowed.
    'Exposed Male Nipple': 'allow',
    'Swimwear or Underwear': 'allow',
    // The L1 rule only matters for a bare 'Violence' label; the L2 rules below are more specific.
    Violence: { review: 80 },
    'Graphic Violence': { reject: 85, review: 60 },
    Weapons: { review: 80 },
    'Visually Disturbing': { review: 70 },
    'Hate Symbols': { reject: 80, review: 50 },
    'Drugs & Tobacco': { review: 70 },
    // Tobacco smoking is legal and common in everyday photos; drug products and use are still reviewed.
    Smoking: 'allow',
    Alcohol: 'allow',
    Gambling: 'allow',
    'Rude Gestures': 'allow',
  },
  faces: { childSafety: { confidence: CHILD_SAFETY.standard } },
};

/**
 * permissive: a dating app. Swimwear, underwear, bare backs and bare chests are normal profile photos;
 * only confident explicit content is rejected, and the rest is reviewed at high confidence so that
 * moderators see few false positives. Hate symbols stay strict: they are never acceptable.
 */
const permissive: PolicyDocument = {
  name: 'permissive',
  default: 'allow',
  rules: {
    Explicit: { reject: 90, review: 70 },
    'Non-Explicit Nudity of Intimate parts and Kissing': { review: 85 },
    'Kissing on the Lips': 'allow',
    'Exposed Male Nipple': 'allow',
    'Bare Back': 'allow',
    'Swimwear or Underwear': 'allow',
    'Graphic Violence': { reject: 90, review: 75 },
    'Visually Disturbing': { review: 85 },
    'Hate Symbols': { reject: 85, review: 60 },
    'Drugs & Tobacco': { review: 85 },
    Smoking: 'allow',
  },
  faces: { childSafety: { confidence: CHILD_SAFETY.permissive } },
};

/** Frozen all the way down: presets are shared by every caller in the process. */
export const PRESETS: Readonly<Record<PresetName, PolicyDocument>> = deepFreeze({ strict, standard, permissive });

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}
