/**
 * A pool of model worker threads. Each worker loads its model once and then serves one request at
 * a time; requests wait in a FIFO queue for the next free worker. The pool grows up to one worker
 * per available core (`size`), but only when requests are waiting: each worker costs ~200 MB of
 * RSS, so a quiet local stack keeps one (`minWorkers`).
 *
 * Two kinds of worker use it: the classifier (worker.mjs -> worker.ts: nsfwjs MobileNetV2, for
 * DetectModerationLabels; createClassifierPool) and the analysis worker (analysis-worker.mjs ->
 * analysis-worker.ts: labels, faces and text; analysis-pool.ts). Both speak the protocol of
 * WorkerRequest / WorkerReply below.
 *
 * A worker that dies is replaced (its in-flight request fails with InternalServerError); a worker
 * that cannot load the model fails the queued and later requests instead of being restarted in a loop.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { InvalidImageError, type ClassScores } from './classifier.ts';

/** What a pool sends a worker: one request. */
export type WorkerRequest<I> = { id: number; input: I };
/** What a worker answers: once `ready` (or `failed`), then one reply per request. */
export type WorkerReply<O> =
  | { type: 'ready'; loadMs: number }
  | { type: 'failed'; error: SerializedError }
  | { id: number; output: O; ms: number; cpuMs?: number }
  | { id: number; error: SerializedError };
export type SerializedError = { name: string; message: string };

/**
 * CPU time this thread has used so far, ms (Linux: /proc/thread-self/schedstat); undefined where a
 * thread's own CPU time cannot be read (process.cpuUsage() counts every thread of the process).
 */
export function threadCpuMs(): number | undefined {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return undefined;
  }
}

export function serializeError(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message };
}

export interface ClassifierPoolOptions {
  /** Most worker threads; default os.availableParallelism(), at least 1. */
  size?: number;
  /** Workers started right away (and kept); more start while requests wait. Default 1 (at most `size`). */
  minWorkers?: number;
  /** Fail a request whose classification takes longer than this (the worker is replaced). Default 60 s. */
  taskTimeoutMs?: number;
}

export interface ClassifierPoolStats {
  /** Most workers. */
  size: number;
  /** Workers running now (loading or loaded). */
  workers: number;
  /** Workers that have loaded the model. */
  ready: number;
  busy: number;
  queued: number;
  completed: number;
  failed: number;
  /** Worker replacements after a crash or timeout. */
  restarts: number;
  /** Model load time of each worker that loaded it (ms). */
  loadMs: number[];
  /** Mean time a worker spent on one image (decode + inference), ms. */
  meanClassifyMs: number;
  /** CPU time the worker threads spent on the requests they answered, ms (0 where threadCpuMs() cannot tell). */
  cpuMs: number;
}

export interface ClassifierPool {
  /** Scores one image (JPEG, PNG or anything sharp decodes). Rejects with InvalidImageError for undecodable bytes. */
  classify(image: Uint8Array): Promise<ClassScores>;
  /** Resolves once the first `minWorkers` workers have loaded the model; rejects if one cannot. */
  ready(): Promise<void>;
  stats(): ClassifierPoolStats;
  /** Terminates the workers; queued and in-flight requests are rejected. */
  close(): Promise<void>;
}

/** A pool of any worker that speaks WorkerRequest / WorkerReply. */
export interface WorkerPool<I, O> {
  run(input: I): Promise<O>;
  ready(): Promise<void>;
  stats(): ClassifierPoolStats;
  close(): Promise<void>;
}

/** Raised for requests the pool could not serve (worker crash, timeout, closed pool, model load failure). */
export class ClassifierUnavailableError extends Error {
  override name = 'InternalServerError';
}

const WORKER_URL = new URL('./worker.mjs', import.meta.url);

