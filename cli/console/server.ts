/**
 * The review console's web server: Node's http, pages rendered here (pages.ts), a little vanilla
 * JavaScript and CSS from static/, nothing from a CDN or downloaded at run time. It binds 127.0.0.1
 * through local/net.ts listen(), so the browser guard of every local endpoint applies (loopback Host
 * names only, cross-site requests refused); every route needs the token (auth.ts); every POST must
 * come from the console's own origin. It reads and writes only through the CLI's target and the
 * stores: the same code against the embedded stack, a running `moderation serve`, or a deployed stack.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { closeServer, listen, LOOPBACK } from '../../local/net.ts';
import { decideReview, fileAppeal, PENDING_KINDS, ReviewStateError, type PendingKind } from '../human-review.ts';
import { loadQuality } from '../quality.ts';
import { objectStoreOf } from '../stores.ts';
import { AppealOpenError, DecisionConflictError } from '../../functions/store/errors.ts';
import { UserFacingError } from '../../functions/lib/errors.ts';
import { ConsoleAuth, newToken } from './auth.ts';
import { DEFAULT_LEASE_MS, Leases } from './leases.ts';
import { answerOf, approveNeedsReason, fileName, loadItem, loadQueue, nextItem, type ConsoleTarget } from './queue.ts';
import { loadImage, probeImage } from './images.ts';
import { loadDashboard } from './dashboard.ts';
import { dashboardPage, errorPage, itemPage, qualityPage, queuePage, unauthorizedPage, QUALITY_WINDOWS, type Notice, type PageContext } from './pages.ts';
import type { ReviewerIdentity } from './identity.ts';

export interface ConsoleOptions {
  target: ConsoleTarget;
  identity: ReviewerIdentity;
  /** 0 or absent: a free port. */
  port?: number;
  /** Default: 32 random bytes. */
  token?: string;
  /** How long an opened item shows as taken to other sessions. Default 5 minutes. */
  leaseMs?: number;
  now?: () => Date;
  /** Where unexpected errors are logged (default stderr). */
  log?: (line: string) => void;
}

export interface ConsoleServer {
  /** The address to open: http://127.0.0.1:PORT/?token=... */
  url: string;
  origin: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

/**
 * Every response: no script or style but the console's own, no framing, and no Referer at all (the
 * token is in the first URL). The console's own pages relax the last to `same-origin` (PAGE_HEADERS).
 */
const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/**
 * The pages with forms: under `no-referrer` Chromium sends `Origin: null` with a form's POST, which the
 * origin check (and local/net.ts's browser guard) must refuse. `same-origin` still sends no Referer
 * to any other site, and a page's own address never holds the token (the token URL is answered with
 * a redirect, under `no-referrer`).
 */
const PAGE_HEADERS = { 'Referrer-Policy': 'same-origin' };

const STATIC: Record<string, { file: string; type: string }> = {
  '/static/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
  '/static/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
};

const ITEM_ROUTE = /^\/items\/([0-9a-f]{40})(\/image|\/decision|\/appeal)?$/;
const MAX_FORM_BYTES = 16 * 1024;
const MAX_REASON_CHARS = 1000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  const { target, identity } = options;
  const token = options.token ?? newToken();
  const now = options.now ?? (() => new Date());
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const leases = new Leases(options.leaseMs ?? DEFAULT_LEASE_MS, now);
  const flashes = new Map<string, string>();
  const statics = Object.fromEntries(
    Object.entries(STATIC).map(([path, { file, type }]) => [path, { type, body: readFileSync(new URL(`./static/${file}`, import.meta.url)) }]),
  );
  const objects = objectStoreOf(target);
  let auth: ConsoleAuth;

  const context = (session: string): PageContext => {
    const flash = flashes.get(session);
    flashes.delete(session);
    return { identity, target: target.description, flash, now: now() };
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        if (!res.headersSent) sendText(res, err.status, err.message, { Connection: 'close' });
        return;
      }
      log(`[console] ${req.method} ${req.url?.replace(/token=[^&]*/, 'token=…')}: ${(err as Error).stack ?? err}`);
      if (!res.headersSent) sendText(res, 500, 'Internal error: see the console’s terminal.');
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', `http://${LOOPBACK}`);
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return sendText(res, 405, 'Method not allowed.', { Allow: 'GET, HEAD, POST' });

    // The token from the printed URL: a new session cookie, then the same address without it.
    const given = url.searchParams.get('token');
    if (given !== null) {
      if (!auth.tokenMatches(given)) return sendHtml(res, 401, unauthorizedPage(true), {});
      if (method === 'POST') return sendText(res, 400, 'Send the token once, in the URL of a GET; the console then uses its cookie.');
      const { setCookie } = auth.newSession();
      url.searchParams.delete('token');
      return redirect(res, `${url.pathname}${url.search}`, { 'Set-Cookie': setCookie });
    }
    const session = auth.sessionOf(req);
    if (!session) return sendHtml(res, 401, unauthorizedPage(false), {});
    if (method === 'POST' && !auth.sameOrigin(req)) {
      return sendText(res, 403, 'Refused: a POST to the console must come from its own pages (Origin http://127.0.0.1:<port>).');
    }

