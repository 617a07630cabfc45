/**
 * `moderation serve` as a user runs it (issue 10, section 5): browser pages from other origins are
 * refused unless allowed with --cors-origin, and a serve that was SIGKILLed tells the user, at the
 * next start, that it recovered (with no `moderation reconcile`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { moderation, startLongRunning } from './cli.ts';
import { rawRequest } from '../local/raw-http.ts';

const home = mkdtempSync(join(tmpdir(), 'moderation-e2e-serve-security-'));
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
  }
  rmSync(home, { recursive: true, force: true });
});

async function eventually(probe: () => boolean, what: () => string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('moderation serve: browser requests and unclean stops', () => {
  it('refuses other origins, allows --cors-origin, and after a SIGKILL the next serve recovers and says so', async () => {
    const started = await startLongRunning(['serve', '--json', '--home', home, '--cors-origin', 'http://localhost:3000']);
    const first = started.child;
    children.push(first);
    first.removeAllListeners('exit');
    const info = JSON.parse(started.firstLine) as { endpoints: Record<string, string>; uploadsBucket: string };

    const list = `/${info.uploadsBucket}?list-type=2`;
    const evil = await rawRequest(info.endpoints.s3!, list, { headers: { Origin: 'https://evil.example' } });
    expect(evil.status).toBe(403);
    const app = await rawRequest(info.endpoints.s3!, list, { headers: { Origin: 'http://localhost:3000' } });
    expect(app.status).toBe(200);
    expect(app.headers['access-control-allow-origin']).toBe('http://localhost:3000');
    const sdk = await rawRequest(info.endpoints.s3!, list);
    expect(sdk.status).toBe(200);

    // Killed: no graceful stop.
    const killed = new Promise((r) => first.once('exit', r));
    first.kill('SIGKILL');
    await killed;

    const again = await startLongRunning(['serve', '--json', '--home', home]);
    children.push(again.child);
    again.child.removeAllListeners('exit');
    await eventually(
      () => /nothing to recover|recovered after the unclean stop/.test(again.stderr()),
      () => again.stderr(),
    );
    expect(again.stderr()).toContain('did not stop gracefully');
  }, 180_000);

  it('refuses an --cors-origin that is not one origin', async () => {
    const result = await moderation(['serve', '--home', home, '--cors-origin', '*']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--cors-origin: "\*" is not an origin/);
  });
});
