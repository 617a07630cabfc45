/**
 * The pure mappings behind DetectLabels, DetectFaces and DetectText at the local detector: COCO
 * classes onto Rekognition's labels (coco-labels.json), human's faces onto FaceDetails, Tesseract's
 * lines onto TextDetections. No model runs here.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ageRange, FACE_MIN_SCORE, toFaceDetails, type FaceObservation } from '../../local/detector/faces.ts';
import { humanDirectory } from '../../local/detector/analyzers.ts';
import { ancestorsOf, LABEL_DATA, objectConfidence, toDetectLabelsOutput, type ObjectDetection } from '../../local/detector/labels.ts';
import { toDetectTextOutput, type OcrLine } from '../../local/detector/text.ts';

/** The classes the installed CenterNet model names (read from human's own label table). */
function humanCocoClasses(): string[] {
  const source = readFileSync(path.join(humanDirectory(), 'dist', 'human.node-wasm.js'), 'utf8');
  return [...source.matchAll(/\{class:(\d+),label:"([^"]+)"\}/g)].map((m) => m[2]);
}

const box = { Left: 0.1, Top: 0.2, Width: 0.3, Height: 0.4 };
const names = (labels: { Name: string }[]) => labels.map((l) => l.Name);

describe('coco-labels.json', () => {
  it('maps every one of the model’s 80 COCO classes onto a known label', () => {
    const classes = humanCocoClasses();
    expect(classes).toHaveLength(80);
    expect(Object.keys(LABEL_DATA.coco).sort()).toEqual([...classes].sort());
    for (const name of Object.values(LABEL_DATA.coco)) expect(LABEL_DATA.labels[name], name).toBeDefined();
  });

  it('every parent is itself a known label, with no cycles, and every label has a category', () => {
    for (const [name, entry] of Object.entries(LABEL_DATA.labels)) {
      for (const parent of entry.parents) expect(LABEL_DATA.labels[parent], `${name} -> ${parent}`).toBeDefined();
      expect(ancestorsOf(name)).not.toContain(name);
      expect(entry.categories.length, name).toBeGreaterThan(0);
    }
  });

  it('gives Rekognition’s names, parents and categories', () => {
    expect(ancestorsOf('Car')).toEqual(['Vehicle', 'Transportation']);
    expect(new Set(ancestorsOf('Dog'))).toEqual(new Set(['Canine', 'Pet', 'Mammal', 'Animal']));
    expect(LABEL_DATA.labels.Person.categories).toEqual(['Person Description']);
    expect(LABEL_DATA.coco['cell phone']).toBe('Mobile Phone');
  });
});

describe('DetectLabels output', () => {
  const car: ObjectDetection = { label: 'car', score: 0.5, box };

  it('reports a detection with its instance and its ancestors as labels of their own', () => {
    const { Labels, LabelModelVersion } = toDetectLabelsOutput([car, { label: 'car', score: 0.3, box: { ...box, Left: 0.6 } }]);
    expect(LabelModelVersion).toBe('3.0');
    expect(names(Labels)).toEqual(['Car', 'Transportation', 'Vehicle']);
    const [carLabel, transportation] = Labels;
    expect(carLabel).toEqual({
      Name: 'Car',
      Confidence: objectConfidence(0.5),
      Instances: [
        { BoundingBox: box, Confidence: objectConfidence(0.5) },
        { BoundingBox: { ...box, Left: 0.6 }, Confidence: objectConfidence(0.3) },
      ],
      Parents: [{ Name: 'Vehicle' }, { Name: 'Transportation' }],
      Aliases: [{ Name: 'Automobile' }],
      Categories: [{ Name: 'Vehicles and Automotive' }],
    });
    expect(transportation).toMatchObject({ Instances: [], Parents: [], Confidence: carLabel.Confidence });
  });

  it('calibrates scores and honours MinConfidence (default 55) and MaxLabels', () => {
    expect(objectConfidence(0.2)).toBe(50);
    expect(objectConfidence(0.45)).toBe(80);
    expect(objectConfidence(1)).toBe(99);
    expect(toDetectLabelsOutput([{ label: 'cup', score: 0.2, box }]).Labels).toEqual([]);
    expect(names(toDetectLabelsOutput([{ label: 'cup', score: 0.2, box }], { minConfidence: 40 }).Labels)).toEqual(['Cup']);
    const many = toDetectLabelsOutput([car, { label: 'dog', score: 0.9, box }], { maxLabels: 2 });
    expect(names(many.Labels)).toEqual(['Animal', 'Canine']);
    expect(toDetectLabelsOutput([car], { maxLabels: 0 }).Labels).toEqual([]);
  });

  it('applies the GeneralLabels filters by name (with descendants) and category', () => {
    const detections = [car, { label: 'dog', score: 0.6, box }, { label: 'person', score: 0.6, box }];
    expect(names(toDetectLabelsOutput(detections, { filters: { LabelInclusionFilters: ['Vehicle'] } }).Labels)).toEqual(['Car', 'Vehicle']);
    expect(names(toDetectLabelsOutput(detections, { filters: { LabelCategoryInclusionFilters: ['Person Description'] } }).Labels)).toEqual(['Person']);
    expect(names(toDetectLabelsOutput(detections, { filters: { LabelCategoryExclusionFilters: ['Animals and Pets', 'Vehicles and Automotive'] } }).Labels)).toEqual(['Person']);
    expect(names(toDetectLabelsOutput(detections, { filters: { LabelExclusionFilters: ['person', 'Dog'] } }).Labels)).not.toContain('Person');
  });
});

describe('DetectFaces output', () => {
  const mesh = Array.from({ length: 478 }, (_, i) => [0.3 + (i % 10) / 100, 0.3 + Math.floor(i / 10) / 200] as [number, number]);
  const face: FaceObservation = {
    score: 0.9,
    box,
    mesh,
    age: 30,
    gender: 'female',
    genderScore: 0.6,
    emotions: [
      { emotion: 'happy', score: 0.8 },
      { emotion: 'neutral', score: 0.15 },
      { emotion: 'sad', score: 0.05 },
    ],
    rotation: { roll: 0, yaw: Math.PI / 6, pitch: 0 },
    quality: { Brightness: 60, Sharpness: 80 },
  };

  it('DEFAULT gives BoundingBox, Confidence, Landmarks, Pose and Quality only', () => {
    const [detail] = toFaceDetails([face]);
    expect(Object.keys(detail).sort()).toEqual(['BoundingBox', 'Confidence', 'Landmarks', 'Pose', 'Quality']);
    expect(detail.Landmarks).toHaveLength(30);
    expect(detail.Pose.Yaw).toBeCloseTo(30, 2);
    expect(toFaceDetails([face], ['DEFAULT'])).toEqual([detail]);
  });

  it('ALL adds what the model gives, and never what it cannot see', () => {
    const [detail] = toFaceDetails([face], ['ALL']);
    expect(detail).toMatchObject({
      AgeRange: { Low: 25, High: 35 },
      Smile: { Value: true, Confidence: 80 },
      Gender: { Value: 'Female', Confidence: 80 },
      EyesOpen: { Value: expect.any(Boolean) },
      MouthOpen: { Value: expect.any(Boolean) },
      Emotions: [
        { Type: 'HAPPY', Confidence: 80 },
        { Type: 'CALM', Confidence: 15 },
        { Type: 'SAD', Confidence: 5 },
      ],
    });
    for (const missing of ['Eyeglasses', 'Sunglasses', 'Beard', 'Mustache', 'FaceOccluded', 'EyeDirection']) expect(detail).not.toHaveProperty(missing);
    const [some] = toFaceDetails([face], ['AGE_RANGE', 'SUNGLASSES']);
    expect(Object.keys(some).sort()).toEqual(['AgeRange', 'BoundingBox', 'Confidence', 'Landmarks', 'Pose', 'Quality']);
  });

  it('leaves weak faces out and puts the largest first', () => {
    const small = { ...face, box: { ...box, Width: 0.1, Height: 0.1 } };
    const weak = { ...face, score: FACE_MIN_SCORE - 0.01 };
    expect(toFaceDetails([small, weak, face]).map((d) => d.BoundingBox)).toEqual([box, small.box]);
    expect(toFaceDetails([])).toEqual([]);
  });

  it('age range: ±15 % of the estimate, at least ±3 years', () => {
    expect(ageRange(10)).toEqual({ Low: 7, High: 13 });
    expect(ageRange(40)).toEqual({ Low: 34, High: 46 });
    expect(ageRange(1)).toEqual({ Low: 0, High: 4 });
  });
});

describe('DetectText output', () => {
  const word = (text: string, confidence: number, x0: number, y0 = 10) => ({ text, confidence, bbox: { x0, y0, x1: x0 + 40, y1: y0 + 20 } });
  const lines: OcrLine[] = [
    { bbox: { x0: 0, y0: 10, x1: 200, y1: 30 }, words: [word('Hello', 95, 0), word('world', 88, 50), word('§', 99, 100)] },
    { bbox: { x0: 0, y0: 50, x1: 200, y1: 70 }, words: [word('aE', 30, 0, 50), word('|', 77, 50, 50)] },
    { bbox: { x0: 0, y0: 90, x1: 200, y1: 110 }, words: [word('A', 84, 0, 90), word('7', 95, 50, 90)] },
  ];

  it('lines first, then their words with ParentId; noise left out', () => {
    const { TextDetections, TextModelVersion } = toDetectTextOutput(lines, { width: 400, height: 200 });
    expect(TextModelVersion).toBe('3.0');
    expect(TextDetections.map((d) => [d.Type, d.Id, d.ParentId, d.DetectedText])).toEqual([
      ['LINE', 0, undefined, 'Hello world'],
      ['LINE', 1, undefined, '7'],
      ['WORD', 2, 0, 'Hello'],
      ['WORD', 3, 0, 'world'],
      ['WORD', 4, 1, '7'],
    ]);
    expect(TextDetections[2].Geometry).toEqual({
      BoundingBox: { Left: 0, Top: 0.05, Width: 0.1, Height: 0.1 },
      Polygon: [
        { X: 0, Y: 0.05 },
        { X: 0.1, Y: 0.05 },
        { X: 0.1, Y: 0.15 },
        { X: 0, Y: 0.15 },
      ],
    });
    expect(TextDetections[0].Confidence).toBe(91.5);
  });

  it('honours WordFilter (MinConfidence defaults to 80) and RegionsOfInterest', () => {
    const strict = toDetectTextOutput(lines, { width: 400, height: 200 }, { WordFilter: {} });
    expect(strict.TextDetections.filter((d) => d.Type === 'WORD').map((d) => d.DetectedText)).toEqual(['Hello', 'world', '7']);
    const high = toDetectTextOutput(lines, { width: 400, height: 200 }, { WordFilter: { MinConfidence: 90 } });
    expect(high.TextDetections.filter((d) => d.Type === 'WORD').map((d) => d.DetectedText)).toEqual(['Hello', '7']);
    const region = toDetectTextOutput(lines, { width: 400, height: 200 }, { RegionsOfInterest: [{ BoundingBox: { Left: 0.1, Top: 0, Width: 0.2, Height: 0.3 } }] });
    expect(region.TextDetections.map((d) => d.DetectedText)).toEqual(['world', 'world']);
  });
});
