/**
 * The offline models behind DetectLabels, DetectFaces and DetectText at the local detector
 * (docs/local-runtime.md, "Labels, faces and text"). They run in the analysis worker thread
 * (analysis-worker.ts, started by analysis-pool.ts on the first analysis request), never in the
 * endpoint's own thread: the WASM backend computes on the thread that calls it.
 *
 * - Objects and faces: @vladmandic/human (MIT) on the TensorFlow.js WASM backend, its models from
 *   its own `models/` folder: CenterNet (COCO-80 objects); BlazeFace, the face mesh with irises,
 *   FaceRes (age, gender) and its emotion model. Its `dist/human.node-wasm.js` is loaded by file
 *   path (the package's exports map hides it), with the project's own tfjs-core and
 *   tfjs-backend-wasm. Human reads models with `fetch`, and Node's fetch refuses file:// URLs: a
 *   small shim, installed in this thread only, reads them from disk.
 * - Text: tesseract.js (Apache-2.0) with @tesseract.js-data/eng's `4.0.0_best_int` model, read from
 *   node_modules (`langPath`, `cacheMethod: 'none'`: nothing is fetched or cached). Tesseract runs
 *   in its own worker thread, started by tesseract.js inside this one.
 *
 * Each model loads once per thread on its first use; importing this module loads nothing.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { InvalidImageError, MAX_INPUT_PIXELS } from './classifier.ts';
import { MAX_FACES, toFaceDetails, type FaceAttribute, type FaceObservation } from './faces.ts';
import { round, toDetectLabelsOutput, type DetectLabelsOutput, type ImageQuality, type LabelsOptions, type ObjectDetection } from './labels.ts';
import { toDetectTextOutput, type DetectTextOutput, type OcrLine, type TextFilters } from './text.ts';

/** One analysis, as the endpoint hands it to the worker (the request already validated). */
export type AnalysisInput =
  | { operation: 'DetectLabels'; image: Uint8Array; options: LabelsOptions; imageProperties: boolean; generalLabels: boolean }
  | { operation: 'DetectFaces'; image: Uint8Array; attributes?: FaceAttribute[] }
  | { operation: 'DetectText'; image: Uint8Array; filters?: TextFilters };
export type AnalysisOperation = AnalysisInput['operation'];
/** The response body of the operation. */
export type AnalysisOutput = DetectLabelsOutput | { FaceDetails: ReturnType<typeof toFaceDetails> } | DetectTextOutput;

/** Longest side the object and face models are given (larger images are scaled down first: memory). */
export const MODEL_MAX_SIDE = 1280;
/** Longest side Tesseract is given. */
export const OCR_MAX_SIDE = 2000;

export async function analyze(input: AnalysisInput): Promise<AnalysisOutput> {
  switch (input.operation) {
    case 'DetectLabels': {
      const pixels = await decode(input.image, MODEL_MAX_SIDE);
      const detections = input.generalLabels ? await detectObjects(pixels) : [];
      const output: DetectLabelsOutput = input.generalLabels ? toDetectLabelsOutput(detections, input.options) : { Labels: [], LabelModelVersion: toDetectLabelsOutput([]).LabelModelVersion };
      if (input.imageProperties) output.ImageProperties = { Quality: await quality(pixels) };
      return output;
    }
    case 'DetectFaces': {
      const pixels = await decode(input.image, MODEL_MAX_SIDE);
      return { FaceDetails: toFaceDetails(await detectFaces(pixels), input.attributes) };
    }
    case 'DetectText':
      return readText(input.image, input.filters);
  }
}

/** Decoded RGB pixels (EXIF orientation applied, at most `maxSide` px a side). */
export interface Pixels {
  data: Buffer;
  width: number;
  height: number;
}

async function decode(image: Uint8Array, maxSide: number): Promise<Pixels> {
  try {
    const { data, info } = await sharp(image, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS, pages: 1 })
      .rotate()
      .resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#000000' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height };
  } catch (err) {
    throw new InvalidImageError('Request has invalid image format', { cause: err });
  }
}

// ---- @vladmandic/human ----------------------------------------------------------------------

type HumanModule = typeof import('@vladmandic/human');
type Human = InstanceType<HumanModule['Human']>;
type HumanConfig = ConstructorParameters<HumanModule['Human']>[0];

let humanLoading: Promise<Human> | undefined;
const require = createRequire(import.meta.url);

/** The folder of the installed @vladmandic/human package. */
export function humanDirectory(): string {
  return path.resolve(path.dirname(require.resolve('@vladmandic/human')), '..');
}

