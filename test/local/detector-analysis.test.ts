/**
 * DetectLabels, DetectFaces and DetectText with the REAL offline models (human on the WASM backend,
 * Tesseract), through @aws-sdk/client-rekognition, on real photographs (test/fixtures/photos/, see
 * CREDITS.md there). One endpoint for the file: its analysis worker loads human once and Tesseract
 * once (a few seconds), the moderation classifier is never started.
 */
import { readFileSync } from 'node:fs';
import {
  DetectFacesCommand,
  DetectLabelsCommand,
  DetectTextCommand,
  ImageTooLargeException,
  InvalidImageFormatException,
  InvalidParameterException,
  RekognitionClient,
} from '@aws-sdk/client-rekognition';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDetectorEndpoint, type DetectorEndpoint } from '../../local/detector/server.ts';

const photo = (name: string) => readFileSync(new URL(`../fixtures/photos/${name}`, import.meta.url));
const ASTRONAUT = photo('astronaut.jpg'); // a portrait: one face, one person
const COFFEE = photo('coffee.jpg'); // a cup of coffee on a table
const GRASS = photo('grass.jpg'); // a lawn: no face, no object
const PAGE = photo('page.png'); // a photographed page of printed text

let detector: DetectorEndpoint;
let rekognition: RekognitionClient;

