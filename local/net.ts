/**
 * Small shared pieces of the embedded runtime: binding servers to the loopback interface, closing
 * them without hanging on keep-alive or long-poll connections, and a logger that can be silenced.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

/** Every local service binds here: the emulators have no authentication, so never another interface. */
export const LOOPBACK = '127.0.0.1';

/** The cosmetic account id in every local ARN and queue URL (the one LocalStack and friends use). */
export const LOCAL_ACCOUNT_ID = '000000000000';

export const LOCAL_REGION = 'us-east-1';

/** Listens on host:port (0 = a free port) and resolves with the port actually bound. */
export function listen(server: Server, port = 0, host = LOOPBACK): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/**
 * Stops accepting connections, closes idle keep-alive sockets at once and, after `graceMs`, any that
 * are still busy (a long poll, a client that never hangs up) so that close never hangs.
 */
export function closeServer(server: Server, graceMs = 1_000): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close((err) => {
      clearTimeout(timer);
      if (err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING') reject(err);
      else resolve();
    });
    server.closeIdleConnections();
  });
}

export function endpointOf(port: number, host = LOOPBACK): string {
  return `http://${host}:${port}`;
}

export interface LocalLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Logs to stderr with a component prefix; `quiet` keeps only errors. */
export function consoleLogger(component: string, quiet = false): LocalLogger {
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    const extra = fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
    process.stderr.write(`[${component}] ${level === 'info' ? '' : `${level.toUpperCase()} `}${message}${extra}\n`);
  };
  return {
    info: (message, fields) => {
      if (!quiet) write('info', message, fields);
    },
    warn: (message, fields) => {
      if (!quiet) write('warn', message, fields);
    },
    error: (message, fields) => write('error', message, fields),
  };
}

export const silentLogger: LocalLogger = { info() {}, warn() {}, error() {} };

/** Waits `ms` milliseconds; resolves early (without error) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

const heldLocks = new Set<string>();

export class DirectoryInUseError extends Error {
  override name = 'DirectoryInUseError';
}

/**
 * A pid lock file, so that a second process (or a second stack in this one) on the same data fails
 * with a clear message: LevelDB allows one opener, and dynalite crashes the process instead of
 * reporting it. A lock left by a process that is gone is taken over. Returns the release function.
 */
export function acquireLock(lockFile: string, what: string): () => void {
  if (heldLocks.has(lockFile)) throw new DirectoryInUseError(`${what} is already in use by another local stack in this process (${lockFile})`);
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const pid = Number.parseInt(readFileSync(lockFile, 'utf8'), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new DirectoryInUseError(`${what} is in use by process ${pid} (is \`moderation serve\` running?); lock file ${lockFile}`);
      }
      rmSync(lockFile, { force: true });
    }
  }
  heldLocks.add(lockFile);
  return () => {
    if (!heldLocks.delete(lockFile)) return;
    rmSync(lockFile, { force: true });
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