/** Both model families off: each detect() call turns on the one it needs (human loads a model on its first use). */
const HUMAN_BASE: Partial<NonNullable<HumanConfig>> = {
  backend: 'wasm',
  debug: false,
  async: true,
  warmup: 'none',
  // No frame cache and no skipped frames: every image is a new image, not the next video frame.
  cacheSensitivity: 0,
  filter: { enabled: false },
  body: { enabled: false },
  hand: { enabled: false },
  gesture: { enabled: false },
  segmentation: { enabled: false },
  face: { enabled: false },
  object: { enabled: false },
};

const OBJECTS_ON: Partial<NonNullable<HumanConfig>> = {
  face: { enabled: false },
  object: { enabled: true, minConfidence: 0.2, maxDetected: 50, skipFrames: 0, skipTime: 0 },
};

const FACES_ON: Partial<NonNullable<HumanConfig>> = {
  object: { enabled: false },
  face: {
    enabled: true,
    detector: { enabled: true, rotation: true, maxDetected: MAX_FACES, minConfidence: 0.2, skipFrames: 0, skipTime: 0, return: false },
    mesh: { enabled: true },
    iris: { enabled: true, skipFrames: 0, skipTime: 0 },
    attention: { enabled: false },
    description: { enabled: true, minConfidence: 0, skipFrames: 0, skipTime: 0 },
    emotion: { enabled: true, minConfidence: 0, skipFrames: 0, skipTime: 0 },
    antispoof: { enabled: false },
    liveness: { enabled: false },
  },
};

function loadHuman(): Promise<Human> {
  humanLoading ??= (async () => {
    installFileFetch();
    const dir = humanDirectory();
    const { Human } = require(path.join(dir, 'dist', 'human.node-wasm.js')) as HumanModule;
    const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    const human = new Human({
      ...HUMAN_BASE,
      wasmPath: pathToFileURL(wasmDir).href + '/',
      modelBasePath: pathToFileURL(path.join(dir, 'models')).href + '/',
    } as HumanConfig);
    await human.init();
    if (human.tf.getBackend() !== 'wasm') throw new Error(`human started the ${human.tf.getBackend()} backend, not wasm`);
    return human;
  })();
  humanLoading.catch(() => {
    humanLoading = undefined; // a later request tries again
  });
  return humanLoading;
}

/** Node's fetch refuses file:// URLs; human fetches its models and the .wasm binary by URL. */
function installFileFetch(): void {
  const original = globalThis.fetch;
  if ((original as { fileShim?: boolean }).fileShim) return;
  const shim = async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith('file://')) return original(input, init);
    try {
      const bytes = await readFile(fileURLToPath(url));
      const type = url.endsWith('.wasm') ? 'application/wasm' : url.endsWith('.json') ? 'application/json' : 'application/octet-stream';
      return new Response(bytes, { status: 200, headers: { 'Content-Type': type } });
    } catch {
      return new Response(null, { status: 404, statusText: `not found: ${url}` });
    }
  };
  globalThis.fetch = Object.assign(shim, { fileShim: true }) as typeof fetch;
}

async function runHuman(pixels: Pixels, config: Partial<NonNullable<HumanConfig>>) {
  const human = await loadHuman();
  const tensor = human.tf.tensor(new Uint8Array(pixels.data.buffer, pixels.data.byteOffset, pixels.data.byteLength), [1, pixels.height, pixels.width, 3], 'int32');
  try {
    // detect() merges its config into the instance's: both families are set on every call.
    return await human.detect(tensor as never, config as HumanConfig);
  } finally {
    tensor.dispose();
  }
}

/** COCO-80 objects (CenterNet), boxes as ratios of the image. */
export async function detectObjects(pixels: Pixels): Promise<ObjectDetection[]> {
  const result = await runHuman(pixels, OBJECTS_ON);
  return result.object.map((object) => ({
    label: object.label,
    score: object.score,
    box: { Left: object.boxRaw[0], Top: object.boxRaw[1], Width: object.boxRaw[2], Height: object.boxRaw[3] },
  }));
}

/** Faces with their mesh, age, gender, emotions and rotation, and the brightness and sharpness of their pixels. */
export async function detectFaces(pixels: Pixels): Promise<FaceObservation[]> {
  const result = await runHuman(pixels, FACES_ON);
  const faces: FaceObservation[] = [];
  for (const face of result.face) {
    const [x, y, w, h] = face.boxRaw;
    faces.push({
      score: face.score,
      box: { Left: x, Top: y, Width: w, Height: h },
      mesh: face.mesh.map((point) => [point[0] / pixels.width, point[1] / pixels.height] as [number, number]),
      age: face.age,
      gender: face.gender === 'female' || face.gender === 'male' ? face.gender : undefined,
      genderScore: face.genderScore,
      emotions: face.emotion?.map((e) => ({ emotion: e.emotion, score: e.score })),
      rotation: face.rotation?.angle,
      quality: await faceQuality(pixels, face.boxRaw),
    });
  }
  return faces;
}

