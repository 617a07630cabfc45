/**
 * The REAL model: nsfwjs MobileNetV2 on the tfjs WASM backend in worker threads, loaded from the
 * installed packages (nothing downloads). Two model loads in this file (about 1-2 s each): the
 * pool under test and the endpoint's own default pool.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DetectModerationLabelsCommand, InvalidImageFormatException, RekognitionClient } from '@aws-sdk/client-rekognition';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLASS_NAMES, InvalidImageError } from '../../local/detector/classifier.ts';
import { SAMPLES, SAMPLES_DIR } from '../../local/detector/make-samples.ts';
import { toModerationLabels } from '../../local/detector/mapping.ts';
import { createClassifierPool, type ClassifierPool } from '../../local/detector/pool.ts';
import { startDetectorEndpoint, type DetectorEndpoint } from '../../local/detector/server.ts';

let pool: ClassifierPool;
let detector: DetectorEndpoint;

beforeAll(async () => {
  pool = createClassifierPool({ size: 2, minWorkers: 1 });
  // The endpoint's default classifier: its own pool. Nothing is listening on the S3 endpoint: only bytes are sent here.
  detector = await startDetectorEndpoint({ s3: { endpoint: 'http://127.0.0.1:9' }, pool: { size: 1 } });
  await pool.ready();
});

afterAll(async () => {
  await detector?.close();
  await pool?.close();
});

const gradient = () =>
  sharp(
    Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">' +
        '<stop offset="0" stop-color="#0b3d91"/><stop offset="1" stop-color="#f4d35e"/></linearGradient></defs><rect width="320" height="240" fill="url(#g)"/></svg>',
    ),
  )
    .png()
    .toBuffer();

describe('the classifier pool (real model)', () => {
  it('loads the bundled model in a worker and scores an image', async () => {
    const scores = await pool.classify(await gradient());
    expect(Object.keys(scores).sort()).toEqual([...CLASS_NAMES].sort());
    const total = Object.values(scores).reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(1, 3);
    for (const p of Object.values(scores)) expect(p).toBeGreaterThanOrEqual(0);
    const stats = pool.stats();
    expect(stats).toMatchObject({ size: 2, workers: 1, ready: 1, completed: 1, failed: 0 });
    expect(stats.loadMs[0]).toBeGreaterThan(0);
  });

  it('is deterministic, queues concurrent requests and grows while they wait', async () => {
    const image = await sharp({ create: { width: 200, height: 150, channels: 3, background: '#777', noise: { type: 'gaussian', mean: 128, sigma: 50 } } })
      .jpeg()
      .toBuffer();
    const results = await Promise.all([pool.classify(image), pool.classify(image), pool.classify(image)]);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(pool.stats().workers).toBe(2); // a second worker was started for the queue (up to size)
  });

  it('rejects undecodable bytes with InvalidImageError and keeps serving', async () => {
    await expect(pool.classify(Buffer.from('not an image'))).rejects.toBeInstanceOf(InvalidImageError);
    await expect(pool.classify(readFileSync(path.join(SAMPLES_DIR, 'broken.jpg')))).rejects.toMatchObject({ name: 'InvalidImageFormatException' });
    await expect(pool.classify(await gradient())).resolves.toHaveProperty('Neutral');
  });
});

describe('the samples reach the branches samples/README.md lists', () => {
  // The standard policy's thresholds (functions/lib/policy-presets.ts): Explicit reject 80 / review 50,
  // Non-Explicit Nudity of Intimate parts and Kissing review 60.
  const verdict = (labels: { Name: string; Confidence: number }[]) => {
    const conf = (name: string) => labels.find((l) => l.Name === name)?.Confidence ?? 0;
    if (conf('Explicit') >= 80) return 'REJECT';
    if (conf('Explicit') >= 50 || conf('Non-Explicit Nudity of Intimate parts and Kissing') >= 60) return 'BORDERLINE';
    return 'APPROVE';
  };

  for (const sample of SAMPLES) {
    it(`${sample.file} -> ${sample.expect}`, async () => {
      const bytes = readFileSync(path.join(SAMPLES_DIR, sample.file));
      expect(bytes.length).toBeLessThan(100 * 1024);
      if (sample.expect === 'UNUSABLE') {
        await expect(pool.classify(bytes)).rejects.toBeInstanceOf(InvalidImageError);
        return;
      }
      const { ModerationLabels } = toModerationLabels(await pool.classify(bytes), { minConfidence: 50 });
      expect(verdict(ModerationLabels)).toBe(sample.expect);
    });
  }
});

describe('the endpoint with its default classifier (real model)', () => {
  it('answers the AWS SDK with a valid DetectModerationLabels response', async () => {
    const client = new RekognitionClient({ endpoint: detector.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    try {
      const image = await sharp(await gradient()).jpeg().toBuffer();
      const out = await client.send(new DetectModerationLabelsCommand({ Image: { Bytes: image }, MinConfidence: 0 }));
      expect(out.ModerationModelVersion).toBe('7.0');
      expect(Array.isArray(out.ModerationLabels)).toBe(true);
      expect(Array.isArray(out.ContentTypes)).toBe(true);
      for (const label of out.ModerationLabels!) {
        expect(typeof label.Name).toBe('string');
        expect(typeof label.ParentName).toBe('string');
        expect([1, 2, 3]).toContain(label.TaxonomyLevel);
        expect(label.Confidence).toBeGreaterThan(0);
        expect(label.Confidence).toBeLessThanOrEqual(100);
        expect(label.TaxonomyLevel === 1).toBe(label.ParentName === '');
      }
      // Every label's parent is in the response too.
      const names = new Set(out.ModerationLabels!.map((l) => l.Name));
      for (const label of out.ModerationLabels!) if (label.ParentName) expect(names.has(label.ParentName)).toBe(true);

      const broken = readFileSync(path.join(SAMPLES_DIR, 'broken.jpg'));
      await expect(client.send(new DetectModerationLabelsCommand({ Image: { Bytes: broken } }))).rejects.toBeInstanceOf(InvalidImageFormatException);
      expect(detector.stats()).toMatchObject({ succeeded: 1, errors: { InvalidImageFormatException: 1 } });
    } finally {
      client.destroy();
    }
  });
});
