/**
 * The review console (issue 14) in a real browser: headless Chromium (playwright-core) against a
 * local stack whose Rekognition is a fake ('borderline' in a key → REVIEW under the standard
 * policy). The queue, an item (blurred, revealed), approve and reject (the decision store's record
 * and the object's tag or quarantine), a stale item decided elsewhere (the winner is shown), two
 * reviewers at once, leases, a placeholder, escaping, the dashboard, the token, and the command.
 * Screenshots go to docs/images/console-*.png (shown in docs/console.md).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { DeleteObjectCommand, GetObjectTaggingCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { decideReview, jobRecords } from '../../cli/human-review.ts';
import { startConsole, type ConsoleServer } from '../../cli/console/server.ts';
import { reviewerIdentity, type ReviewerIdentity } from '../../cli/console/identity.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { decided, png, startTestStack, upload, type TestStack } from '../cli/helpers.ts';
import { rawRequest } from '../local/raw-http.ts';
import { startLongRunning } from '../e2e/cli.ts';
import { inPage, launchChromium, waitUntil } from './browser.ts';

const IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../samples/', import.meta.url));

const KEYS = {
  approve: 'uploads/alice/borderline-beach.jpg',
  reject: 'uploads/bob/borderline-dunes.png',
  stale: 'uploads/carol/borderline-portrait.png',
  race: 'uploads/dave/borderline-river.png',
  gone: 'uploads/erin/borderline-gone.png',
  hostile: 'uploads/mallory/borderline-<img src=x onerror=alert(1)>\u202egnp.png',
  fine: 'uploads/frank/fine.png',
  rejected: 'uploads/grace/reject-blobs.png',
};

describe('moderation console (browser)', () => {
  let t: TestStack;
  let app: ConsoleServer;
  let browser: Browser;
  let identity: ReviewerIdentity;
  const records = new Map<string, DecisionRecord>();
  const contexts: BrowserContext[] = [];
  const job = (name: keyof typeof KEYS) => records.get(KEYS[name])!.jobId;

  const newPage = async (): Promise<Page> => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    contexts.push(context);
    return context.newPage();
  };
  const shot = (page: Page, name: string) => page.screenshot({ path: `${IMAGES}console-${name}.png`, fullPage: true });
  const tags = async (key: string) => (await t.target.s3.send(new GetObjectTaggingCommand({ Bucket: t.target.names.uploadsBucket, Key: key }))).TagSet ?? [];
  /** A session cookie, as a browser gets it from the printed URL. */
  const sessionCookie = async (): Promise<string> => {
    const res = await fetch(app.url, { redirect: 'manual' });
    return res.headers.get('set-cookie')!.split(';')[0]!;
  };

  beforeAll(async () => {
    browser = await launchChromium();
    t = await startTestStack();
    const sample = (file: string, width: number) => sharp(readFileSync(`${SAMPLES}${file}`)).resize({ width }).toFormat(file.endsWith('.png') ? 'png' : 'jpeg').toBuffer();
    const bodies: Record<keyof typeof KEYS, Buffer> = {
      approve: await sample('borderline-skin-bands.jpg', 640),
      reject: await sharp(readFileSync(`${SAMPLES}approve-landscape.jpg`)).resize({ width: 560 }).png().toBuffer(),
      stale: await sample('approve-shapes.png', 480),
      race: await png(4, 200),
      gone: await png(5, 200),
      hostile: await png(6, 200),
      fine: await png(7, 200),
      rejected: await png(8, 200),
    };
    // One at a time, so the queue's order (oldest first) is the order of these keys.
    for (const name of Object.keys(KEYS) as (keyof typeof KEYS)[]) {
      await upload(t.target, KEYS[name], bodies[name]);
      const found = await decided(t.target, [KEYS[name]]);
      records.set(KEYS[name], found.get(KEYS[name])!);
    }
    await t.target.s3.send(new DeleteObjectCommand({ Bucket: t.target.names.uploadsBucket, Key: KEYS.gone }));
    identity = await reviewerIdentity(t.target);
    app = await startConsole({ target: t.target, identity, log: () => undefined });
  }, 180_000);

  afterAll(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await app?.close();
    await t?.close();
  });

  it('the statuses are what the fake detector makes them', () => {
    expect(records.get(KEYS.approve)!.status).toBe('REVIEW');
    expect(records.get(KEYS.hostile)!.status).toBe('REVIEW');
    expect(records.get(KEYS.fine)!.status).toBe('APPROVED');
    expect(records.get(KEYS.rejected)!.status).toBe('REJECTED');
    expect(identity.source).toMatch(/^OS user /);
    expect(identity.reviewer).toMatch(/^[A-Za-z0-9._@+-]{1,64}$/);
  });

  it('refuses every route without the token, and with a wrong one (401)', async () => {
    for (const path of ['/', '/dashboard', `/items/${job('approve')}`, `/items/${job('approve')}/image`, '/static/console.js', '/next', '/nothing']) {
      expect((await fetch(`${app.origin}${path}`, { redirect: 'manual' })).status, path).toBe(401);
      expect((await fetch(`${app.origin}${path}?token=wrong`, { redirect: 'manual' })).status, path).toBe(401);
    }
    expect((await fetch(`${app.origin}/?token=${app.token}x`, { redirect: 'manual' })).status).toBe(401);
    const forged = await fetch(`${app.origin}/`, { headers: { cookie: `moderation_console_${app.port}=abc.def` }, redirect: 'manual' });
    expect(forged.status).toBe(401);
    const post = await fetch(`${app.origin}/items/${job('approve')}/decision`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: app.origin },
      body: 'decision=approve&reason=x',
    });
    expect(post.status).toBe(401);

    // In the browser too: the page says where the token comes from.
    const page = await newPage();
    const response = await page.goto(`${app.origin}/`);
    expect(response!.status()).toBe(401);
    await page.getByRole('heading', { name: 'Token needed' }).waitFor();
    expect(await page.textContent('body')).toContain('moderation console');
    const wrong = await page.goto(`${app.origin}/?token=not-the-token`);
    expect(wrong!.status()).toBe(401);
  });

  it('the token becomes an HttpOnly SameSite=Strict cookie; POSTs need the console’s own origin; other hosts are refused', async () => {
    const first = await fetch(app.url, { redirect: 'manual' });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/');
    const setCookie = first.headers.get('set-cookie')!;
    expect(setCookie).toMatch(new RegExp(`^moderation_console_${app.port}=[^;]+; Path=/; HttpOnly; SameSite=Strict$`));
    const cookie = setCookie.split(';')[0]!;
    const page = await fetch(`${app.origin}/`, { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'; script-src 'self'; style-src 'self'/);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(first.headers.get('referrer-policy')).toBe('no-referrer'); // the response to the token URL
    expect(page.headers.get('referrer-policy')).toBe('same-origin'); // pages: no Referer to other sites (see server.ts)
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const body = await page.text();
    expect(body).not.toMatch(/<script>|<style|<[a-z][^>]*\s(style|on[a-z]+)=/i); // nothing inline: the CSP allows none

    const form = { 'content-type': 'application/x-www-form-urlencoded', cookie };
    const decision = `/items/${job('approve')}/decision`;
    // No Origin (a script outside the browser with a stolen cookie, or an old browser): refused.
    expect((await fetch(`${app.origin}${decision}`, { method: 'POST', headers: form, body: 'decision=approve&reason=x', redirect: 'manual' })).status).toBe(403);
    // Another site's page: refused by the browser guard of local/net.ts before the console sees it.
    const crossSite = await fetch(`${app.origin}${decision}`, { method: 'POST', headers: { ...form, origin: 'https://evil.example' }, body: 'decision=approve&reason=x', redirect: 'manual' });
    expect(crossSite.status).toBe(403);
    // A DNS-rebinding page (its own name resolving to 127.0.0.1): refused by Host.
    const rebinding = await rawRequest(app.origin, '/', { headers: { Host: `evil.example:${app.port}`, Cookie: cookie } });
    expect(rebinding.status).toBe(403);
    // Nothing was decided by any of these.
    expect((await jobRecords(t.target, job('approve'))).filter((r) => r.kind === 'human')).toEqual([]);
  });

  let page: Page;

  it('shows the queue oldest first, with the count, the age of the oldest and each file name', async () => {
    page = await newPage();
    await page.goto(app.url);
    // The token leaves the address bar (and the history) at once.
    await page.waitForURL(`${app.origin}/`);
    const summary = page.locator('#queue-summary');
    await summary.waitFor();
    expect(await summary.textContent()).toMatch(/^6 images are waiting for review; the oldest has waited \d+[sm]\.$/);
    const files = await page.locator('table.queue tbody tr td:first-child a').allTextContents();
    expect(files).toEqual(['borderline-beach.jpg', 'borderline-dunes.png', 'borderline-portrait.png', 'borderline-river.png', 'borderline-gone.png', 'borderline-<img src=x onerror=alert(1)>\\u202egnp.png']);
    await shot(page, 'queue');
  });

  it('opens an item: the image blurred while a label is flagged, revealed by a click or a key; labels, rule and history', async () => {
    await page.getByRole('link', { name: 'borderline-beach.jpg' }).click();
    await page.waitForURL(`${app.origin}/items/${job('approve')}`);
    await page.getByRole('heading', { name: 'borderline-beach.jpg' }).waitFor();
    const image = page.locator('#subject');
    await image.waitFor();
    const blurred = async () => (await image.evaluate(inPage.filter)).startsWith('blur(');
    const revealed = async () => (await image.evaluate(inPage.filter)) === 'none';
    await waitUntil(() => image.evaluate(inPage.loaded), 'the image to load');
    await waitUntil(blurred, 'the image to be blurred');
    expect(await page.locator('table.labels').textContent()).toMatch(/Explicit ›\s*Explicit Nudity\s*L2\s*65\.4%/);
    expect(await page.locator('.details dl.facts').first().textContent()).toMatch(/Explicit Nudity 65\.4% ≥ review threshold/);
    expect(await page.locator('table.history tbody').textContent()).toMatch(/REVIEW\s*policy\s*automated/);
    await shot(page, 'item');

    await image.click();
    await waitUntil(revealed, 'a click to reveal the image');
    await page.keyboard.press('v');
    await waitUntil(blurred, 'v to blur it again');
    await page.getByLabel('Reveal image').check();
    await waitUntil(revealed, 'the Reveal image checkbox to reveal it');

    // The image route serves the stored bytes with their real type, under a sandboxing CSP.
    const cookie = await sessionCookie();
    const served = await fetch(`${app.origin}/items/${job('approve')}/image`, { headers: { cookie } });
    expect(served.headers.get('content-type')).toBe('image/jpeg');
    expect(served.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
    expect((await served.arrayBuffer()).byteLength).toBeGreaterThan(1000);
  });

  it('approve (key a) needs a reason here, records the human decision, tags the object, and moves to the next item', async () => {
    const approve = page.getByRole('button', { name: 'Approve' });
    await approve.click();
    // The reason is required (overriding a flagged label): the browser keeps the form.
    expect(await page.locator('#reason').evaluate(inPage.valueMissing)).toBe(true);
    expect(page.url()).toBe(`${app.origin}/items/${job('approve')}`);

    await page.getByLabel('Reason').fill('a sunset over sand: no nudity');
    await page.keyboard.press('Tab'); // out of the text box: the shortcuts apply
    await page.keyboard.press('a');
    await page.waitForURL(`${app.origin}/items/${job('reject')}`);
    expect(await page.getByRole('status').first().textContent()).toMatch(/^Approved borderline-beach\.jpg: tagged moderation-status=APPROVED\.$/);

    const history = await jobRecords(t.target, job('approve'));
    expect(history.map((r) => `${r.kind} ${r.status} ${r.decidedBy}`)).toEqual(['automated REVIEW policy', `human APPROVED human:${identity.reviewer}`]);
    expect(history[1]!.reason).toBe('a sunset over sand: no nudity');
    expect(await tags(KEYS.approve)).toEqual(expect.arrayContaining([{ Key: 'moderation-status', Value: 'APPROVED' }, { Key: 'moderation-job', Value: job('approve') }]));
  });

  it('reject (button) records the decision and quarantines the object', async () => {
    await page.getByRole('heading', { name: 'borderline-dunes.png' }).waitFor();
    await page.getByLabel('Reason').fill('explicit content');
    await page.getByRole('button', { name: 'Reject' }).click();
    await page.waitForURL(`${app.origin}/items/${job('stale')}`);
    expect(await page.getByRole('status').first().textContent()).toContain('Rejected borderline-dunes.png: moved to s3://');

    const history = await jobRecords(t.target, job('reject'));
    expect(history.map((r) => `${r.status} ${r.decidedBy}`)).toEqual(['REVIEW policy', `REJECTED human:${identity.reviewer}`]);
    await expect(t.target.s3.send(new HeadObjectCommand({ Bucket: t.target.names.uploadsBucket, Key: KEYS.reject }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    const copy = await t.target.s3.send(new HeadObjectCommand({ Bucket: t.target.names.quarantineBucket, Key: `${t.target.names.uploadsBucket}/${KEYS.reject}` }));
    expect(copy.ContentLength).toBeGreaterThan(0);
  });

  it('a stale item decided elsewhere shows who won, and nothing of this reviewer is written', async () => {
    await page.getByRole('heading', { name: 'borderline-portrait.png' }).waitFor();
    // Someone else decides it (the CLI, another console) while the page is open.
    await decideReview(t.target, job('stale'), { status: 'REJECTED', reviewer: 'dana', reason: 'explicit, seen at full size' });
    await page.getByLabel('Reason').fill('looks fine to me');
    await page.getByRole('button', { name: 'Approve' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/already decided REJECTED by human:dana at .*your decision was not recorded/);
    expect(await page.locator('.decided').textContent()).toContain('Decided REJECTED by human:dana');
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await shot(page, 'conflict');
    const history = await jobRecords(t.target, job('stale'));
    expect(history.map((r) => `${r.status} ${r.decidedBy}`)).toEqual(['REVIEW policy', 'REJECTED human:dana']);
  });

  let second: Page;

  it('an item open in one session shows as taken to another, whose next item skips it', async () => {
    await page.goto(`${app.origin}/items/${job('race')}`);
    await page.getByRole('heading', { name: 'borderline-river.png' }).waitFor();

    second = await newPage();
    await second.goto(app.url);
    await second.locator('#queue-summary').waitFor();
    expect(await second.locator('#queue-summary').textContent()).toMatch(/^3 images are waiting/);
    const row = second.locator('table.queue tbody tr', { hasText: 'borderline-river.png' });
    expect(await row.textContent()).toContain(`taken by ${identity.reviewer}`);
    await second.getByRole('link', { name: 'Review the oldest free item' }).click();
    await second.waitForURL(`${app.origin}/items/${job('gone')}`);

    // Opened anyway, it says who has it.
    const other = await newPage();
    await other.goto(app.url.replace('/?token', `/items/${job('race')}?token`));
    await other.waitForURL(`${app.origin}/items/${job('race')}`);
    expect(await other.locator('.notice.warn').textContent()).toMatch(new RegExp(`^Taken: ${identity.reviewer} opened this image in another session`));
  });

  it('an image that cannot be shown gets a placeholder with the reason', async () => {
    const placeholder = second.getByRole('img', { name: 'Image unavailable' });
    await placeholder.waitFor();
    expect(await placeholder.textContent()).toMatch(/cannot be shown.*no longer in the uploads bucket \(s3:\/\/[^)]+\/uploads\/erin\/borderline-gone\.png\) nor in quarantine/s);
    expect(await second.locator('#subject').count()).toBe(0);
  });

  it('escapes what uploaders chose (keys with markup and bidirectional overrides)', async () => {
    await second.goto(`${app.origin}/items/${job('hostile')}`);
    const heading = second.getByRole('heading', { level: 1 });
    await heading.waitFor();
    expect(await heading.textContent()).toBe('borderline-<img src=x onerror=alert(1)>\\u202egnp.png');
    expect(await second.locator('img[src="x"]').count()).toBe(0);
    expect(await second.content()).not.toContain('\u202e');
  });

  it('two reviewers deciding at once: exactly one decision is recorded, the other is told whose won', async () => {
    const [a, b] = [await sessionCookie(), await sessionCookie()];
    const post = (cookie: string, decision: string, reason: string) =>
      fetch(`${app.origin}/items/${job('race')}/decision`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, origin: app.origin },
        body: new URLSearchParams({ decision, reason }).toString(),
        redirect: 'manual',
      });
    const responses = await Promise.all([post(a, 'approve', 'fine'), post(b, 'reject', 'not fine')]);
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([303, 409]);
    const humans = (await jobRecords(t.target, job('race'))).filter((r) => r.kind === 'human');
    expect(humans).toHaveLength(1);
    const loser = responses.find((r) => r.status === 409)!;
    const text = await loser.text();
    expect(text).toContain(`${humans[0]!.status} by human:${identity.reviewer}`);
    expect(text).toMatch(/role="alert"/);
  });

  it('the dashboard: decisions per day by status, top flagged categories, backlog, DLQ depth and the month’s cost', async () => {
    await page.goto(`${app.origin}/dashboard`);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    const card = (name: string) => page.getByRole('region', { name }).locator('.big').textContent();
    expect(await card('Review backlog')).toBe('2');
    expect(await card('Dead-letter queue')).toBe('0');
    expect(await card('Estimated cost this month')).toMatch(/^\$\d/);
    const chart = page.getByRole('img', { name: /^Decisions per day by status/ });
    await chart.waitFor();
    const today = new Date().toISOString().slice(0, 10);
    // 8 automated decisions and 4 human ones today.
    expect(await chart.getAttribute('aria-label')).toContain(`${today}: 12`);
    expect(await page.locator('svg.chart rect.s-REVIEW').count()).toBeGreaterThan(0);
    expect(await page.locator('table.categories').textContent()).toMatch(/Explicit\s*7/);
    await shot(page, 'dashboard');
  });

  it('`moderation console --json --no-open` prints one line with the URL; the URL opens it, nothing else does', async () => {
    const started = await startLongRunning(['console', '--home', t.home, '--json', '--no-open']);
    try {
      const { url } = JSON.parse(started.firstLine) as { url: string };
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
      const origin = new URL(url).origin;
      expect((await fetch(`${origin}/`, { redirect: 'manual' })).status).toBe(401);
      const opened = await fetch(url, { redirect: 'manual' });
      expect(opened.status).toBe(303);
      const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
      const queue = await fetch(`${origin}/`, { headers: { cookie } });
      expect(queue.status).toBe(200);
      expect(await queue.text()).toMatch(/<strong>2<\/strong> images are waiting/);
    } finally {
      const exited = new Promise((resolve) => started.child.once('exit', resolve));
      started.child.kill('SIGTERM');
      await exited;
    }
  });
});

