/**
 * The local Rekognition endpoint through the real @aws-sdk/client-rekognition (and plain fetch),
 * with an injected classifier (no model: fast) and images by S3 reference from s3rver.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DetectFacesCommand,
  DetectLabelsCommand,
  DetectModerationLabelsCommand,
  DetectTextCommand,
  ImageTooLargeException,
  InternalServerError,
  InvalidImageFormatException,
  InvalidParameterException,
  InvalidS3ObjectException,
  ProvisionedThroughputExceededException,
  RekognitionClient,
  RecognizeCelebritiesCommand,
  RekognitionServiceException,
  ThrottlingException,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AnalysisInput, AnalysisOutput } from '../../local/detector/analyzers.ts';
import { decodeForModel, type ClassScores } from '../../local/detector/classifier.ts';
import { detectorError, startDetectorEndpoint, type DetectorEndpoint, type DetectRequest } from '../../local/detector/server.ts';

const BUCKET = 'b';
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

let s3rver: { run(): Promise<AddressInfo>; close(): Promise<void> };
let s3dir: string;
let s3: S3Client;
let detector: DetectorEndpoint;
let rekognition: RekognitionClient;
let noRetry: RekognitionClient;

/** What the injected classifier answers next, and what it was given. */
let nextScores: ClassScores;
let seen: Buffer[] = [];
let classifierFailure: Error | undefined;
let fault: ((request: DetectRequest) => Error | undefined) | undefined;
/** What the injected analysis was asked (DetectLabels, DetectFaces, DetectText) and answers. */
let analyses: AnalysisInput[] = [];
let nextAnalysis: AnalysisOutput = { Labels: [], LabelModelVersion: '3.0' };

const NEUTRAL: ClassScores = { Drawing: 0.02, Hentai: 0.01, Neutral: 0.95, Porn: 0.01, Sexy: 0.01 };
const EXPLICIT: ClassScores = { Drawing: 0, Hentai: 0.01, Neutral: 0.01, Porn: 0.96, Sexy: 0.02 };

const png = (width = 120, height = 100) =>
  sharp({ create: { width, height, channels: 3, background: { r: 40, g: 120, b: 200 } } })
    .png()
    .toBuffer();
const jpeg = (width = 160, height = 120) =>
  sharp({ create: { width, height, channels: 3, background: { r: 200, g: 120, b: 40 } } })
    .jpeg()
    .toBuffer();

async function put(key: string, body: Buffer): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

