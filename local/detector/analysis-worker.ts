/**
 * One analysis worker thread (started by analysis-pool.ts through analysis-worker.mjs): ready at
 * once, it loads each model on the first request that needs it (analyzers.ts: human for labels and
 * faces, Tesseract for text), then answers `{ id, input }` with `{ id, output }` or `{ id, error }`,
 * one request at a time.
 */
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { analyze, type AnalysisInput, type AnalysisOutput } from './analyzers.ts';
import { serializeError, type WorkerReply, type WorkerRequest } from './pool.ts';

const port = parentPort;
if (!port) throw new Error('analysis-worker.ts runs inside a worker thread (see analysis-pool.ts)');

sharp.concurrency(1);
sharp.cache(false);

port.postMessage({ type: 'ready', loadMs: 0 } satisfies WorkerReply<AnalysisOutput>);

// Terminating this thread (the pool's close()) also ends the Tesseract thread it started.
port.on('message', async ({ id, input }: WorkerRequest<AnalysisInput>) => {
  const started = performance.now();
  try {
    const output = await analyze(input);
    port.postMessage({ id, output, ms: performance.now() - started } satisfies WorkerReply<AnalysisOutput>);
  } catch (err) {
    port.postMessage({ id, error: serializeError(err) } satisfies WorkerReply<AnalysisOutput>);
  }
});
