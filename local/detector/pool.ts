/**
 * A pool of classifier worker threads. Each worker loads MobileNetV2 once (about a second) and then
 * decodes and classifies one image at a time; requests wait in a FIFO queue for the next free
 * worker. The pool grows up to one worker per available core (`size`), but only when requests are
 * waiting: each worker costs ~200 MB of RSS, so a quiet local stack keeps one (`minWorkers`).
 *
 * A worker that dies is replaced (its in-flight request fails with InternalServerError); a worker
 * that cannot load the model fails the queued and later requests instead of being restarted in a loop.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { InvalidImageError, type ClassScores } from './classifier.ts';
import type { SerializedError, WorkerReply } from './worker.ts';

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

/** Raised for requests the pool could not serve (worker crash, timeout, closed pool, model load failure). */
export class ClassifierUnavailableError extends Error {
  override name = 'InternalServerError';
}

const WORKER_URL = new URL('./worker.mjs', import.meta.url);

interface Task {
  id: number;
  image: Uint8Array;
  resolve: (scores: ClassScores) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task?: Task;
}

export function createClassifierPool(options: ClassifierPoolOptions = {}): ClassifierPool {
  const size = Math.max(1, Math.floor(options.size ?? os.availableParallelism()));
  const minWorkers = Math.min(size, Math.max(1, Math.floor(options.minWorkers ?? 1)));
  const taskTimeoutMs = options.taskTimeoutMs ?? 60_000;
  const slots = new Set<Slot>();
  const queue: Task[] = [];
  let nextId = 1;
  let closed = false;
  let fatal: Error | undefined;
  const counters = { completed: 0, failed: 0, restarts: 0, classifyMs: 0 };
  const loadTimes: number[] = [];

  let readyCount = 0;
  let settleReady!: { resolve: () => void; reject: (err: Error) => void };
  const allReady = new Promise<void>((resolve, reject) => (settleReady = { resolve, reject }));
  allReady.catch(() => {}); // observed through ready() or classify()

  for (let i = 0; i < minWorkers; i++) spawn();

  function spawn(): void {
    const worker = new Worker(WORKER_URL, { stdout: false, stderr: false });
    const slot: Slot = { worker, ready: false };
    slots.add(slot);
    worker.on('message', (reply: WorkerReply) => onReply(slot, reply));
    worker.on('error', (err) => onExit(slot, err));
    worker.on('exit', (code) => onExit(slot, new Error(`classifier worker exited with code ${code}`)));
  }

  function onReply(slot: Slot, reply: WorkerReply): void {
    if ('type' in reply) {
      if (reply.type === 'ready') {
        slot.ready = true;
        loadTimes.push(reply.loadMs);
        if (++readyCount >= minWorkers) settleReady.resolve();
        dispatch();
      } else {
        fail(new ClassifierUnavailableError(`the classifier model could not be loaded: ${reply.error.message}`));
      }
      return;
    }
    const task = slot.task;
    if (!task || task.id !== reply.id) return;
    slot.task = undefined;
    clearTimeout(task.timer);
    if ('scores' in reply) {
      counters.completed++;
      counters.classifyMs += reply.ms;
      task.resolve(reply.scores);
    } else {
      counters.failed++;
      task.reject(revive(reply.error));
    }
    dispatch();
  }

  function onExit(slot: Slot, err: Error): void {
    if (!slots.delete(slot)) return; // 'error' is followed by 'exit': handle once
    const task = slot.task;
    slot.task = undefined;
    if (task) {
      clearTimeout(task.timer);
      counters.failed++;
      task.reject(new ClassifierUnavailableError(`classifier worker failed: ${err.message}`));
    }
    if (closed || fatal) return;
    if (!slot.ready) {
      // It died before loading the model: restarting would most likely die the same way.
      fail(new ClassifierUnavailableError(`the classifier worker could not start: ${err.message}`));
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
      slot.worker.postMessage({ id: task.id, image: task.image });
    }
  }

  async function terminateAll(): Promise<void> {
    const workers = [...slots].map((slot) => slot.worker);
    slots.clear();
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  return {
    classify(image: Uint8Array): Promise<ClassScores> {
      if (closed) return Promise.reject(new ClassifierUnavailableError('the classifier pool is closed'));
      if (fatal) return Promise.reject(fatal);
      return new Promise<ClassScores>((resolve, reject) => {
        queue.push({ id: nextId++, image, resolve, reject });
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
      };
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      const err = new ClassifierUnavailableError('the classifier pool is closed');
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