async function rejection(promise: Promise<unknown>): Promise<Error & { $fault?: string; $metadata?: { httpStatusCode?: number } }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  s3dir = mkdtempSync(path.join(tmpdir(), 'detector-s3-'));
  s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: s3dir, configureBuckets: [{ name: BUCKET }] }) as unknown as typeof s3rver;
  const { port } = await s3rver.run();
  const s3Endpoint = `http://127.0.0.1:${port}`;
  s3 = new S3Client({ endpoint: s3Endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED' });

  detector = await startDetectorEndpoint({
    s3: { endpoint: s3Endpoint },
    classify: async (image) => {
      seen.push(image);
      if (classifierFailure) throw classifierFailure;
      await decodeForModel(image); // the real decode: corrupt images fail as they would with the model
      return nextScores;
    },
    fault: (request) => fault?.(request),
    analyze: async (input) => {
      analyses.push(input);
      await decodeForModel(input.image);
      return nextAnalysis;
    },
  });
  const config = { endpoint: detector.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' } };
  rekognition = new RekognitionClient(config);
  noRetry = new RekognitionClient({ ...config, maxAttempts: 1 });
});

afterAll(async () => {
  rekognition?.destroy();
  noRetry?.destroy();
  s3?.destroy();
  await detector?.close();
  await s3rver?.close();
  rmSync(s3dir, { recursive: true, force: true });
});

beforeEach(() => {
  nextScores = NEUTRAL;
  seen = [];
  classifierFailure = undefined;
  fault = undefined;
  analyses = [];
});

describe('DetectModerationLabels through the AWS SDK', () => {
  it('answers image bytes with model-7 labels, ancestors included', async () => {
    nextScores = EXPLICIT;
    const image = await png();
    const out = await rekognition.send(new DetectModerationLabelsCommand({ Image: { Bytes: image } }));
    expect(out.ModerationModelVersion).toBe('7.0');
    expect(out.ModerationLabels).toEqual([
      { Name: 'Explicit Nudity', ParentName: 'Explicit', TaxonomyLevel: 2, Confidence: expect.any(Number) },
      { Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: expect.any(Number) },
    ]);
    expect(out.ModerationLabels![0].Confidence).toBeGreaterThan(90);
    expect(out.ContentTypes).toEqual([]);
    expect(seen).toHaveLength(1);
    expect(seen[0].equals(image)).toBe(true);
  });

  it('answers a clean image with no labels', async () => {
    const out = await rekognition.send(new DetectModerationLabelsCommand({ Image: { Bytes: await jpeg() } }));
    expect(out.ModerationLabels).toEqual([]);
    expect(out.ModerationModelVersion).toBe('7.0');
  });

  it('honours MinConfidence', async () => {
    nextScores = { Drawing: 0, Hentai: 0, Neutral: 0.4, Porn: 0.5, Sexy: 0.1 };
    const image = await png();
    const byDefault = await rekognition.send(new DetectModerationLabelsCommand({ Image: { Bytes: image } }));
    expect(byDefault.ModerationLabels).toEqual([]);
    const weak = await rekognition.send(new DetectModerationLabelsCommand({ Image: { Bytes: image }, MinConfidence: 20 }));
    expect(weak.ModerationLabels!.map((l) => l.Name)).toEqual(['Implied Nudity', 'Non-Explicit Nudity', 'Non-Explicit Nudity of Intimate parts and Kissing', 'Explicit Nudity', 'Explicit']);
  });

  it('reads an image by S3 reference from the local S3', async () => {
    nextScores = { Drawing: 0.01, Hentai: 0.01, Neutral: 0.08, Porn: 0.45, Sexy: 0.45 };
    const image = await jpeg(300, 200);
    await put('uploads/alice/photo.jpg', image);
    const out = await rekognition.send(
      new DetectModerationLabelsCommand({ Image: { S3Object: { Bucket: BUCKET, Name: 'uploads/alice/photo.jpg' } }, MinConfidence: 60 }),
    );
    expect(out.ModerationLabels!.map((l) => l.Name)).toEqual(['Implied Nudity', 'Non-Explicit Nudity', 'Non-Explicit Nudity of Intimate parts and Kissing']);
    expect(seen[0].equals(image)).toBe(true);
    expect(detector.stats().images.s3).toBeGreaterThanOrEqual(1);
  });

  it('reports content types for drawings', async () => {
    nextScores = { Drawing: 0.2, Hentai: 0.78, Neutral: 0.01, Porn: 0.01, Sexy: 0 };
    const out = await rekognition.send(new DetectModerationLabelsCommand({ Image: { Bytes: await png() } }));
    expect(out.ContentTypes).toEqual([{ Name: 'Animated', Confidence: expect.any(Number) }]);
    expect(out.ModerationLabels!.map((l) => l.Name)).toEqual(['Explicit Nudity', 'Explicit']);
  });
});

describe('errors map to the SDK exception classes', () => {
  it('a text file is InvalidImageFormatException (bytes and S3)', async () => {
    const text = Buffer.from('this is not an image\n'.repeat(20));
    const err = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: text } })));
    expect(err).toBeInstanceOf(InvalidImageFormatException);
    expect(err.$metadata?.httpStatusCode).toBe(400);
    expect(err.message).toBe('Request has invalid image format');

    await put('notes.txt', text);
    const viaS3 = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { S3Object: { Bucket: BUCKET, Name: 'notes.txt' } } })));
    expect(viaS3).toBeInstanceOf(InvalidImageFormatException);
    expect(seen).toHaveLength(0);
  });

  it('formats other than JPEG and PNG are InvalidImageFormatException', async () => {
    const webp = await sharp({ create: { width: 120, height: 120, channels: 3, background: '#888' } }).webp().toBuffer();
    const gif = await sharp({ create: { width: 120, height: 120, channels: 3, background: '#888' } }).gif().toBuffer();
    for (const bytes of [webp, gif]) {
      expect(await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: bytes } })))).toBeInstanceOf(InvalidImageFormatException);
    }
  });

  it('a truncated JPEG is InvalidImageFormatException (found when decoding)', async () => {
    const whole = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#888', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
      .jpeg()
      .toBuffer();
    const err = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: whole.subarray(0, whole.length / 3) } })));
    expect(err).toBeInstanceOf(InvalidImageFormatException);
  });

  it('a missing object is InvalidS3ObjectException', async () => {
    const err = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { S3Object: { Bucket: BUCKET, Name: 'nope.jpg' } } })));
    expect(err).toBeInstanceOf(InvalidS3ObjectException);
    expect(err.message).toMatch(/Unable to get object metadata from S3/);
    const noBucket = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { S3Object: { Bucket: 'no-such-bucket', Name: 'a.jpg' } } })));
    expect(noBucket).toBeInstanceOf(InvalidS3ObjectException);
  });

  it('an S3 object over 15 MB is ImageTooLargeException', async () => {
    const big = Buffer.alloc(15 * 1024 * 1024 + 1, 0x20);
    (await jpeg()).copy(big);
    await put('huge.jpg', big);
    const err = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { S3Object: { Bucket: BUCKET, Name: 'huge.jpg' } } })));
    expect(err).toBeInstanceOf(ImageTooLargeException);
  });

  it('bytes over 5 MB are a ValidationException, as Rekognition answers', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024 + 1, 0x20);
    (await jpeg()).copy(big);
    const err = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: big } })));
    expect(err).toBeInstanceOf(RekognitionServiceException);
    expect(err.name).toBe('ValidationException');
    expect(err.message).toMatch(/at 'image.bytes' failed to satisfy constraint: Member must have length less than or equal to 5242880/);
  });

  it('a side over 10,000 px is ImageTooLargeException; under 80 px is InvalidParameterException', async () => {
    const wide = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: await png(10_001, 90) } })));
    expect(wide).toBeInstanceOf(ImageTooLargeException);
    expect(wide.message).toBe('Input image dimensions 10001 x 90 exceed maximum dimension size of 10000 pixels');
    const small = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: await png(79, 200) } })));
    expect(small).toBeInstanceOf(InvalidParameterException);
    // 80 px is allowed
    await noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: await png(80, 80) } }));
  });

  it('malformed requests: both or no image sources, MinConfidence out of range', async () => {
    const image = await png();
    const both = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: image, S3Object: { Bucket: BUCKET, Name: 'x.jpg' } } })));
    expect(both).toBeInstanceOf(InvalidParameterException);
    const none = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: {} })));
    expect(none).toBeInstanceOf(InvalidParameterException);
    const range = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: image }, MinConfidence: 150 })));
    expect(range.name).toBe('ValidationException');
  });

  it('fault injection: ThrottlingException (a server fault, 500) and ProvisionedThroughputExceededException (400)', async () => {
    fault = () => detectorError('ThrottlingException');
    const throttled = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: await png() } })));
    expect(throttled).toBeInstanceOf(ThrottlingException);
    expect(throttled.$fault).toBe('server');
    expect(throttled.$metadata?.httpStatusCode).toBe(500);

    fault = () => Object.assign(new Error('Provisioned rate exceeded'), { name: 'ProvisionedThroughputExceededException' });
    const provisioned = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: await png() } })));
    expect(provisioned).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(provisioned.$metadata?.httpStatusCode).toBe(400);
    expect(seen).toHaveLength(0);
  });

  it('fault sees each request; the SDK retries a throttled call', async () => {
    const before = detector.stats();
    const requests: DetectRequest[] = [];
    fault = (request) => (requests.push(request) === 1 ? detectorError('ThrottlingException') : undefined);
    const out = await rekognition.send(new DetectModerationLabelsCommand({ Image: { Bytes: await png() }, MinConfidence: 40 }));
    expect(out.ModerationLabels).toEqual([]);
    expect(requests).toHaveLength(2);
    expect(requests[1]).toMatchObject({ MinConfidence: 40, Image: { Bytes: expect.any(String) } });
    const after = detector.stats();
    expect(after.requests - before.requests).toBe(2);
    expect(after.injectedFaults - before.injectedFaults).toBe(1);
    expect(after.errors.ThrottlingException - (before.errors.ThrottlingException ?? 0)).toBe(1);
  });

  it('a classifier failure is InternalServerError', async () => {
    classifierFailure = new Error('worker crashed');
    const err = await rejection(noRetry.send(new DetectModerationLabelsCommand({ Image: { Bytes: await png() } })));
    expect(err).toBeInstanceOf(InternalServerError);
    expect(err.$metadata?.httpStatusCode).toBe(500);
  });

  it('another operation is UnknownOperationException', async () => {
    const err = await rejection(noRetry.send(new RecognizeCelebritiesCommand({ Image: { Bytes: await png() } })));
    expect(err).toBeInstanceOf(RekognitionServiceException);
    expect(err.name).toBe('UnknownOperationException');
    expect(err.$metadata?.httpStatusCode).toBe(400);
  });
});

