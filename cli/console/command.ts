/**
 * `moderation console`: the review console in the browser, served on 127.0.0.1 with a token in its
 * URL, against the same target as every other command (the embedded stack, a running `serve`, or
 * --stack with the reviewer's own AWS credentials). Runs until Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { addTargetOptions, parseInteger, type TargetFlags } from '../flags.ts';
import { resolveTarget } from '../target.ts';
import { reviewerIdentity } from './identity.ts';
import { startConsole } from './server.ts';

interface ConsoleFlags extends TargetFlags {
  port?: string;
  json?: boolean;
  open?: boolean;
}

export function registerConsole(program: Command): void {
  addTargetOptions(
    program
      .command('console')
      .description('the review console in the browser: the queue of images held for review, approve/reject with a reason, a dashboard')
      .option('--port <n>', 'port on 127.0.0.1 (default: a free port)')
      .option('--json', 'print {"url": "http://127.0.0.1:PORT/?token=..."} as one line')
      .option('--no-open', 'do not open a browser'),
  )
    .addHelpText(
      'after',
      `
Examples:
  moderation console
  moderation console --stack moderation-prod --no-open
  moderation console --json --no-open

The console listens on 127.0.0.1 only; the token in the printed URL is its password (anyone who has
it can decide images as you until you stop the console). Decisions are recorded as human:<you>: the
OS user locally, the AWS caller identity (STS) against a deployed stack. See docs/console.md.`,
    )
    .action(async (flags: ConsoleFlags) => {
      await consoleCommand(flags);
    });
}

async function consoleCommand(flags: ConsoleFlags): Promise<void> {
  const port = flags.port === undefined ? 0 : parseInteger(flags.port, '--port', { min: 1024, max: 65535 });
  const target = await resolveTarget({ stack: flags.stack, home: flags.home });
  let stop: (() => Promise<void>) | undefined;
  try {
    const identity = await reviewerIdentity(target);
    const app = await startConsole({ target, identity, port });
    stop = app.close;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ url: app.url })}\n`);
    } else {
      process.stdout.write(
        [
          `Review console for ${target.description}, reviewing as ${identity.reviewer} (${identity.source}).`,
          '',
          `  ${app.url}`,
          '',
          'Open that address in your browser (it holds the access token). Ctrl-C to stop.',
          '',
        ].join('\n'),
      );
    }
    if (flags.open !== false) openBrowser(app.url);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  } finally {
    await stop?.();
    await target.close();
  }
}

/**
 * Opens the console in the desktop's browser, as Jupyter does: through a small redirect file that
 * only this user can read, so the token never appears in the process list. Without a desktop (no
 * DISPLAY on Linux) nothing is opened: the printed address is enough.
 */
function openBrowser(url: string): void {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? 'xdg-open' : undefined;
  if (!opener) return;
  try {
    const dir = mkdtempSync(join(tmpdir(), 'moderation-console-'));
    const file = join(dir, 'open.html');
    const safe = url.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    writeFileSync(file, `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${safe}"><title>Moderation console</title><p><a href="${safe}">Open the moderation console</a></p>\n`, { mode: 0o600 });
    const child = spawn(opener, [pathToFileURL(file).href], { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
    // The browser has read it by then; the console keeps running regardless.
    setTimeout(() => rmSync(dir, { recursive: true, force: true }), 30_000).unref();
  } catch {
    // Opening a browser is a convenience: the address is printed.
  }
}
