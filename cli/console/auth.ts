/**
 * The console's access control, as Jupyter does it: a random token in the URL that
 * `moderation console` prints. The first request that carries it gets a session cookie (HttpOnly,
 * SameSite=Strict, named after the port so two consoles do not share one) and is redirected to the
 * same address without the token. Every route, the static files and the image route included,
 * answers 401 without a valid cookie or token. POSTs must also come from the console's own origin
 * (Origin header): with the browser guard of local/net.ts (loopback Host names only, cross-site
 * requests refused) and the SameSite cookie, another page open in the browser cannot act on it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** 32 random bytes, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export class ConsoleAuth {
  readonly cookieName: string;

  constructor(
    private readonly token: string,
    private readonly port: number,
  ) {
    this.cookieName = `moderation_console_${port}`;
  }

  /** Constant-time comparison with the console's token. */
  tokenMatches(candidate: string): boolean {
    const a = Buffer.from(candidate);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** A new session: its id and the Set-Cookie header that carries it with the token's MAC. */
  newSession(): { session: string; setCookie: string } {
    const session = randomBytes(16).toString('base64url');
    const value = `${session}.${this.mac(session)}`;
    return { session, setCookie: `${this.cookieName}=${value}; Path=/; HttpOnly; SameSite=Strict` };
  }

  /** The session id of a request whose cookie is valid, else undefined. */
  sessionOf(req: IncomingMessage): string | undefined {
    const value = cookies(req).get(this.cookieName);
    if (!value) return undefined;
    const dot = value.indexOf('.');
    if (dot <= 0) return undefined;
    const session = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1));
    const expected = Buffer.from(this.mac(session));
    return given.length === expected.length && timingSafeEqual(given, expected) ? session : undefined;
  }

  /** True when the request's Origin is the console's own (http://127.0.0.1:<port> or localhost). */
  sameOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (typeof origin !== 'string') return false;
    return origin === `http://127.0.0.1:${this.port}` || origin === `http://localhost:${this.port}`;
  }

  private mac(session: string): string {
    return createHmac('sha256', this.token).update(`session:${session}`).digest('base64url');
  }
}

function cookies(req: IncomingMessage): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) found.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return found;
}