describe('DetectLabels, DetectFaces and DetectText: parameters, limits and errors (injected analysis)', () => {
  it('hands the validated parameters and the image to the analysis and answers its output', async () => {
    const image = await jpeg(300, 200);
    nextAnalysis = { Labels: [], LabelModelVersion: '3.0' };
    const labels = await rekognition.send(
      new DetectLabelsCommand({ Image: { Bytes: image }, MaxLabels: 5, MinConfidence: 70, Settings: { GeneralLabels: { LabelCategoryInclusionFilters: ['Animals and Pets'] } } }),
    );
    expect(labels).toMatchObject({ Labels: [], LabelModelVersion: '3.0' });
    nextAnalysis = { FaceDetails: [] };
    const faces = await rekognition.send(new DetectFacesCommand({ Image: { Bytes: image }, Attributes: ['ALL'] }));
    expect(faces.FaceDetails).toEqual([]);
    nextAnalysis = { TextDetections: [], TextModelVersion: '3.0' };
    await rekognition.send(new DetectTextCommand({ Image: { Bytes: image }, Filters: { WordFilter: { MinConfidence: 90 } } }));
    expect(analyses.map(({ image: bytes, ...rest }) => ({ ...rest, same: Buffer.from(bytes).equals(image) }))).toEqual([
      {
        operation: 'DetectLabels',
        options: { minConfidence: 70, maxLabels: 5, filters: { LabelCategoryInclusionFilters: ['Animals and Pets'] } },
        generalLabels: true,
        imageProperties: false,
        same: true,
      },
      { operation: 'DetectFaces', attributes: ['ALL'], same: true },
      { operation: 'DetectText', filters: { WordFilter: { MinConfidence: 90 } }, same: true },
    ]);
    expect(detector.stats().operations).toMatchObject({ DetectLabels: 1, DetectFaces: 1, DetectText: 1 });
  });

  it('reads the image by S3 reference, as DetectModerationLabels does', async () => {
    const image = await jpeg(200, 200);
    await put('uploads/bob/labels.jpg', image);
    nextAnalysis = { Labels: [], LabelModelVersion: '3.0' };
    await rekognition.send(new DetectLabelsCommand({ Image: { S3Object: { Bucket: BUCKET, Name: 'uploads/bob/labels.jpg' } } }));
    expect(Buffer.from(analyses[0].image).equals(image)).toBe(true);
    const missing = await rejection(noRetry.send(new DetectTextCommand({ Image: { S3Object: { Bucket: BUCKET, Name: 'nope.jpg' } } })));
    expect(missing).toBeInstanceOf(InvalidS3ObjectException);
  });

  it('the same image limits and error shapes for all three', async () => {
    const text = Buffer.from('this is not an image\n'.repeat(20));
    const truncated = (
      await sharp({ create: { width: 400, height: 300, channels: 3, background: '#888', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
        .jpeg()
        .toBuffer()
    ).subarray(0, 4000);
    const big = Buffer.alloc(5 * 1024 * 1024 + 1, 0x20);
    (await jpeg()).copy(big);
    const commands = [
      (Bytes: Uint8Array) => new DetectLabelsCommand({ Image: { Bytes } }),
      (Bytes: Uint8Array) => new DetectFacesCommand({ Image: { Bytes } }),
      (Bytes: Uint8Array) => new DetectTextCommand({ Image: { Bytes } }),
    ];
    for (const command of commands) {
      expect(await rejection(noRetry.send(command(text) as never))).toBeInstanceOf(InvalidImageFormatException);
      expect(await rejection(noRetry.send(command(truncated) as never))).toBeInstanceOf(InvalidImageFormatException);
      expect(await rejection(noRetry.send(command(await png(79, 200)) as never))).toBeInstanceOf(InvalidParameterException);
      expect(await rejection(noRetry.send(command(await png(10_001, 90)) as never))).toBeInstanceOf(ImageTooLargeException);
      expect((await rejection(noRetry.send(command(big) as never))).name).toBe('ValidationException');
    }
  });

  it('parameters out of range or outside the enums are ValidationException', async () => {
    const image = await png();
    const invalid = [
      new DetectLabelsCommand({ Image: { Bytes: image }, MinConfidence: 101 }),
      new DetectLabelsCommand({ Image: { Bytes: image }, MaxLabels: -1 }),
      new DetectLabelsCommand({ Image: { Bytes: image }, Features: ['COLOURS' as never] }),
      new DetectFacesCommand({ Image: { Bytes: image }, Attributes: ['HAIR' as never] }),
      new DetectTextCommand({ Image: { Bytes: image }, Filters: { WordFilter: { MinBoundingBoxHeight: 2 } } }),
    ];
    for (const command of invalid) {
      const err = await rejection(noRetry.send(command as never));
      expect(err.name).toBe('ValidationException');
      expect(err.message).toMatch(/^1 validation error detected: Value /);
    }
    expect(analyses).toHaveLength(0);
  });

  it('fault injection applies to them too', async () => {
    fault = () => detectorError('ThrottlingException');
    const err = await rejection(noRetry.send(new DetectFacesCommand({ Image: { Bytes: await png() } })));
    expect(err).toBeInstanceOf(ThrottlingException);
    expect(analyses).toHaveLength(0);
  });
});

describe('the JSON protocol without an SDK (what boto3 and the AWS CLI send)', () => {
  const post = (target: string, body: unknown) =>
    fetch(detector.endpoint, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': target,
        'X-Amz-Date': '20261125T120000Z',
        Authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/rekognition/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000',
      },
      body: JSON.stringify(body),
    });

  it('answers DetectModerationLabels with the documented shape', async () => {
    nextScores = EXPLICIT;
    const res = await post('RekognitionService.DetectModerationLabels', { Image: { Bytes: (await png()).toString('base64') }, MinConfidence: 50 });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['ContentTypes', 'ModerationLabels', 'ModerationModelVersion']);
    expect(body.ModerationLabels).toEqual([
      { Name: 'Explicit Nudity', ParentName: 'Explicit', TaxonomyLevel: 2, Confidence: expect.any(Number) },
      { Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: expect.any(Number) },
    ]);
  });

  it('answers errors in the AWS JSON error shape', async () => {
    const unknown = await post('RekognitionService.CompareFaces', {});
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ __type: 'UnknownOperationException' });

    const bad = await post('RekognitionService.DetectModerationLabels', { Image: { Bytes: Buffer.from('GIF89a....').toString('base64') } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-amzn-errortype')).toBe('InvalidImageFormatException');
    expect(await bad.json()).toEqual({ __type: 'InvalidImageFormatException', Code: 'InvalidImageFormatException', Message: 'Request has invalid image format' });

    const notJson = await fetch(detector.endpoint, { method: 'POST', headers: { 'X-Amz-Target': 'RekognitionService.DetectModerationLabels' }, body: '{nope' });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ __type: 'SerializationException' });

    const noImage = await post('RekognitionService.DetectModerationLabels', {});
    expect(await noImage.json()).toMatchObject({ __type: 'ValidationException' });
  });

  it('counts what it served', () => {
    const stats = detector.stats();
    expect(stats.requests).toBeGreaterThan(10);
    expect(stats.succeeded).toBeGreaterThan(5);
    expect(stats.errors.InvalidImageFormatException).toBeGreaterThan(0);
    expect(stats.inFlight).toBe(0);
  });
});
