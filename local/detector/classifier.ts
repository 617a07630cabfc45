/**
 * The offline image classifier behind the local Rekognition endpoint: nsfwjs MobileNetV2 (weights
 * bundled inside the nsfwjs package) on the TensorFlow.js WASM backend (the .wasm binaries come
 * from @tensorflow/tfjs-backend-wasm's dist folder), run as fused ops (fused-model.ts). Nothing is
 * downloaded, ever.
 *
 * Importing this module is cheap: tfjs, the backend and the model load on the first `classify()`
 * (or `loadModel()`), once per thread. The worker pool (pool.ts) runs one copy per worker thread.
 *
 * The model files are loaded through nsfwjs's ESM exports (dynamic `import()`): through CommonJS
 * the bundled weights take 5-46 s to load instead of well under a second.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import sharp from 'sharp';
import { compileKerasModel, type CompiledModel, type KerasFunctionalConfig } from './fused-model.ts';

/** The five nsfwjs classes, in the model's output order (nsfwjs's NSFW_CLASSES). */
export const CLASS_NAMES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'] as const;
export type ClassName = (typeof CLASS_NAMES)[number];
/** Softmax probabilities (0-1, summing to 1) for each nsfwjs class. */
export type ClassScores = Record<ClassName, number>;

/** MobileNetV2's input: 224 x 224 RGB. */
export const INPUT_SIZE = 224;
/** Largest image sharp is allowed to decode (pixels); Rekognition's own limit is 10,000 px a side. */
export const MAX_INPUT_PIXELS = 10_000 * 10_000;

/**
 * The bytes are not an image the classifier can decode (corrupt, truncated, not an image at all).
 * Its name is the Rekognition exception the endpoint answers with.
 */
export class InvalidImageError extends Error {
  override name = 'InvalidImageFormatException';

  constructor(message = 'Request has invalid image format', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Decodes an image to what MobileNetV2 takes: 224 x 224 x 3 RGB bytes, stretched to the square
 * (as nsfwjs does), EXIF orientation applied, transparency flattened onto black (what a browser
 * canvas hands nsfwjs for transparent pixels). Throws InvalidImageError when sharp cannot decode it.
 */
export async function decodeForModel(image: Uint8Array): Promise<Uint8Array> {
  try {
    const { data, info } = await sharp(image, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS, pages: 1 })
      .rotate()
      .flatten({ background: '#000000' })
      .toColourspace('srgb')
      .resize(INPUT_SIZE, INPUT_SIZE, { fit: 'fill' })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== INPUT_SIZE * INPUT_SIZE * 3) {
      throw new Error(`unexpected decode result: ${info.width}x${info.height}x${info.channels}`);
    }
    return data;
  } catch (err) {
    throw new InvalidImageError('Request has invalid image format', { cause: err });
  }
}

type Core = typeof import('@tensorflow/tfjs-core');
interface Loaded {
  tf: Core;
  model: CompiledModel;
  loadMs: number;
}

let loading: Promise<Loaded> | undefined;

/** Loads the WASM backend and MobileNetV2 once per thread; later calls return the same model. */
export function loadModel(): Promise<{ loadMs: number }> {
  return load().then(({ loadMs }) => ({ loadMs }));
}

/** nsfwjs's MobileNetV2 as tfjs stores it: the Keras topology, the weights' specs and their bytes. */
export interface ModelArtifacts {
  modelTopology: { model_config: { class_name: string; config: KerasFunctionalConfig } };
  weightSpecs: WeightsManifestEntry[];
  weightData: ArrayBuffer;
}
type WeightsManifestEntry = import('@tensorflow/tfjs-core').io.WeightsManifestEntry;

/**
 * The weights and topology of nsfwjs's own `nsfwjs/models/mobilenet_v2` export (bundled in the
 * package as base64), read without `nsfwjs.load()`: nsfwjs imports the whole of @tensorflow/tfjs
 * (CPU and WebGL backends, converter, data, layers), ~70 MB more per worker thread and a slower
 * start, for nothing the WASM backend uses.
 */
export async function loadModelArtifacts(): Promise<ModelArtifacts> {
  const { MobileNetV2Model } = await import('nsfwjs/models/mobilenet_v2');
  const modelJson = (await MobileNetV2Model.modelJson()).default as unknown as ModelArtifacts & { weightsManifest?: Array<{ weights: WeightsManifestEntry[] }> };
  const bundles: string[] = await Promise.all(MobileNetV2Model.weightBundles.map(async (bundle) => (await bundle()).default));
  const weightData = Buffer.concat(bundles.map((base64) => Buffer.from(base64, 'base64')));
  return {
    modelTopology: modelJson.modelTopology,
    weightSpecs: (modelJson.weightsManifest ?? []).flatMap((group) => group.weights),
    weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength) as ArrayBuffer,
  };
}

/**
 * The model runs as fused tfjs-core ops (fused-model.ts: batch normalisation folded into the
 * convolutions, ReLU6 and padding fused), not through tfjs-layers: the same scores within float32
 * rounding in well under half the CPU time. The preprocessing is nsfwjs's: RGB / 255, 224 x 224;
 * the output is its softmax.
 */
function load(): Promise<Loaded> {
  loading ??= (async () => {
    const started = performance.now();
    const [tf, wasm, artifacts] = await Promise.all([import('@tensorflow/tfjs-core'), import('@tensorflow/tfjs-backend-wasm'), loadModelArtifacts()]);
    wasm.setWasmPaths(wasmDirectory());
    if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs WASM backend failed to initialise');
    await tf.ready();
    tf.enableProdMode();
    const config = artifacts.modelTopology.model_config;
    if (config.class_name !== 'Model' && config.class_name !== 'Functional') throw new Error(`unexpected model class ${config.class_name}`);
    const model = compileKerasModel(tf, config.config, tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs));
    // Warm up (the first inference compiles the kernels), as nsfwjs does.
    tf.tidy(() => {
      model.predict(tf.zeros([1, INPUT_SIZE, INPUT_SIZE, 3]));
    });
    return { tf, model, loadMs: performance.now() - started };
  })();
  loading.catch(() => {
    loading = undefined; // let a later call try again
  });
  return loading;
}

/** The folder holding tfjs-backend-wasm's .wasm binaries, inside node_modules (a path, with trailing separator). */
export function wasmDirectory(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + path.sep;
}

/** Classifies 224 x 224 RGB bytes (from decodeForModel). */
export async function classifyPixels(rgb: Uint8Array): Promise<ClassScores> {
  const { tf, model } = await load();
  const input = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) input[i] = rgb[i] / 255;
  const output = tf.tidy(() => model.predict(tf.tensor4d(input, [1, INPUT_SIZE, INPUT_SIZE, 3])));
  try {
    const probabilities = await output.data();
    const scores = {} as ClassScores;
    CLASS_NAMES.forEach((name, i) => (scores[name] = probabilities[i]));
    return scores;
  } finally {
    output.dispose();
  }
}

/**
 * Classifies one image (any format sharp decodes) on this thread. Throws InvalidImageError for
 * bytes that are not a decodable image. For concurrency use the worker pool (pool.ts).
 */
export async function classify(image: Uint8Array): Promise<ClassScores> {
  const [rgb] = await Promise.all([decodeForModel(image), load()]);
  return classifyPixels(rgb);
}
