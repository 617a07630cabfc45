/**
 * One classifier worker thread (started by pool.ts through worker.mjs): loads the model once, then
 * answers `{ id, image }` messages with `{ id, scores }` or `{ id, error }`, one at a time.
 */
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { classify, loadModel, type ClassScores } from './classifier.ts';

export type WorkerRequest = { id: number; image: Uint8Array };
export type WorkerReply =
  | { type: 'ready'; loadMs: number }
  | { type: 'failed'; error: SerializedError }
  | { id: number; scores: ClassScores; ms: number }
  | { id: number; error: SerializedError };
export type SerializedError = { name: string; message: string };

const port = parentPort;
if (!port) throw new Error('worker.ts runs inside a worker thread (see pool.ts)');

// One image at a time per worker: libvips threads would only compete with the other workers, and
// its operation cache would hold decoded images for nothing.
sharp.concurrency(1);
sharp.cache(false);

try {
  const { loadMs } = await loadModel();
  port.postMessage({ type: 'ready', loadMs } satisfies WorkerReply);
} catch (err) {
  port.postMessage({ type: 'failed', error: serialize(err) } satisfies WorkerReply);
}

port.on('message', async ({ id, image }: WorkerRequest) => {
  const started = performance.now();
  try {
    const scores = await classify(image);
    port.postMessage({ id, scores, ms: performance.now() - started } satisfies WorkerReply);
  } catch (err) {
    port.postMessage({ id, error: serialize(err) } satisfies WorkerReply);
  }
});

function serialize(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message };
}
