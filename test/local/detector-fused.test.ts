/**
 * The fused model (local/detector/fused-model.ts: batch normalisation folded into the convolutions,
 * ReLU6 and padding fused) gives the scores of nsfwjs's MobileNetV2 as tfjs-layers runs it, on the
 * same decoded pixels: the samples, generated scenes (bench/scenes.ts) and the bench's own pictures.
 * The difference is float32 rounding (folding reorders a multiply-add), far below anything the
 * mapping or a policy threshold can see.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as TfCore from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { CLASS_NAMES, classifyPixels, decodeForModel, INPUT_SIZE, loadModel, loadModelArtifacts, type ClassScores } from '../../local/detector/classifier.ts';
import { compileKerasModel, UnsupportedLayerError } from '../../local/detector/fused-model.ts';
import { SAMPLES, SAMPLES_DIR } from '../../local/detector/make-samples.ts';
import { toModerationLabels } from '../../local/detector/mapping.ts';
import { gradientJpeg, sceneJpeg } from '../../bench/scenes.ts';

/** Largest difference of a class probability (0-1) allowed between the two. */
const EPSILON = 1e-5;

let tf: typeof TfCore;
let reference: LayersModel;

beforeAll(async () => {
  await loadModel(); // the backend (WASM) and the fused model
  tf = await import('@tensorflow/tfjs-core');
  const layers = await import('@tensorflow/tfjs-layers');
  const artifacts = await loadModelArtifacts();
  reference = await layers.loadLayersModel(tf.io.fromMemory(artifacts as never));
});

afterAll(() => reference?.dispose());

/** nsfwjs's way, through tfjs-layers: RGB / 255, one image, softmax. */
function referenceScores(rgb: Uint8Array): ClassScores {
  const input = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) input[i] = rgb[i]! / 255;
  const output = tf.tidy(() => reference.predict(tf.tensor4d(input, [1, INPUT_SIZE, INPUT_SIZE, 3])) as TfCore.Tensor);
  const probabilities = output.dataSync();
  output.dispose();
  return Object.fromEntries(CLASS_NAMES.map((name, i) => [name, probabilities[i]!])) as ClassScores;
}

async function pictures(): Promise<Array<{ name: string; bytes: Buffer }>> {
  const list: Array<{ name: string; bytes: Buffer }> = [];
  for (const sample of SAMPLES) if (sample.expect !== 'UNUSABLE') list.push({ name: sample.file, bytes: readFileSync(path.join(SAMPLES_DIR, sample.file)) });
  for (let seed = 1; seed <= 12; seed++) list.push({ name: `scene ${seed}`, bytes: await sceneJpeg(seed, { width: 640, height: 480 }) });
  for (let index = 0; index < 6; index++) list.push({ name: `bench picture ${index}`, bytes: await gradientJpeg(index) });
  return list;
}

describe('the fused MobileNetV2', () => {
  it('scores like tfjs-layers on samples, scenes and bench pictures (within float32 rounding)', async () => {
    for (const { name, bytes } of await pictures()) {
      const rgb = await decodeForModel(bytes);
      const fused = await classifyPixels(rgb);
      const expected = referenceScores(rgb);
      for (const label of CLASS_NAMES) {
        const difference = Math.abs(fused[label] - expected[label]);
        expect(difference, `${name}: ${label} ${fused[label]} vs ${expected[label]}`).toBeLessThan(EPSILON);
      }
      // What the endpoint answers: the same labels, confidences equal to far below their printed precision.
      const a = toModerationLabels(fused, { minConfidence: 0 });
      const b = toModerationLabels(expected, { minConfidence: 0 });
      expect(a.ModerationLabels.map((l) => l.Name)).toEqual(b.ModerationLabels.map((l) => l.Name));
      a.ModerationLabels.forEach((label, i) => expect(label.Confidence).toBeCloseTo(b.ModerationLabels[i]!.Confidence, 2));
    }
  });

  it('is deterministic: the same pixels give the same scores', async () => {
    const rgb = await decodeForModel(await sceneJpeg(3, { width: 640, height: 480 }));
    expect(await classifyPixels(rgb)).toEqual(await classifyPixels(rgb));
  });

  it('refuses a layer it does not know instead of guessing', () => {
    const config = {
      layers: [
        { class_name: 'InputLayer', config: { name: 'in' }, inbound_nodes: [] },
        { class_name: 'LSTM', config: { name: 'lstm' }, inbound_nodes: [[['in', 0, 0]]] },
      ],
      input_layers: [['in', 0, 0]],
      output_layers: [['lstm', 0, 0]],
    } as never;
    expect(() => compileKerasModel(tf, config, {})).toThrow(UnsupportedLayerError);
  });
});
