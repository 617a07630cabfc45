/**
 * Small shared pieces of the embedded runtime: binding servers to the loopback interface (and
 * refusing cross-site browser requests on every one of them), closing them without hanging on
 * keep-alive or long-poll connections, and a logger that can be silenced.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { UserFacingError } from '../functions/lib/errors.ts';

/** Every local service binds here: the emulators have no authentication, so never another interface. */
export const LOOPBACK = '127.0.0.1';

/** The cosmetic account id in every local ARN and queue URL (the one LocalStack and friends use). */
export const LOCAL_ACCOUNT_ID = '000000000000';

export const LOCAL_REGION = 'us-east-1';

/**
 * Answers an AWS JSON protocol request (Step Functions speaks 1.0; SSM and Rekognition 1.1): the
 * body, a request id, and on an error its type in `x-amzn-ErrorType` as the SDKs read it. Nothing
 * when the response has already started (a late answer after a timeout).
 */
export function sendAwsJson(res: ServerResponse, status: number, body: unknown, protocol: '1.0' | '1.1', errorType?: string): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': `application/x-amz-json-${protocol}`,
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
  };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  res.writeHead(status, headers);
  res.end(text);
}

/** A request's whole body. */
export async function readRequestBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * An AWS JSON protocol request body as an object (an empty body is `{}`); anything else throws
 * `invalid(reason)` (the service's SerializationException).
 */
export function parseAwsJsonBody(bytes: Buffer, invalid: (reason: string) => Error): Record<string, unknown> {
  let body: Record<string, unknown>;
  try {
    const text = bytes.toString('utf8');
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('the body is not a JSON object');
  } catch (err) {
    throw invalid((err as Error).message);
  }
  return body;
}

/**
 * Listens on host:port (0 = a free port) and resolves with the port actually bound. Every local
 * endpoint is bound through here, so every one of them gets the browser guard (guardBrowserRequests).
 */
export function listen(server: Server, port = 0, host = LOOPBACK): Promise<number> {
  guardBrowserRequests(server);
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(`port ${port} on ${host} is already in use: stop what holds it, or choose another port`, { cause: err }) : err);
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
  /** Something the user must hear even when quiet (e.g. what a start recovered after a crash). Absent: warn. */
  notice?(message: string, fields?: Record<string, unknown>): void;
}

