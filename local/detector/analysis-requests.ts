/**
 * The parameters of DetectLabels, DetectFaces and DetectText as the local detector reads them from
 * the request body, validated as Rekognition validates them (wrong JSON types are
 * SerializationException, out-of-range values and unknown enum values ValidationException, with
 * AWS's "1 validation error detected" wording). The image itself is read and checked by server.ts,
 * the same way for every operation.
 */
import type { AnalysisInput, AnalysisOperation } from './analyzers.ts';
import { FACE_ATTRIBUTES, type FaceAttribute } from './faces.ts';
import { DEFAULT_LABELS_MIN_CONFIDENCE } from './labels.ts';
import type { TextFilters } from './text.ts';
// A cycle with server.ts, harmless: DetectorError is only used when a request is served.
import { DetectorError } from './server.ts';

export const ANALYSIS_OPERATIONS: readonly AnalysisOperation[] = ['DetectLabels', 'DetectFaces', 'DetectText'];

export function isAnalysisOperation(operation: string): operation is AnalysisOperation {
  return (ANALYSIS_OPERATIONS as readonly string[]).includes(operation);
}

type Body = Record<string, unknown>;
/** An analysis request without its image (which server.ts reads). */
export type AnalysisParams = DistributiveOmit<AnalysisInput, 'image'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const LABEL_FEATURES = ['GENERAL_LABELS', 'IMAGE_PROPERTIES'] as const;

/** Validates the operation's parameters; throws the DetectorError Rekognition would answer. */
export function analysisParams(operation: AnalysisOperation, body: Body): AnalysisParams {
  switch (operation) {
    case 'DetectLabels': {
      const minConfidence = optionalNumber(body.MinConfidence, 'MinConfidence', 'minConfidence', 0, 100) ?? DEFAULT_LABELS_MIN_CONFIDENCE;
      const maxLabels = optionalNumber(body.MaxLabels, 'MaxLabels', 'maxLabels', 0, Number.MAX_SAFE_INTEGER, true);
      const features = enumList(body.Features, 'Features', 'features', LABEL_FEATURES) ?? ['GENERAL_LABELS'];
      const settings = optionalObject(body.Settings, 'Settings');
      const general = optionalObject(settings?.GeneralLabels, 'Settings.GeneralLabels');
      const filters = general
        ? {
            LabelInclusionFilters: stringList(general.LabelInclusionFilters, 'LabelInclusionFilters'),
            LabelExclusionFilters: stringList(general.LabelExclusionFilters, 'LabelExclusionFilters'),
            LabelCategoryInclusionFilters: stringList(general.LabelCategoryInclusionFilters, 'LabelCategoryInclusionFilters'),
            LabelCategoryExclusionFilters: stringList(general.LabelCategoryExclusionFilters, 'LabelCategoryExclusionFilters'),
          }
        : undefined;
      return {
        operation,
        options: { minConfidence, maxLabels, filters },
        generalLabels: features.includes('GENERAL_LABELS'),
        imageProperties: features.includes('IMAGE_PROPERTIES'),
      };
    }
    case 'DetectFaces':
      return { operation, attributes: enumList(body.Attributes, 'Attributes', 'attributes', FACE_ATTRIBUTES) as FaceAttribute[] | undefined };
    case 'DetectText':
      return { operation, filters: textFilters(body.Filters) };
  }
}

function textFilters(value: unknown): TextFilters | undefined {
  const filters = optionalObject(value, 'Filters');
  if (!filters) return undefined;
  const out: TextFilters = {};
  const word = optionalObject(filters.WordFilter, 'Filters.WordFilter');
  if (word) {
    out.WordFilter = {
      MinConfidence: optionalNumber(word.MinConfidence, 'MinConfidence', 'filters.wordFilter.minConfidence', 0, 100),
      MinBoundingBoxHeight: optionalNumber(word.MinBoundingBoxHeight, 'MinBoundingBoxHeight', 'filters.wordFilter.minBoundingBoxHeight', 0, 1),
      MinBoundingBoxWidth: optionalNumber(word.MinBoundingBoxWidth, 'MinBoundingBoxWidth', 'filters.wordFilter.minBoundingBoxWidth', 0, 1),
    };
  }
  if (filters.RegionsOfInterest !== undefined && filters.RegionsOfInterest !== null) {
    if (!Array.isArray(filters.RegionsOfInterest)) throw new DetectorError('SerializationException', 'Filters.RegionsOfInterest must be a list');
    if (filters.RegionsOfInterest.length > 10) {
      throw new DetectorError('ValidationException', "1 validation error detected: Value at 'filters.regionsOfInterest' failed to satisfy constraint: Member must have length less than or equal to 10");
    }
    out.RegionsOfInterest = filters.RegionsOfInterest.map((region, i) => {
      const r = optionalObject(region, `Filters.RegionsOfInterest[${i}]`) ?? {};
      const box = optionalObject(r.BoundingBox, 'BoundingBox');
      const polygon = r.Polygon === undefined || r.Polygon === null ? undefined : r.Polygon;
      if (polygon !== undefined && !Array.isArray(polygon)) throw new DetectorError('SerializationException', 'Polygon must be a list');
      return {
        BoundingBox: box
          ? {
              Left: optionalNumber(box.Left, 'Left', 'left', -1e9, 1e9) ?? 0,
              Top: optionalNumber(box.Top, 'Top', 'top', -1e9, 1e9) ?? 0,
              Width: optionalNumber(box.Width, 'Width', 'width', 0, 1e9) ?? 0,
              Height: optionalNumber(box.Height, 'Height', 'height', 0, 1e9) ?? 0,
            }
          : undefined,
        Polygon: polygon?.map((p) => {
          const point = optionalObject(p, 'Point') ?? {};
          return { X: optionalNumber(point.X, 'X', 'x', -1e9, 1e9) ?? 0, Y: optionalNumber(point.Y, 'Y', 'y', -1e9, 1e9) ?? 0 };
        }),
      };
    });
  }
  return out;
}

function optionalNumber(value: unknown, name: string, wireName: string, min: number, max: number, integer = false): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new DetectorError('SerializationException', `${name} must be ${integer ? 'an integer' : 'a number'}`);
  }
  if (value < min || value > max) {
    const bound = value < min ? `greater than or equal to ${min}` : `less than or equal to ${max}`;
    throw new DetectorError('ValidationException', `1 validation error detected: Value '${value}' at '${wireName}' failed to satisfy constraint: Member must have value ${bound}`);
  }
  return value;
}

function optionalObject(value: unknown, name: string): Body | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new DetectorError('SerializationException', `${name} must be an object`);
  return value as Body;
}

function stringList(value: unknown, name: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new DetectorError('SerializationException', `${name} must be a list of strings`);
  return value as string[];
}

function enumList<T extends string>(value: unknown, name: string, wireName: string, allowed: readonly T[]): T[] | undefined {
  const list = stringList(value, name);
  if (!list) return undefined;
  const wrong = list.filter((v) => !(allowed as readonly string[]).includes(v));
  if (wrong.length) {
    throw new DetectorError(
      'ValidationException',
      `1 validation error detected: Value '[${list.join(', ')}]' at '${wireName}' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [${allowed.join(', ')}]]`,
    );
  }
  return list as T[];
}