    const path = url.pathname;
    const asset = statics[path];
    if (asset && method !== 'POST') return send(res, 200, asset.type, asset.body, { 'Cache-Control': 'private, max-age=300' });
    if (path === '/' && method !== 'POST') {
      const kindParam = url.searchParams.get('kind');
      const kind = kindParam && (PENDING_KINDS as readonly string[]).includes(kindParam) ? (kindParam as PendingKind) : undefined;
      return sendHtml(res, 200, queuePage(context(session), await loadQueue(target, leases, session, now(), kind)));
    }
    if (path === '/next' && method !== 'POST') {
      const after = url.searchParams.get('after') ?? undefined;
      const kindParam = url.searchParams.get('kind');
      const kind = kindParam && (PENDING_KINDS as readonly string[]).includes(kindParam) ? (kindParam as PendingKind) : undefined;
      const next = await nextItem(target, leases, session, now(), after, kind);
      if (next) return redirect(res, `/items/${next.jobId}`);
      if (!flashes.has(session)) flashes.set(session, 'No free item is waiting: the queue is empty, or every waiting image is open in another session.');
      return redirect(res, '/');
    }
    if (path === '/dashboard' && method !== 'POST') return sendHtml(res, 200, dashboardPage(context(session), await loadDashboard(target, now())));
    if (path === '/quality' && method !== 'POST') {
      const days = QUALITY_WINDOWS.find((d) => String(d) === url.searchParams.get('days')) ?? 30;
      const report = await loadQuality(target, { since: new Date(now().getTime() - days * 86_400_000) });
      return sendHtml(res, 200, qualityPage(context(session), report, days));
    }
    const item = ITEM_ROUTE.exec(path);
    if (item) {
      const [, jobId, sub] = item as unknown as [string, string, string | undefined];
      if (!sub && method !== 'POST') return showItem(res, session, jobId, 200);
      if (sub === '/image' && method !== 'POST') return serveImage(res, jobId);
      if (sub === '/decision' && method === 'POST') return decide(req, res, session, jobId);
      if (sub === '/appeal' && method === 'POST') return appeal(req, res, session, jobId);
      return sendText(res, 405, 'Method not allowed.');
    }
    return sendHtml(res, 404, errorPage(context(session), 'Not found', `Nothing at ${path}.`));
  }

  async function showItem(res: ServerResponse, session: string, jobId: string, status: number, notice?: Notice, reason?: string, message?: string): Promise<void> {
    const item = await loadItem(target, jobId);
    if (!item) return sendHtml(res, 404, errorPage(context(session), 'Not found', `No decision for job ${jobId}.`));
    let takenBy;
    if (item.pending) {
      leases.releaseAllOf(session, jobId);
      const lease = leases.take(jobId, session, identity.reviewer);
      if (!lease.taken) takenBy = lease.lease;
    }
    const image = await probeImage(objects, item.automated, target.names.quarantineBucket);
    return sendHtml(res, status, itemPage(context(session), { jobId, item, image, takenBy, notice, reason, message }));
  }

  async function serveImage(res: ServerResponse, jobId: string): Promise<void> {
    const item = await loadItem(target, jobId);
    if (!item) return sendText(res, 404, 'No such job.');
    const image = await loadImage(objects, item.automated, target.names.quarantineBucket);
    if (!image.ok) return sendText(res, 404, image.reason);
    return send(res, 200, image.contentType, image.bytes, {
      // The bytes are the uploader's: never a document in the console's origin.
      'Content-Security-Policy': "default-src 'none'; sandbox",
      'Content-Disposition': 'inline',
    });
  }

  async function decide(req: IncomingMessage, res: ServerResponse, session: string, jobId: string): Promise<void> {
    const form = await readForm(req);
    const verb = form.get('decision');
    if (verb !== 'approve' && verb !== 'reject') throw new HttpError(400, 'decision must be approve or reject');
    const status = verb === 'approve' ? 'APPROVED' : 'REJECTED';
    const reason = (form.get('reason') ?? '').replace(/\r\n?/g, '\n').trim();
    const again = (code: number, text: string) => showItem(res, session, jobId, code, { kind: 'error', text }, reason);

    const item = await loadItem(target, jobId);
    if (!item) return sendHtml(res, 404, errorPage(context(session), 'Not found', `No decision for job ${jobId}.`));
    const me = `human:${identity.reviewer}`;
    const answer = answerOf(item);
    if (answer && !(answer.status === status && answer.decidedBy === me)) {
      return again(409, winnerMessage(answer));
    }
    const kind = item.pending?.kind ?? 'review';
    if (reason.length > MAX_REASON_CHARS) return again(400, `The reason is too long (${reason.length} characters; at most ${MAX_REASON_CHARS}).`);
    if (kind === 'appeal' && !reason) return again(400, 'A reason is required to decide an appeal (the uploader is told, and it is recorded in the history).');
    if (kind === 'review' && !reason && status === 'REJECTED') return again(400, 'A reason is required to reject (it is recorded in the history).');
    if (kind === 'review' && !reason && approveNeedsReason(item.automated)) return again(400, 'A reason is required to approve this image: approving overrides what the automation flagged.');

    try {
      const fallback = kind === 'sample' ? 'blind quality check' : 'approved by a reviewer';
      const result = await decideReview(target, jobId, { status, reviewer: identity.reviewer, reason: reason || fallback, now: now() });
      if (result.alreadyRecorded && result.record.decidedBy !== me) return again(409, winnerMessage(result.record));
      leases.release(jobId, session);
      const name = fileName(result.record.key);
      const retried = result.alreadyRecorded ? ' (already recorded; applied again)' : '';
      flashes.set(
        session,
        result.kind === 'sample'
          ? `Recorded your blind answer for ${name}${result.alreadyRecorded ? ' (already recorded)' : ''}: ${status === 'APPROVED' ? 'approve' : 'reject'}. Not applied: it measures the automation (see Quality).`
          : result.kind === 'appeal'
            ? `${status === 'APPROVED' ? 'Granted' : 'Denied'} the appeal of ${name}${retried}: ${result.applied.detail}.`
            : `${status === 'APPROVED' ? 'Approved' : 'Rejected'} ${name}${retried}: ${result.applied.detail}.`,
      );
      return redirect(res, `/next?after=${jobId}`);
    } catch (err) {
      if (err instanceof DecisionConflictError || err instanceof ReviewStateError) return again(409, `${err.message}.`);
      if (err instanceof UserFacingError) return again(400, err.message);
      throw err;
    }
  }

  /** An uploader's appeal, filed by a reviewer from a rejected image's page: back in the queue with the message. */
  async function appeal(req: IncomingMessage, res: ServerResponse, session: string, jobId: string): Promise<void> {
    const form = await readForm(req);
    const message = (form.get('message') ?? '').replace(/\r\n?/g, '\n').trim();
    const again = (code: number, text: string) => showItem(res, session, jobId, code, { kind: 'error', text }, undefined, message);
    if (!message) return again(400, 'An appeal needs a message: why the image should not be rejected.');
    if (message.length > MAX_REASON_CHARS) return again(400, `The message is too long (${message.length} characters; at most ${MAX_REASON_CHARS}).`);
    try {
      const result = await fileAppeal(target, jobId, { message, now: now() });
      flashes.set(
        session,
        result.alreadyFiled
          ? `This appeal of ${fileName(result.record.key)} was already filed; it waits in the review queue.`
          : `Appeal filed for ${fileName(result.record.key)}: it is back in the review queue (Appeals). It stays in quarantine until a reviewer decides.`,
      );
      return redirect(res, `/items/${jobId}`);
    } catch (err) {
      if (err instanceof AppealOpenError || err instanceof ReviewStateError || err instanceof DecisionConflictError) return again(409, `${err.message}.`);
      if (err instanceof UserFacingError) return again(400, err.message);
      throw err;
    }
  }

  server.on('clientError', (_err, socket) => socket.destroy());
  const port = await listen(server, options.port ?? 0);
  auth = new ConsoleAuth(token, port);
  const origin = `http://${LOOPBACK}:${port}`;
  return {
    url: `${origin}/?token=${token}`,
    origin,
    port,
    token,
    close: () => closeServer(server),
  };
}

function winnerMessage(winner: { status: string; decidedBy: string; decidedAt: string; reason?: string }): string {
  return `This image was already decided ${winner.status} by ${winner.decidedBy} at ${winner.decidedAt}${winner.reason ? ` (“${winner.reason}”)` : ''}; your decision was not recorded.`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new HttpError(415, 'Expected a form (application/x-www-form-urlencoded).');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new HttpError(413, 'The form is too large.');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

function sendHtml(res: ServerResponse, status: number, body: string, extra: Record<string, string> = PAGE_HEADERS): void {
  send(res, status, 'text/html; charset=utf-8', body, extra);
}

function sendText(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  send(res, status, 'text/plain; charset=utf-8', `${text}\n`, extra);
}

function redirect(res: ServerResponse, location: string, extra: Record<string, string> = {}): void {
  res.writeHead(303, { ...SECURITY_HEADERS, Location: location, 'Content-Length': '0', ...extra });
  res.end();
}
