/**
 * The process crash-recovery.test.ts kills and restarts. Each phase is a fresh
 * `node --import tsx` process on one data directory, printing JSON lines on stdout:
 *
 *   run      starts the local stack, uploads the images and lets the pipeline work on them slowly
 *            ({"event":"progress","processed":n}) until the parent SIGKILLs it;
 *   restart  starts the stack again on the same data and does nothing else: no reconcile, no
 *            operator. It waits for the stack's own recovery and for the pipeline to settle, counts
 *            what the decision table says about every image ({"event":"result",...}), then stops
 *            gracefully ({"event":"stopped",...}).
 *
 * Usage: node --import tsx test/local/crash-recovery-child.ts run|restart --home DIR --images N [--delay MS]
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { countOutcomes, putObjects, settle, startHarness, type ObjectIn } from '../reliability/harness.ts';
import { ordinaryUploads } from '../reliability/scenarios.ts';
import { RUNNING_MARKER } from '../../local/recovery.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { home: { type: 'string' }, images: { type: 'string' }, delay: { type: 'string', default: '150' } },
});
const phase = positionals[0];
const images = Number(values.images);
if ((phase !== 'run' && phase !== 'restart') || !values.home || !Number.isInteger(images) || images < 1) {
  process.stderr.write('usage: crash-recovery-child.ts run|restart --home DIR --images N [--delay MS]\n');
  process.exit(1);
}

const emit = (event: string, fields: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
export const PREFIX = 'uploads/crash-recovery/';

const uploads = await ordinaryUploads(PREFIX, images);
// Slow on purpose (two images at a time, each taking `delay` ms in the detector): the kill finds most
// of them still queued.
const h = await startHarness({ home: values.home, keepHome: true, classifyDelayMs: Number(values.delay), pollerConcurrency: 1, batchSize: 2 });

if (phase === 'run') {
  emit('started', { pid: process.pid });
  const timer = setInterval(() => emit('progress', { processed: h.stack.services.poller.stats().succeeded }), 20);
  const objects = await putObjects(h, uploads, { concurrency: 16 });
  emit('uploaded', { objects: objects.map(({ key, eTag, size }) => ({ key, eTag, size })), processed: h.stack.services.poller.stats().succeeded });
  await settle(h, { timeoutMs: 600_000 });
  clearInterval(timer);
  emit('finished', { processed: h.stack.services.poller.stats().succeeded });
  await h.stop();
} else {
  const recovery = await h.stack.recovery;
  emit('recovered', { report: recovery ?? null });
  await settle(h, { timeoutMs: 300_000 });
  const objects: ObjectIn[] = uploads.map((u) => ({ key: u.key, eTag: createHash('md5').update(u.body).digest('hex'), size: u.body.length, sentAt: 0, expect: u.expect }));
  const { counts, outcomes } = await countOutcomes(h, objects);
  emit('result', {
    counts,
    terminal: Object.fromEntries(outcomes.map((o) => [o.key, o.terminal ?? null])),
    decisionsPerObject: Object.fromEntries(outcomes.map((o) => [o.key, o.decisions.length])),
  });
  await h.stop();
  emit('stopped', { markerLeft: existsSync(join(values.home, RUNNING_MARKER)) });
}
