/**
 * The analysis worker threads behind DetectLabels, DetectFaces and DetectText (analyzers.ts),
 * in the same kind of pool as the moderation classifier (pool.ts). The endpoint creates it on the
 * first analysis request, so `npm start` and a stack that only moderates never start it; each
 * worker loads human (objects and faces) or Tesseract (text) on the first request that needs it.
 *
 * One worker by default: each holds human's models, the WASM heap and a Tesseract thread (see
 * docs/local-runtime.md, "Measured (analysis)"), and analysis is asked for less often than moderation.
 */
import type { AnalysisInput, AnalysisOutput } from './analyzers.ts';
import { createWorkerPool, type ClassifierPoolOptions, type WorkerPool } from './pool.ts';

export type AnalysisPool = WorkerPool<AnalysisInput, AnalysisOutput>;

const WORKER_URL = new URL('./analysis-worker.mjs', import.meta.url);

export function createAnalysisPool(options: ClassifierPoolOptions = {}): AnalysisPool {
  return createWorkerPool<AnalysisInput, AnalysisOutput>(WORKER_URL, 'analysis', { size: 1, ...options });
}