async function faceQuality(pixels: Pixels, [x, y, w, h]: [number, number, number, number]): Promise<{ Brightness: number; Sharpness: number }> {
  const left = Math.max(0, Math.floor(x * pixels.width));
  const top = Math.max(0, Math.floor(y * pixels.height));
  const width = Math.min(pixels.width - left, Math.ceil(w * pixels.width));
  const height = Math.min(pixels.height - top, Math.ceil(h * pixels.height));
  if (width < 3 || height < 3) return { Brightness: 50, Sharpness: 0 };
  const { Brightness, Sharpness } = await quality(pixels, { left, top, width, height });
  return { Brightness, Sharpness };
}

/**
 * Brightness (mean luminance), contrast (its standard deviation) and sharpness (the standard
 * deviation of the Laplacian), each on a 0-100 scale of our own: Rekognition does not document how
 * it computes its quality scores, so these are comparable between images here, not with AWS's.
 */
export async function quality(pixels: Pixels, region?: { left: number; top: number; width: number; height: number }): Promise<ImageQuality> {
  const grey = () => {
    const image = sharp(pixels.data, { raw: { width: pixels.width, height: pixels.height, channels: 3 } });
    return (region ? image.extract(region) : image).greyscale();
  };
  const [luminance] = (await grey().stats()).channels;
  const edges = await sharp(await grey().raw().toBuffer(), { raw: { width: region?.width ?? pixels.width, height: region?.height ?? pixels.height, channels: 1 } })
    .convolve({ width: 3, height: 3, kernel: [0, 1, 0, 1, -4, 1, 0, 1, 0], offset: 128 })
    .stats();
  return {
    Brightness: round((luminance.mean / 255) * 100),
    Sharpness: round(100 * (1 - Math.exp(-edges.channels[0].stdev / 12))),
    Contrast: round(Math.min(100, (luminance.stdev / 128) * 100)),
  };
}

// ---- tesseract.js ---------------------------------------------------------------------------

type TesseractWorker = Awaited<ReturnType<typeof import('tesseract.js')['createWorker']>>;
let tesseractLoading: Promise<TesseractWorker> | undefined;

/** The trained English model inside @tesseract.js-data/eng (LSTM, 8-bit integer weights, gzipped). */
export function tesseractLangPath(): string {
  return path.join(path.dirname(require.resolve('@tesseract.js-data/eng/package.json')), '4.0.0_best_int');
}

function loadTesseract(): Promise<TesseractWorker> {
  tesseractLoading ??= (async () => {
    const { createWorker, OEM } = await import('tesseract.js');
    const worker = await createWorker('eng', OEM.LSTM_ONLY, { langPath: tesseractLangPath(), gzip: true, cacheMethod: 'none' });
    // Tesseract's own diagnostics ("Image too small to scale!!") would land on the endpoint's stderr.
    await worker.setParameters({ debug_file: '/dev/null' } as never);
    return worker;
  })();
  tesseractLoading.catch(() => {
    tesseractLoading = undefined;
  });
  return tesseractLoading;
}

/** Tesseract's lines and words; the image re-encoded as a plain PNG (no ICC profile warnings from leptonica). */
export async function readText(image: Uint8Array, filters?: TextFilters): Promise<DetectTextOutput> {
  let png: Buffer;
  let width: number;
  let height: number;
  try {
    const { data, info } = await sharp(image, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS, pages: 1 })
      .rotate()
      .resize(OCR_MAX_SIDE, OCR_MAX_SIDE, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .png({ compressionLevel: 1 })
      .toBuffer({ resolveWithObject: true });
    ({ width, height } = info);
    png = data;
  } catch (err) {
    throw new InvalidImageError('Request has invalid image format', { cause: err });
  }
  const worker = await loadTesseract();
  const { data } = await worker.recognize(png, {}, { blocks: true, text: false });
  const lines: OcrLine[] = [];
  for (const block of data.blocks ?? []) {
    for (const paragraph of block.paragraphs) {
      for (const line of paragraph.lines) {
        lines.push({ bbox: line.bbox, words: line.words.map((word) => ({ text: word.text, confidence: word.confidence, bbox: word.bbox })) });
      }
    }
  }
  return toDetectTextOutput(lines, { width, height }, filters);
}
