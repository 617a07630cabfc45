/**
 * One classifier worker thread (started by pool.ts through worker.mjs): loads the model once, then
 * answers `{ id, input: image }` messages with `{ id, output: scores }` or `{ id, error }`, one at a time.
 */
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { classify, loadModel, type ClassScores } from './classifier.ts';
import { serializeError, threadCpuMs, type WorkerReply, type WorkerRequest } from './pool.ts';

const port = parentPort;
if (!port) throw new Error('worker.ts runs inside a worker thread (see pool.ts)');

// One image at a time per worker: libvips threads would only compete with the other workers, and
// its operation cache would hold decoded images for nothing.
sharp.concurrency(1);
sharp.cache(false);

try {
  const { loadMs } = await loadModel();
  port.postMessage({ type: 'ready', loadMs } satisfies WorkerReply<ClassScores>);
} catch (err) {
  port.postMessage({ type: 'failed', error: serializeError(err) } satisfies WorkerReply<ClassScores>);
}

port.on('message', async ({ id, input }: WorkerRequest<Uint8Array>) => {
  const started = performance.now();
  const cpuBefore = threadCpuMs();
  try {
    const output = await classify(input);
    const cpuAfter = threadCpuMs();
    const cpuMs = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
    port.postMessage({ id, output, ms: performance.now() - started, ...(cpuMs !== undefined ? { cpuMs } : {}) } satisfies WorkerReply<ClassScores>);
  } catch (err) {
    port.postMessage({ id, error: serializeError(err) } satisfies WorkerReply<ClassScores>);
  }
});
