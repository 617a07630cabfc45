/**
 * The local Rekognition-compatible detector (see docs/local-runtime.md, "The local detector"):
 * - startDetectorEndpoint: DetectModerationLabels over HTTP (AWS JSON 1.1), for any AWS client;
 * - createClassifierPool: nsfwjs MobileNetV2 in worker threads;
 * - toModerationLabels: nsfwjs probabilities -> model-7 moderation labels (pure);
 * - DetectLabels, DetectFaces, DetectText: analyzers.ts (human, Tesseract) in analysis-pool.ts's
 *   worker; the pure mappings toDetectLabelsOutput, toFaceDetails, toDetectTextOutput.
 */
export { classify, decodeForModel, InvalidImageError, loadModel, CLASS_NAMES, type ClassName, type ClassScores } from './classifier.ts';
export {
  calibrate,
  CALIBRATION,
  DEFAULT_MIN_CONFIDENCE,
  MODERATION_MODEL_VERSION,
  signals,
  toModerationLabels,
  type DetectModerationLabelsOutput,
  type MappingOptions,
  type RekognitionContentType,
  type RekognitionModerationLabel,
} from './mapping.ts';
export { ClassifierUnavailableError, createClassifierPool, type ClassifierPool, type ClassifierPoolOptions, type ClassifierPoolStats } from './pool.ts';
export {
  DetectorError,
  detectorError,
  LIMITS,
  startDetectorEndpoint,
  type DetectorEndpoint,
  type DetectorEndpointOptions,
  type DetectorStats,
  type DetectRequest,
} from './server.ts';
export { createAnalysisPool, type AnalysisPool } from './analysis-pool.ts';
export { ANALYSIS_OPERATIONS, analysisParams, isAnalysisOperation } from './analysis-requests.ts';
export type { AnalysisInput, AnalysisOperation, AnalysisOutput } from './analyzers.ts';
export { ageRange, FACE_ATTRIBUTES, toFaceDetails, type FaceAttribute, type FaceDetail, type FaceObservation } from './faces.ts';
export { ancestorsOf, LABEL_DATA, LABEL_MODEL_VERSION, toDetectLabelsOutput, type DetectLabelsOutput, type ObjectDetection, type RekognitionLabel } from './labels.ts';
export { TEXT_MODEL_VERSION, toDetectTextOutput, type DetectTextOutput, type OcrLine, type TextDetection } from './text.ts';
