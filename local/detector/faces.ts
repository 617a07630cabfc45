/**
 * DetectFaces at the local detector, the pure part: what @vladmandic/human sees in a face (analyzers.ts
 * turns its result into FaceObservation) -> Rekognition's `FaceDetails` (docs/local-runtime.md, "Faces").
 *
 * Filled from the model: BoundingBox, Confidence, Landmarks (from the 468-point face mesh, 478 with the
 * iris model), Pose (the mesh's rotation), Quality (brightness and sharpness measured on the face's
 * pixels), AgeRange (a range around one age estimate), Gender, Emotions (seven of Rekognition's eight),
 * Smile (from the HAPPY emotion), EyesOpen and MouthOpen (from the mesh's eye and lip gaps).
 * Never given, because no model here sees them: Eyeglasses, Sunglasses, Beard, Mustache, FaceOccluded,
 * EyeDirection; the emotion CONFUSED.
 */
import { clampBox, round, type BoundingBox } from './labels.ts';

/** DetectFaces' Attributes values (the API's enum). */
export const FACE_ATTRIBUTES = [
  'DEFAULT',
  'ALL',
  'AGE_RANGE',
  'BEARD',
  'EMOTIONS',
  'EYE_DIRECTION',
  'EYEGLASSES',
  'EYES_OPEN',
  'FACE_OCCLUDED',
  'GENDER',
  'MOUTH_OPEN',
  'MUSTACHE',
  'SMILE',
  'SUNGLASSES',
] as const;
export type FaceAttribute = (typeof FACE_ATTRIBUTES)[number];

/** The attributes beyond DEFAULT this stand-in can fill. */
export const SUPPORTED_FACE_ATTRIBUTES: readonly FaceAttribute[] = ['AGE_RANGE', 'EMOTIONS', 'EYES_OPEN', 'GENDER', 'MOUTH_OPEN', 'SMILE'];
/** Asked for, never answered (no model for them): left out of every FaceDetail. */
export const UNSUPPORTED_FACE_ATTRIBUTES: readonly FaceAttribute[] = ['BEARD', 'EYE_DIRECTION', 'EYEGLASSES', 'FACE_OCCLUDED', 'MUSTACHE', 'SUNGLASSES'];

/** Faces the model scores under this (0-1) are not reported (on weak detections see docs/local-runtime.md, "Faces"). */
export const FACE_MIN_SCORE = 0.4;
/** Most faces reported (Rekognition: the 100 largest). The model looks for this many. */
export const MAX_FACES = 20;

export interface FaceObservation {
  /** 0-1. */
  score: number;
  box: BoundingBox;
  /** The face mesh, (x, y) as ratios of the image's width and height: 468 points, 478 with the irises. */
  mesh: [number, number][];
  /** Estimated age, years. */
  age?: number;
  gender?: 'female' | 'male';
  /** human's gender margin, 0-1: 2 x |p - 0.5| for the probability p of the chosen gender. */
  genderScore?: number;
  /** Softmax over human's seven emotions. */
  emotions?: { emotion: string; score: number }[];
  /** Radians. */
  rotation?: { roll: number; yaw: number; pitch: number };
  /** Measured on the face's pixels, 0-100. */
  quality?: { Brightness: number; Sharpness: number };
}

const EMOTION_NAMES: Record<string, string> = {
  angry: 'ANGRY',
  disgust: 'DISGUSTED',
  fear: 'FEAR',
  happy: 'HAPPY',
  sad: 'SAD',
  surprise: 'SURPRISED',
  neutral: 'CALM',
};

/**
 * Rekognition's landmarks from the mesh's indices (MediaPipe's canonical face mesh). "Left" is the
 * image's left (the subject's right in an unmirrored photo). Pupils are the iris model's centres
 * (indices 468 and 473); without them, the middle of the eye corners.
 */
const LANDMARKS: [string, number[]][] = [
  ['eyeLeft', [33, 133]],
  ['eyeRight', [362, 263]],
  ['mouthLeft', [61]],
  ['mouthRight', [291]],
  ['nose', [1]],
  ['leftEyeBrowLeft', [70]],
  ['leftEyeBrowRight', [107]],
  ['leftEyeBrowUp', [105]],
  ['rightEyeBrowLeft', [336]],
  ['rightEyeBrowRight', [300]],
  ['rightEyeBrowUp', [334]],
  ['leftEyeLeft', [33]],
  ['leftEyeRight', [133]],
  ['leftEyeUp', [159]],
  ['leftEyeDown', [145]],
  ['rightEyeLeft', [362]],
  ['rightEyeRight', [263]],
  ['rightEyeUp', [386]],
  ['rightEyeDown', [374]],
  ['noseLeft', [129]],
  ['noseRight', [358]],
  ['mouthUp', [0]],
  ['mouthDown', [17]],
  ['leftPupil', [468]],
  ['rightPupil', [473]],
  ['upperJawlineLeft', [234]],
  ['midJawlineLeft', [172]],
  ['chinBottom', [152]],
  ['midJawlineRight', [397]],
  ['upperJawlineRight', [454]],
];

export interface FaceDetail {
  BoundingBox: BoundingBox;
  AgeRange?: { Low: number; High: number };
  Smile?: { Value: boolean; Confidence: number };
  Gender?: { Value: 'Female' | 'Male'; Confidence: number };
  EyesOpen?: { Value: boolean; Confidence: number };
  MouthOpen?: { Value: boolean; Confidence: number };
  Emotions?: { Type: string; Confidence: number }[];
  Landmarks: { Type: string; X: number; Y: number }[];
  Pose: { Roll: number; Yaw: number; Pitch: number };
  Quality: { Brightness: number; Sharpness: number };
  Confidence: number;
}