/** Logs to stderr with a component prefix; `quiet` keeps only errors and notices. */
export function consoleLogger(component: string, quiet = false): LocalLogger {
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    const extra = fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
    process.stderr.write(`[${component}] ${level === 'info' || level === 'notice' ? '' : `${level.toUpperCase()} `}${message}${extra}\n`);
  };
  return {
    info: (message, fields) => {
      if (!quiet) write('info', message, fields);
    },
    warn: (message, fields) => {
      if (!quiet) write('warn', message, fields);
    },
    error: (message, fields) => write('error', message, fields),
    notice: (message, fields) => write('notice', message, fields),
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

/** A fixed port (`serve --port`) that something else holds. */
export class PortInUseError extends UserFacingError {
  override name = 'PortInUse';
}

export class DirectoryInUseError extends UserFacingError {
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

// ---------------------------------------------------------------------------------------------------
// Browser requests

/**
 * The emulators have no authentication, and some of them answer any CORS preflight with
 * `Access-Control-Allow-Origin: *` (dynalite, local-aws-sqs). Bound to 127.0.0.1 they are still
 * reachable from every web page open in the user's browser: a form POST to the local S3, a fetch
 * to the decision table. Every local server is bound through listen(), which installs this guard
 * in front of its handler. A request is refused with 403 when
 *  - its Host is not a loopback name (a DNS-rebinding page: attacker.example resolved to 127.0.0.1);
 *  - it carries an Origin that is not the endpoint's own (http://127.0.0.1:<port>, localhost,
 *    [::1]) and was not allowed with allowBrowserOrigins (`moderation serve --cors-origin`);
 *  - it carries `Sec-Fetch-Site: cross-site` (a no-cors request such as <img src>, which has no Origin).
 * Requests without those headers (SDKs, the AWS CLI, curl, a presigned URL opened directly) pass
 * untouched. An allowed origin gets CORS headers, and its preflight requests are answered here.
 */
export function guardBrowserRequests(server: Server): void {
  if (guardedServers.has(server)) return;
  guardedServers.add(server);
  const emit = server.emit;
  // Patching emit (not adding a listener) puts the guard in front of every 'request' listener,
  // whenever it was added, and lets it stop the event. 'checkContinue' is a request too.
  server.emit = function guardedEmit(this: Server, event: string | symbol, ...args: unknown[]): boolean {
    if ((event === 'request' || event === 'checkContinue') && !admitBrowserRequest(server, args[0] as IncomingMessage, args[1] as ServerResponse)) return true;
    return (emit as (this: Server, event: string | symbol, ...args: unknown[]) => boolean).call(this, event, ...args);
  } as Server['emit'];
}

const guardedServers = new WeakSet<Server>();
const allowedOrigins = new Map<string, number>();

export class InvalidOriginError extends Error {
  override name = 'InvalidOriginError';
}

/** `scheme://host[:port]` as browsers send it in Origin; throws InvalidOriginError for anything else ('*', 'null', a path). */
export function normalizeOrigin(origin: string): string {
  const text = origin.trim().replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidOriginError(`"${origin}" is not an origin (scheme://host[:port], e.g. http://localhost:3000)`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    throw new InvalidOriginError(`"${origin}" is not an origin (scheme://host[:port] with no path, e.g. http://localhost:3000)`);
  }
  return url.origin;
}

/**
 * Lets browser pages from these origins use the local endpoints (CORS), until the returned function
 * is called. Origins are exact (no wildcard): `moderation serve --cors-origin http://localhost:3000`.
 */
export function allowBrowserOrigins(origins: readonly string[]): () => void {
  const normalized = [...new Set(origins.map(normalizeOrigin))];
  for (const origin of normalized) allowedOrigins.set(origin, (allowedOrigins.get(origin) ?? 0) + 1);
  let revoked = false;
  return () => {
    if (revoked) return;
    revoked = true;
    for (const origin of normalized) {
      const count = (allowedOrigins.get(origin) ?? 1) - 1;
      if (count > 0) allowedOrigins.set(origin, count);
      else allowedOrigins.delete(origin);
    }
  };
}

const EXPOSED_HEADERS = [
  'ETag',
  'Content-Length',
  'Content-Range',
  'Last-Modified',
  'x-amz-request-id',
  'x-amz-id-2',
  'x-amz-version-id',
  'x-amz-delete-marker',
  'x-amz-error-code',
  'x-amz-error-message',
  'x-amzn-RequestId',
  'x-amzn-ErrorType',
  'x-amz-crc32',
].join(', ');

/** A listening server's address, asked of the socket once (it does not change while it listens). */
const boundAddresses = new WeakMap<Server, AddressInfo>();
function boundAddressOf(server: Server): AddressInfo | undefined {
  let bound = boundAddresses.get(server);
  if (!bound) {
    const address = server.address();
    if (address && typeof address === 'object') {
      boundAddresses.set(server, (bound = address));
      // Listening again (another port) asks again.
      server.once('close', () => boundAddresses.delete(server));
    }
  }
  return bound;
}

function admitBrowserRequest(server: Server, req: IncomingMessage, res: ServerResponse): boolean {
  const bound = boundAddressOf(server);
  const host = req.headers.host;
  if (bound && isLoopbackName(bound.address) && host !== undefined && !isLoopbackName(hostnameOf(host))) {
    return refuse(res, `Host "${host}" is not a loopback name: the local endpoints answer only requests to 127.0.0.1 or localhost (a page whose DNS name points at this machine is refused).`);
  }
  const origin = singleHeader(req, 'origin');
  let corsOrigin: string | undefined;
  if (origin !== undefined) {
    if (bound && isOwnOrigin(origin, bound.port)) {
      // Same origin: nothing to add.
    } else if (allowedOrigins.has(origin)) {
      corsOrigin = origin;
    } else {
      return refuse(res, `cross-origin browser request from ${origin} refused. To let a web app of yours use this endpoint, start it with \`moderation serve --cors-origin ${origin === 'null' ? '<origin>' : origin}\`.`);
    }
  } else if (singleHeader(req, 'sec-fetch-site') === 'cross-site') {
    return refuse(res, 'cross-site browser request refused (Sec-Fetch-Site: cross-site).');
  }
  if (!corsOrigin) return true;
  const allowed = corsOrigin;
  if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
    const headers: Record<string, string> = {
      'Access-Control-Allow-Origin': allowed,
      'Access-Control-Allow-Methods': 'GET, HEAD, PUT, POST, DELETE',
      'Access-Control-Max-Age': '600',
      Vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
      'Content-Length': '0',
    };
    const requested = singleHeader(req, 'access-control-request-headers');
    if (requested) headers['Access-Control-Allow-Headers'] = requested;
    if (singleHeader(req, 'access-control-request-private-network') === 'true') headers['Access-Control-Allow-Private-Network'] = 'true';
    res.writeHead(204, headers);
    res.end();
    return false;
  }
  // Set now and again when the head is written: some handlers clear every header on an error.
  const apply = () => {
    res.setHeader('Access-Control-Allow-Origin', allowed);
    res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    const vary = res.getHeader('Vary');
    if (!vary) res.setHeader('Vary', 'Origin');
    else if (!/\borigin\b/i.test(String(vary))) res.setHeader('Vary', `${String(vary)}, Origin`);
  };
  apply();
  const writeHead = res.writeHead;
  res.writeHead = function corsWriteHead(this: ServerResponse, ...args: unknown[]) {
    if (!this.headersSent) apply();
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['writeHead'];
  return true;
}

function refuse(res: ServerResponse, reason: string): false {
  const body = `Forbidden by the local moderation stack: ${reason}\n`;
  res.writeHead(403, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    Connection: 'close',
  });
  res.end(body);
  return false;
}

function singleHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The host name of a Host header value ('127.0.0.1:4566', '[::1]:4566', 'localhost'). */
function hostnameOf(host: string): string {
  const text = host.trim().toLowerCase();
  if (text.startsWith('[')) return text.slice(1, text.indexOf(']') < 0 ? undefined : text.indexOf(']'));
  const colon = text.lastIndexOf(':');
  return colon < 0 ? text : text.slice(0, colon);
}

function isLoopbackName(name: string): boolean {
  const host = name.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  return host === 'localhost' || host.endsWith('.localhost') || /^127(\.\d{1,3}){3}$/.test(host) || host === '::1' || host === '::ffff:127.0.0.1';
}

function isOwnOrigin(origin: string, port: number): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return url.protocol === 'http:' && Number(url.port || 80) === port && isLoopbackName(url.hostname);
}

/** Text for an XML element's content (S3's error and tagging documents). */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