interface Task<I, O> {
  id: number;
  input: I;
  resolve: (output: O) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

interface Slot<I, O> {
  worker: Worker;
  ready: boolean;
  task?: Task<I, O>;
}

/** nsfwjs MobileNetV2 in worker threads (DetectModerationLabels). */
export function createClassifierPool(options: ClassifierPoolOptions = {}): ClassifierPool {
  const pool = createWorkerPool<Uint8Array, ClassScores>(WORKER_URL, 'classifier', options);
  return { classify: (image) => pool.run(image), ready: pool.ready, stats: pool.stats, close: pool.close };
}

/**
 * A pool of the worker at `workerUrl` (a module that answers WorkerRequest<I> with WorkerReply<O>).
 * `what` names it in error messages ("the classifier worker could not start").
 */
export function createWorkerPool<I, O>(workerUrl: URL, what: string, options: ClassifierPoolOptions = {}): WorkerPool<I, O> {
  const size = Math.max(1, Math.floor(options.size ?? os.availableParallelism()));
  const minWorkers = Math.min(size, Math.max(1, Math.floor(options.minWorkers ?? 1)));
  const taskTimeoutMs = options.taskTimeoutMs ?? 60_000;
  const slots = new Set<Slot<I, O>>();
  const queue: Task<I, O>[] = [];
  let nextId = 1;
  let closed = false;
  let fatal: Error | undefined;
  const counters = { completed: 0, failed: 0, restarts: 0, classifyMs: 0, cpuMs: 0 };
  const loadTimes: number[] = [];

  let readyCount = 0;
  let settleReady!: { resolve: () => void; reject: (err: Error) => void };
  const allReady = new Promise<void>((resolve, reject) => (settleReady = { resolve, reject }));
  allReady.catch(() => {}); // observed through ready() or classify()

  for (let i = 0; i < minWorkers; i++) spawn();

  function spawn(): void {
    const worker = new Worker(workerUrl, { stdout: false, stderr: false });
    const slot: Slot<I, O> = { worker, ready: false };
    slots.add(slot);
    worker.on('message', (reply: WorkerReply<O>) => onReply(slot, reply));
    worker.on('error', (err) => onExit(slot, err));
    worker.on('exit', (code) => onExit(slot, new Error(`${what} worker exited with code ${code}`)));
  }

  function onReply(slot: Slot<I, O>, reply: WorkerReply<O>): void {
    if ('type' in reply) {
      if (reply.type === 'ready') {
        slot.ready = true;
        loadTimes.push(reply.loadMs);
        if (++readyCount >= minWorkers) settleReady.resolve();
        dispatch();
      } else {
        fail(new ClassifierUnavailableError(`the ${what} model could not be loaded: ${reply.error.message}`));
      }
      return;
    }
    const task = slot.task;
    if (!task || task.id !== reply.id) return;
    slot.task = undefined;
    clearTimeout(task.timer);
    if ('output' in reply) {
      counters.completed++;
      counters.classifyMs += reply.ms;
      counters.cpuMs += reply.cpuMs ?? 0;
      task.resolve(reply.output);
    } else {
      counters.failed++;
      task.reject(revive(reply.error));
    }
    dispatch();
  }

  function onExit(slot: Slot<I, O>, err: Error): void {
    if (!slots.delete(slot)) return; // 'error' is followed by 'exit': handle once
    const task = slot.task;
    slot.task = undefined;
    if (task) {
      clearTimeout(task.timer);
      counters.failed++;
      task.reject(new ClassifierUnavailableError(`${what} worker failed: ${err.message}`));
    }
    if (closed || fatal) return;
    if (!slot.ready) {
      // It died before loading the model: restarting would most likely die the same way.
      fail(new ClassifierUnavailableError(`the ${what} worker could not start: ${err.message}`));
      return;
    }
    counters.restarts++;
    readyCount--;
    if (slots.size < minWorkers) spawn();
    grow();
  }

  /** Starts another worker when requests wait that neither an idle worker nor one still loading will take. */
  function grow(): void {
    let idle = 0;
    let loading = 0;
    for (const slot of slots) {
      if (!slot.ready) loading++;
      else if (!slot.task) idle++;
    }
    if (queue.length > idle + loading && slots.size < size) spawn();
  }

  function fail(err: Error): void {
    if (fatal) return;
    fatal = err;
    settleReady.reject(err);
    for (const task of queue.splice(0)) task.reject(err);
    void terminateAll();
  }

  function dispatch(): void {
    for (const slot of slots) {
      if (!queue.length) return;
      if (!slot.ready || slot.task) continue;
      const task = queue.shift()!;
      slot.task = task;
      task.timer = setTimeout(() => {
        // A stuck worker: fail the request and replace the worker.
        void slot.worker.terminate();
        onExit(slot, new Error(`timed out after ${taskTimeoutMs} ms`));
      }, taskTimeoutMs);
      // A copy, not a transfer: the caller's Buffer may be a slice of a shared pool.
      slot.worker.postMessage({ id: task.id, input: task.input } satisfies WorkerRequest<I>);
    }
  }

  async function terminateAll(): Promise<void> {
    const workers = [...slots].map((slot) => slot.worker);
    slots.clear();
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  return {
    run(input: I): Promise<O> {
      if (closed) return Promise.reject(new ClassifierUnavailableError(`the ${what} pool is closed`));
      if (fatal) return Promise.reject(fatal);
      return new Promise<O>((resolve, reject) => {
        queue.push({ id: nextId++, input, resolve, reject });
        dispatch();
        grow();
      });
    },
    ready: () => allReady,
    stats(): ClassifierPoolStats {
      let busy = 0;
      let ready = 0;
      for (const slot of slots) {
        if (slot.task) busy++;
        if (slot.ready) ready++;
      }
      return {
        size,
        workers: slots.size,
        ready,
        busy,
        queued: queue.length,
        completed: counters.completed,
        failed: counters.failed,
        restarts: counters.restarts,
        loadMs: [...loadTimes],
        meanClassifyMs: counters.completed ? counters.classifyMs / counters.completed : 0,
        cpuMs: counters.cpuMs,
      };
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      const err = new ClassifierUnavailableError(`the ${what} pool is closed`);
      for (const task of queue.splice(0)) task.reject(err);
      for (const slot of slots) {
        if (slot.task) {
          clearTimeout(slot.task.timer);
          slot.task.reject(err);
          slot.task = undefined;
        }
      }
      settleReady.reject(err);
      await terminateAll();
    },
  };
}

function revive(error: SerializedError): Error {
  if (error.name === 'InvalidImageFormatException') return new InvalidImageError(error.message);
  const err = new Error(error.message);
  err.name = error.name;
  return err;
}