/** The attributes beyond DEFAULT that a request's `Attributes` asks for (DEFAULT's are always given, as on AWS). */
export function requestedFaceAttributes(attributes: readonly FaceAttribute[] | undefined): Set<FaceAttribute> {
  const asked = new Set(attributes ?? []);
  if (asked.has('ALL')) return new Set(FACE_ATTRIBUTES.filter((a) => a !== 'ALL' && a !== 'DEFAULT'));
  asked.delete('DEFAULT');
  return asked;
}

/** The faces -> DetectFaces' FaceDetails, largest first, weak ones left out. */
export function toFaceDetails(faces: FaceObservation[], attributes?: readonly FaceAttribute[]): FaceDetail[] {
  const asked = requestedFaceAttributes(attributes);
  return faces
    .filter((face) => face.score >= FACE_MIN_SCORE)
    .sort((a, b) => b.box.Width * b.box.Height - a.box.Width * a.box.Height)
    .slice(0, MAX_FACES)
    .map((face) => toFaceDetail(face, asked));
}

function toFaceDetail(face: FaceObservation, asked: Set<FaceAttribute>): FaceDetail {
  const detail: Partial<FaceDetail> = { BoundingBox: clampBox(face.box) };
  if (asked.has('AGE_RANGE') && face.age !== undefined) detail.AgeRange = ageRange(face.age);
  const happy = face.emotions?.find((e) => e.emotion === 'happy')?.score;
  if (asked.has('SMILE') && happy !== undefined) detail.Smile = yesNo(happy >= 0.5, Math.max(happy, 1 - happy) * 100);
  if (asked.has('GENDER') && face.gender && face.genderScore !== undefined) {
    detail.Gender = { Value: face.gender === 'female' ? 'Female' : 'Male', Confidence: round((0.5 + face.genderScore / 2) * 100) };
  }
  const mesh = face.mesh.length >= 468 ? face.mesh : undefined;
  if (asked.has('EYES_OPEN') && mesh) {
    const openness = (eyeOpenness(mesh, 159, 145, 33, 133) + eyeOpenness(mesh, 386, 374, 362, 263)) / 2;
    detail.EyesOpen = yesNo(openness >= EYE_OPEN_RATIO, 50 + Math.abs(openness - EYE_OPEN_RATIO) * 400);
  }
  if (asked.has('MOUTH_OPEN') && mesh) {
    const gap = distance(mesh[13], mesh[14]) / Math.max(1e-6, distance(mesh[10], mesh[152]));
    detail.MouthOpen = yesNo(gap > MOUTH_OPEN_RATIO, 50 + Math.abs(gap - MOUTH_OPEN_RATIO) * 2000);
  }
  if (asked.has('EMOTIONS') && face.emotions) {
    detail.Emotions = face.emotions
      .filter((e) => EMOTION_NAMES[e.emotion])
      .map((e) => ({ Type: EMOTION_NAMES[e.emotion], Confidence: round(e.score * 100) }))
      .sort((a, b) => b.Confidence - a.Confidence);
  }
  detail.Landmarks = mesh ? landmarks(mesh) : [];
  const degrees = (radians = 0) => round((radians * 180) / Math.PI);
  detail.Pose = { Roll: degrees(face.rotation?.roll), Yaw: degrees(face.rotation?.yaw), Pitch: degrees(face.rotation?.pitch) };
  detail.Quality = face.quality ?? { Brightness: 50, Sharpness: 50 };
  detail.Confidence = round(Math.min(1, face.score) * 100);
  return detail as FaceDetail;
}

/** Mean eye height over eye width at which an eye counts as open (open eyes measure 0.25-0.35, closed under 0.1). */
const EYE_OPEN_RATIO = 0.15;
/** Inner-lip gap over face height at which the mouth counts as open (human's own "mouth open" gesture threshold). */
const MOUTH_OPEN_RATIO = 0.02;

/**
 * A range around one age estimate, as Rekognition answers a range: ±15 % of the estimate, at least
 * ±3 years. Age estimation is not age verification (docs/local-runtime.md, "Faces").
 */
export function ageRange(age: number): { Low: number; High: number } {
  const margin = Math.max(3, age * 0.15);
  return { Low: Math.max(0, Math.floor(age - margin)), High: Math.ceil(age + margin) };
}

function yesNo(value: boolean, confidence: number): { Value: boolean; Confidence: number } {
  return { Value: value, Confidence: round(Math.min(99.9, Math.max(50, confidence))) };
}

function eyeOpenness(mesh: [number, number][], up: number, down: number, left: number, right: number): number {
  return distance(mesh[up], mesh[down]) / Math.max(1e-6, distance(mesh[left], mesh[right]));
}

function distance(a: [number, number] | undefined, b: [number, number] | undefined): number {
  if (!a || !b) return 0;
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

function landmarks(mesh: [number, number][]): FaceDetail['Landmarks'] {
  return LANDMARKS.map(([type, indices]) => {
    let points = indices.map((i) => mesh[i]).filter(Boolean);
    if (!points.length && type === 'leftPupil') points = [mesh[33], mesh[133]];
    if (!points.length && type === 'rightPupil') points = [mesh[362], mesh[263]];
    const x = points.reduce((sum, p) => sum + p[0], 0) / points.length;
    const y = points.reduce((sum, p) => sum + p[1], 0) / points.length;
    return { Type: type, X: round(x, 6), Y: round(y, 6) };
  });
}