beforeAll(async () => {
  // Nothing listens on the S3 endpoint: only bytes are sent here. No moderation classifier is started.
  detector = await startDetectorEndpoint({
    s3: { endpoint: 'http://127.0.0.1:9' },
    classify: () => Promise.reject(new Error('DetectModerationLabels is not used in this file')),
  });
  rekognition = new RekognitionClient({ endpoint: detector.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' }, maxAttempts: 1 });
});

afterAll(async () => {
  rekognition?.destroy();
  await detector?.close();
});

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

describe('DetectLabels (CenterNet COCO objects, mapped onto Rekognition labels)', () => {
  it('finds the person in a portrait, with its category and an instance box', async () => {
    const { Labels, LabelModelVersion } = await rekognition.send(new DetectLabelsCommand({ Image: { Bytes: ASTRONAUT } }));
    expect(LabelModelVersion).toBe('3.0');
    const person = Labels!.find((l) => l.Name === 'Person');
    expect(person).toMatchObject({ Categories: [{ Name: 'Person Description' }], Aliases: [{ Name: 'Human' }], Parents: [] });
    expect(person!.Confidence).toBeGreaterThanOrEqual(55);
    expect(person!.Instances!.length).toBeGreaterThan(0);
    const { Width, Height, Left, Top } = person!.Instances![0].BoundingBox!;
    for (const v of [Width!, Height!, Left!, Top!]) expect(v).toBeGreaterThanOrEqual(0);
    expect(Left! + Width!).toBeLessThanOrEqual(1);
  });

  it('finds a common object (a cup) and honours MinConfidence and MaxLabels', async () => {
    const { Labels } = await rekognition.send(new DetectLabelsCommand({ Image: { Bytes: COFFEE } }));
    const cup = Labels!.find((l) => l.Name === 'Cup');
    expect(cup).toMatchObject({ Categories: [{ Name: 'Kitchen and Dining' }] });
    expect(cup!.Instances).toHaveLength(1);
    const none = await rekognition.send(new DetectLabelsCommand({ Image: { Bytes: COFFEE }, MinConfidence: 99.5 }));
    expect(none.Labels).toEqual([]);
    const capped = await rekognition.send(new DetectLabelsCommand({ Image: { Bytes: COFFEE }, MaxLabels: 0 }));
    expect(capped.Labels).toEqual([]);
  });

  it('IMAGE_PROPERTIES adds the image’s quality', async () => {
    const out = await rekognition.send(new DetectLabelsCommand({ Image: { Bytes: GRASS }, Features: ['IMAGE_PROPERTIES'] }));
    expect(out.Labels).toEqual([]);
    expect(out.ImageProperties!.Quality).toEqual({ Brightness: expect.any(Number), Sharpness: expect.any(Number), Contrast: expect.any(Number) });
  });
});

describe('DetectFaces (human: face mesh, age, gender, emotion)', () => {
  it('ALL: one face with an age range, gender, emotions, smile, landmarks, pose and quality', async () => {
    const { FaceDetails } = await rekognition.send(new DetectFacesCommand({ Image: { Bytes: ASTRONAUT }, Attributes: ['ALL'] }));
    expect(FaceDetails).toHaveLength(1);
    const [face] = FaceDetails!;
    expect(face.Confidence).toBeGreaterThan(90);
    expect(face.AgeRange!.Low).toBeLessThan(face.AgeRange!.High!);
    expect(face.AgeRange!.Low).toBeGreaterThanOrEqual(18); // an adult (Eileen Collins, then in her late thirties)
    expect(face.Gender!.Value).toMatch(/^(Female|Male)$/);
    expect(face.Emotions![0]).toMatchObject({ Type: 'HAPPY' });
    expect(face.Smile).toMatchObject({ Value: true });
    expect(face.EyesOpen).toMatchObject({ Value: true });
    // The face is in the upper middle of the portrait.
    expect(face.BoundingBox!.Left).toBeGreaterThan(0.15);
    expect(face.BoundingBox!.Top! + face.BoundingBox!.Height!).toBeLessThan(0.6);
    const landmark = (type: string) => face.Landmarks!.find((l) => l.Type === type)!;
    expect(face.Landmarks).toHaveLength(30);
    expect(landmark('eyeLeft').X).toBeLessThan(landmark('eyeRight').X!); // "left" is the image's left
    expect(landmark('nose').Y).toBeLessThan(landmark('mouthDown').Y!);
    expect(face.Pose).toEqual({ Roll: expect.any(Number), Yaw: expect.any(Number), Pitch: expect.any(Number) });
    for (const missing of ['Sunglasses', 'Eyeglasses', 'Beard', 'Mustache', 'FaceOccluded', 'EyeDirection']) expect(face).not.toHaveProperty(missing);
  });

  it('DEFAULT (or no Attributes): only BoundingBox, Confidence, Landmarks, Pose and Quality', async () => {
    const { FaceDetails } = await rekognition.send(new DetectFacesCommand({ Image: { Bytes: ASTRONAUT } }));
    expect(Object.keys(FaceDetails![0]).sort()).toEqual(['BoundingBox', 'Confidence', 'Landmarks', 'Pose', 'Quality']);
  });

  it('a photograph without a face answers empty FaceDetails, not an error', async () => {
    for (const Bytes of [GRASS, COFFEE]) {
      const { FaceDetails } = await rekognition.send(new DetectFacesCommand({ Image: { Bytes }, Attributes: ['ALL'] }));
      expect(FaceDetails).toEqual([]);
    }
  });
});

describe('DetectText (Tesseract)', () => {
  it('reads the printed words of a photographed page as LINEs and WORDs', async () => {
    const { TextDetections, TextModelVersion } = await rekognition.send(new DetectTextCommand({ Image: { Bytes: PAGE } }));
    expect(TextModelVersion).toBe('3.0');
    const words = TextDetections!.filter((d) => d.Type === 'WORD');
    const lines = TextDetections!.filter((d) => d.Type === 'LINE');
    expect(words.map((w) => w.DetectedText)).toEqual(expect.arrayContaining(['segmentation', 'markers', 'coins', 'pixels']));
    expect(lines.some((l) => /These markers are pixels/.test(l.DetectedText!))).toBe(true);
    const lineIds = new Set(lines.map((l) => l.Id));
    for (const word of words) expect(lineIds.has(word.ParentId)).toBe(true);
    expect(words[0].Geometry!.Polygon).toHaveLength(4);
    const strict = await rekognition.send(new DetectTextCommand({ Image: { Bytes: PAGE }, Filters: { WordFilter: { MinConfidence: 95 } } }));
    expect(strict.TextDetections!.length).toBeLessThan(TextDetections!.length);
  });

  it('finds no text on a lawn', async () => {
    const { TextDetections } = await rekognition.send(new DetectTextCommand({ Image: { Bytes: GRASS } }));
    expect(TextDetections).toEqual([]);
  });
});

describe('bad images: the errors DetectModerationLabels answers', () => {
  it('too small, corrupt, too large', async () => {
    const small = await sharp(ASTRONAUT).resize(64, 64).jpeg().toBuffer();
    expect(await rejection(rekognition.send(new DetectFacesCommand({ Image: { Bytes: small } })))).toBeInstanceOf(InvalidParameterException);
    // Truncated: the header is fine, decoding fails (in the analysis worker).
    const corrupt = ASTRONAUT.subarray(0, Math.floor(ASTRONAUT.length / 3));
    expect(await rejection(rekognition.send(new DetectLabelsCommand({ Image: { Bytes: corrupt } })))).toBeInstanceOf(InvalidImageFormatException);
    expect(await rejection(rekognition.send(new DetectTextCommand({ Image: { Bytes: corrupt } })))).toBeInstanceOf(InvalidImageFormatException);
    const tall = await sharp({ create: { width: 100, height: 10_001, channels: 3, background: '#777' } }).png().toBuffer();
    expect(await rejection(rekognition.send(new DetectTextCommand({ Image: { Bytes: tall } })))).toBeInstanceOf(ImageTooLargeException);
  });

  it('the endpoint counted the analyses and started no moderation classifier work', () => {
    const stats = detector.stats();
    expect(stats.operations.DetectLabels).toBeGreaterThanOrEqual(5);
    expect(stats.operations.DetectFaces).toBeGreaterThanOrEqual(4);
    expect(stats.operations.DetectText).toBeGreaterThanOrEqual(3);
    expect(stats.operations.DetectModerationLabels).toBeUndefined();
    expect(stats.inFlight).toBe(0);
  });
});
