/**
 * Appeals and blind quality sampling in the review console (issue 14, sections 3 and 4), in a real
 * browser (headless Chromium through playwright-core) against a local stack whose Rekognition is a
 * fake ('reject' in a key → REJECTED, 'borderline' → REVIEW) and whose sample rate is 1 (every
 * APPROVED/REJECTED decision also enters the queue, blind).
 *
 * - a blind item hides the verdict (no status, labels, rule, reason, history, quarantine caption);
 *   its answer is recorded and not applied;
 * - the round trip: a REJECTED image → Appeal (with a message) → the queue's Appeals → Approve →
 *   restored to the uploads bucket tagged APPROVED, the quarantine copy gone, the history showing the
 *   appeal and its outcome;
 * - the Quality page.
 * Screenshots go to docs/images/console-{blind,appeal,queue-appeals,quality}.png (docs/console.md).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { GetObjectTaggingCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { decideReview, jobRecords } from '../../cli/human-review.ts';
import { startConsole, type ConsoleServer } from '../../cli/console/server.ts';
import { reviewerIdentity, type ReviewerIdentity } from '../../cli/console/identity.ts';
import type { DecisionRecord } from '../../functions/lib/types.ts';
import { decided, png, startTestStack, upload, type TestStack } from '../cli/helpers.ts';
import { inPage, launchChromium, waitUntil } from './browser.ts';

const IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../samples/', import.meta.url));

const KEYS = {
  painting: 'uploads/grace/reject-painting.png',
  dunes: 'uploads/erin/reject-dunes.png',
  harbour: 'uploads/frank/harbour.png',
  beach: 'uploads/alice/borderline-beach.jpg',
};

describe('moderation console: appeals and blind quality samples (browser)', () => {
  let t: TestStack;
  let app: ConsoleServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let identity: ReviewerIdentity;
  const records = new Map<string, DecisionRecord>();
  const job = (name: keyof typeof KEYS) => records.get(KEYS[name])!.jobId;
  const shot = (name: string) => page.screenshot({ path: `${IMAGES}console-${name}.png`, fullPage: true });
  const head = (bucket: string, key: string) => t.target.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  const tags = async (key: string) => (await t.target.s3.send(new GetObjectTaggingCommand({ Bucket: t.target.names.uploadsBucket, Key: key }))).TagSet ?? [];
  const bodyText = () => page.locator('body').innerText();

  beforeAll(async () => {
    browser = await launchChromium();
    t = await startTestStack({ qualitySampleRate: 1 });
    const sample = (file: string, width: number, format: 'png' | 'jpeg') => sharp(readFileSync(`${SAMPLES}${file}`)).resize({ width }).toFormat(format).toBuffer();
    const bodies: Record<keyof typeof KEYS, Buffer> = {
      painting: await sample('approve-shapes.png', 520, 'png'),
      dunes: await sample('approve-landscape.jpg', 540, 'png'),
      // Not a near-duplicate of a rejected image (those are rejected without Rekognition).
      harbour: await png(71, 400),
      beach: await sample('borderline-skin-bands.jpg', 600, 'jpeg'),
    };
    for (const name of Object.keys(KEYS) as (keyof typeof KEYS)[]) {
      await upload(t.target, KEYS[name], bodies[name]);
      records.set(KEYS[name], (await decided(t.target, [KEYS[name]])).get(KEYS[name])!);
    }
    identity = await reviewerIdentity(t.target);
    app = await startConsole({ target: t.target, identity, log: () => undefined });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    await page.goto(app.url);
    await page.waitForURL(`${app.origin}/`);
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await app?.close();
    await t?.close();
  });

  it('the new routes need the token like every other, and an appeal POST the console\'s own Origin', async () => {
    expect((await fetch(`${app.origin}/quality`, { redirect: 'manual' })).status).toBe(401);
    expect((await fetch(`${app.origin}/?kind=appeal`, { redirect: 'manual' })).status).toBe(401);
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const appeal = `${app.origin}/items/${job('dunes')}/appeal`;
    expect((await fetch(appeal, { method: 'POST', headers: { ...form, origin: app.origin }, body: 'message=x', redirect: 'manual' })).status).toBe(401);
    const cookie = (await fetch(app.url, { redirect: 'manual' })).headers.get('set-cookie')!.split(';')[0]!;
    expect((await fetch(appeal, { method: 'POST', headers: { ...form, cookie }, body: 'message=x', redirect: 'manual' })).status).toBe(403);
    expect((await jobRecords(t.target, job('dunes'))).some((r) => r.kind === 'appeal')).toBe(false);
  });

  it('the queue has every kind of work, with filters; a sample shows no label', async () => {
    expect(records.get(KEYS.painting)).toMatchObject({ status: 'REJECTED', qualitySample: true });
    expect(records.get(KEYS.harbour)).toMatchObject({ status: 'APPROVED', qualitySample: true });
    expect(records.get(KEYS.beach)!.status).toBe('REVIEW');
    const filters = await page.getByRole('navigation', { name: 'Kinds of work' }).innerText();
    expect(filters.replace(/\s+/g, ' ')).toBe('All (4) Held for review (1) Appeals (0) Blind samples (3)');
    const rows = page.locator('table.queue tbody tr');
    expect(await rows.count()).toBe(4);
    const harbour = page.locator('table.queue tbody tr', { hasText: 'harbour.png' });
    expect(await harbour.locator('td').nth(1).innerText()).toBe('blind sample');
    expect(await harbour.locator('td').nth(3).innerText()).toBe('hidden (blind)');
    await page.getByRole('link', { name: 'Blind samples (3)' }).click();
    await page.waitForURL(`${app.origin}/?kind=sample`);
    expect(await page.locator('#queue-summary').innerText()).toMatch(/^3 blind quality samples are waiting for an answer; the oldest has waited/);
  });

  it('a blind item hides the verdict: no status, labels, rule, reason, history or quarantine; always blurred', async () => {
    await page.goto(`${app.origin}/items/${job('dunes')}`);
    await page.getByRole('heading', { name: 'Blind quality check' }).waitFor();
    const image = page.locator('#subject');
    await waitUntil(() => image.evaluate(inPage.loaded), 'the image to load');
    expect((await image.evaluate(inPage.filter)).startsWith('blur(')).toBe(true);
    const text = await bodyText();
    for (const secret of ['REJECTED', 'APPROVED', 'Explicit', 'Nudity', 'rekognition', 'quarantine', 'threshold', 'held']) expect(text, secret).not.toContain(secret);
    const html = await page.content();
    expect(html).not.toMatch(/REJECTED|Explicit|s-REJECTED/);
    expect(await page.locator('table.labels, table.history, dl.facts, figcaption').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Reject' }).count()).toBe(1);
    await shot('blind');

    // Answering needs no reason; it is recorded and not applied (the rejected image stays in quarantine).
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL((url) => url.pathname !== `/items/${job('dunes')}`);
    expect(await page.getByRole('status').first().innerText()).toMatch(/^Recorded your blind answer for reject-dunes\.png: approve\. Not applied/);
    const history = await jobRecords(t.target, job('dunes'));
    expect(history.map((r) => `${r.kind} ${r.status} ${r.decidedBy}`)).toEqual(['automated REJECTED rekognition', 'sample REVIEW policy', `blind APPROVED human:${identity.reviewer}`]);
    expect((await head(t.target.names.quarantineBucket, `${t.target.names.uploadsBucket}/${KEYS.dunes}`)).ContentLength).toBeGreaterThan(0);
    await expect(head(t.target.names.uploadsBucket, KEYS.dunes)).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });

    // Once answered, the page shows the verdict and whether they agree.
    await page.goto(`${app.origin}/items/${job('dunes')}`);
    expect(await page.locator('.decided').innerText()).toMatch(new RegExp(`^Blind quality answer APPROVED by human:${identity.reviewer} at .*; the pipeline decided REJECTED: they disagree\\.$`));
  });

  it('an approved image sampled blind does not show APPROVED either; answered with the key a', async () => {
    await page.goto(`${app.origin}/items/${job('harbour')}`);
    await page.getByRole('heading', { name: 'Blind quality check' }).waitFor();
    const text = await bodyText();
    expect(text).not.toContain('APPROVED');
    expect(text).not.toContain('no label reached');
    await page.keyboard.press('a');
    await page.waitForURL((url) => url.pathname !== `/items/${job('harbour')}`);
    expect((await jobRecords(t.target, job('harbour'))).map((r) => r.kind)).toEqual(['automated', 'sample', 'blind']);
  });

  it('appeal round trip: REJECTED → Appeal → Appeals in the queue → Approve → restored to the uploads bucket, tagged APPROVED, quarantine copy gone', async () => {
    // Another reviewer answered this sample blind already (so its page is no longer blind).
    await decideReview(t.target, job('painting'), { status: 'REJECTED', reviewer: 'dana', reason: 'looks explicit' });
    await page.goto(`${app.origin}/items/${job('painting')}`);
    await page.getByRole('heading', { name: 'reject-painting.png' }).waitFor();
    expect(await page.locator('.details dl.facts').first().innerText()).toMatch(/Status\s+REJECTED/);
    expect(await page.locator('figcaption').innerText()).toBe('Shown from its copy in the quarantine bucket.');

    // The reviewer files the uploader's appeal: a message is needed.
    await page.getByRole('button', { name: 'Appeal' }).click();
    expect(await page.locator('#message').evaluate(inPage.valueMissing)).toBe(true);
    await page.getByLabel('Message').fill('It is a painting of mine, shown in a gallery: no nudity.');
    await page.getByRole('button', { name: 'Appeal' }).click();
    await page.getByRole('heading', { name: 'Appeal', exact: true }).waitFor();
    expect(await page.getByRole('status').first().innerText()).toMatch(/^Appeal filed for reject-painting\.png: it is back in the review queue/);
    expect(await page.locator('blockquote.appeal-message').innerText()).toBe('It is a painting of mine, shown in a gallery: no nudity.');
    const history = await jobRecords(t.target, job('painting'));
    expect(history.map((r) => `${r.kind} ${r.status}`)).toEqual(['automated REJECTED', 'sample REVIEW', 'blind REJECTED', 'appeal REVIEW']);

    // In the queue, under Appeals, with the message.
    await page.goto(`${app.origin}/`);
    await page.getByRole('link', { name: 'Appeals (1)' }).click();
    await page.waitForURL(`${app.origin}/?kind=appeal`);
    expect(await page.locator('#queue-summary').innerText()).toMatch(/^1 appeal is waiting for a decision;/);
    const row = page.locator('table.queue tbody tr');
    expect(await row.count()).toBe(1);
    expect(await row.innerText()).toMatch(/reject-painting\.png[\s\S]*Appeal: “It is a painting of mine, shown in a gallery: no nudity\.”[\s\S]*appeal[\s\S]*grace/);
    await shot('queue-appeals');

    // Open it: the appeal, the rejection it contests, and the decision form.
    await page.getByRole('link', { name: 'reject-painting.png' }).click();
    await page.waitForURL(`${app.origin}/items/${job('painting')}`);
    await page.getByRole('heading', { name: 'Appeal', exact: true }).waitFor();
    expect(await page.locator('section.appeal').innerText()).toMatch(/Filed .* by uploader:grace, contesting the rejection by rekognition/);
    await page.getByLabel('Reason').fill('a painting: art, not nudity');
    await shot('appeal');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL((url) => url.pathname !== `/items/${job('painting')}`);
    expect(await page.getByRole('status').first().innerText()).toMatch(/^Granted the appeal of reject-painting\.png: restored from s3:\/\/.* tagged moderation-status=APPROVED\.$/);

    // Restored: back in the uploads bucket, tagged APPROVED; the quarantine copy is gone.
    expect((await head(t.target.names.uploadsBucket, KEYS.painting)).ContentLength).toBeGreaterThan(0);
    expect(await tags(KEYS.painting)).toEqual(expect.arrayContaining([{ Key: 'moderation-status', Value: 'APPROVED' }]));
    await expect(head(t.target.names.quarantineBucket, `${t.target.names.uploadsBucket}/${KEYS.painting}`)).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    const after = await jobRecords(t.target, job('painting'));
    const appeal = after.find((r) => r.kind === 'appeal')!;
    expect(after.at(-1)).toMatchObject({ kind: 'human', status: 'APPROVED', decidedBy: `human:${identity.reviewer}`, appealOf: `${appeal.pk}|${appeal.sk}`, supersedes: `${records.get(KEYS.painting)!.pk}|DECISION#auto` });

    // The restored copy's own job: APPROVED without being judged again (it stays out of quarantine).
    const copy = (await decided(t.target, [KEYS.painting], (r) => r.kind === 'automated' && r.jobId !== job('painting'))).get(KEYS.painting)!;
    expect(copy).toMatchObject({ status: 'APPROVED', decidedBy: 'policy' });

    // The page's history shows the appeal and its outcome.
    await page.goto(`${app.origin}/items/${job('painting')}`);
    expect(await page.locator('.decided').innerText()).toMatch(/^Decided APPROVED by human:.* \(appeal granted\): “a painting: art, not nudity”$/);
    const table = await page.locator('table.history tbody').innerText();
    expect(table).toMatch(/APPROVED\s+human:\S+\s+human \(appeal outcome\)\s+a painting: art, not nudity/);
    expect(table).toMatch(/REVIEW\s+uploader:grace\s+appeal\s+It is a painting of mine/);
    expect(table).toMatch(/REJECTED\s+rekognition\s+automated/);
    expect(await page.getByRole('button', { name: 'Appeal' }).count()).toBe(0);
  });

  it('the Quality page reports agreement per status and category with counts and 95% intervals', async () => {
    await page.goto(`${app.origin}/quality`);
    await page.getByRole('heading', { name: 'Measured quality' }).waitFor();
    // Blind answers: dunes (REJECTED → approve: disagree), harbour (APPROVED → approve: agree),
    // painting (REJECTED → reject: agree; its appeal outcome does not count twice).
    expect(await page.locator('#quality-summary').innerText()).toBe(
      'In the last 30 days: 3 blind answers and 0 appeal outcomes (0 overrides); 0 of 3 quality samples still unanswered, 0 appeals open.',
    );
    const cells = async (table: string, name: string) =>
      (await page.locator(`#${table} tbody tr`, { has: page.locator('th', { hasText: new RegExp(`^${name}$`) }) }).locator('th, td').allInnerTexts()).map((s) => s.trim());
    expect(await cells('quality-status', 'All')).toEqual(['All', '3', '2', '66.7%', '20.8% – 93.9%', '3', '66.7%', '20.8% – 93.9%', '0']);
    expect(await cells('quality-status', 'APPROVED')).toEqual(['APPROVED', '1', '1', '100.0%', '20.7% – 100.0%', '1', '100.0%', '20.7% – 100.0%', '0']);
    expect(await cells('quality-status', 'REJECTED')).toEqual(['REJECTED', '2', '1', '50.0%', '9.5% – 90.5%', '2', '50.0%', '9.5% – 90.5%', '0']);
    expect(await cells('quality-category', 'Explicit')).toEqual(['Explicit', '2', '1', '50.0%', '9.5% – 90.5%', '2', '50.0%', '9.5% – 90.5%', '0']);
    expect(await cells('quality-category', '\\(no label\\)')).toEqual(['(no label)', '1', '1', '100.0%', '20.7% – 100.0%', '1', '100.0%', '20.7% – 100.0%', '0']);
    await shot('quality');
    await page.getByRole('link', { name: 'Last 7 days' }).click();
    await page.waitForURL(`${app.origin}/quality?days=7`);
    expect(await page.locator('#quality-summary').innerText()).toMatch(/^In the last 7 days: 3 blind answers/);
  });
});
