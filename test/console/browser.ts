/**
 * Headless Chromium for the console's browser tests: Debian's /usr/bin/chromium driven by
 * playwright-core (no browser download). A missing Chromium fails the tests with what to install;
 * it never skips them.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The flags that work on these machines (no sandbox as root, no background connections to Google). */
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing (${CHROMIUM}): the console's browser tests need it. Install it with \`apt-get install -y chromium\` (Debian; .ci/run does this), or set CHROMIUM_PATH to a Chromium binary.`,
    );
  }
  // Playwright starts it headless with a new, empty profile (user data directory) each time.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

/** Polls `probe` until it returns true, or fails after `timeoutMs` saying what was awaited. */
export async function waitUntil(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Functions evaluated in the page (as functions, never strings: the console's CSP forbids eval, and
 * Playwright's string expressions would need it). Typed loosely: the project's tsconfig has no DOM.
 */
type El = any; // eslint-disable-line @typescript-eslint/no-explicit-any
export const inPage = {
  filter: (el: El): string => el.ownerDocument.defaultView.getComputedStyle(el).filter as string,
  loaded: (el: El): boolean => Boolean(el.complete && el.naturalWidth > 0),
  valueMissing: (el: El): boolean => Boolean(el.validity.valueMissing),
};
