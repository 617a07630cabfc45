/**
 * The process the crash scenario kills (scenarios.ts crashScenario). Two phases on one data
 * directory, each a fresh `node --import tsx` process:
 *
 *   run      starts the local stack, uploads the images, and prints its progress as JSON lines
 *            ({"event":"progress","processed":n}) until the parent SIGKILLs it;
 *   recover  starts the stack again on the same data and recovers the way an operator would after
 *            a crash of the one-machine pipeline (the in-memory queues and executions are gone; S3
 *            and the decision table are on disk):
 *              1. `moderation reconcile --enqueue --min-age 0 --include-failed` (cli/reconcile.ts):
 *                 every object under the uploads prefix without a decision for its ETag goes back
 *                 on the intake queue;
 *              2. decisions recorded but not applied (the crash fell between the record and apply
 *                 steps) are applied again (functions/apply.ts applyDecision, idempotent);
 *            then waits for the pipeline to settle and prints the count ({"event":"result",...}).
 *
 * Usage: node --import tsx test/reliability/crash-child.ts run|recover --home DIR --images N [--delay MS]
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { check, countOutcomes, putObjects, settle, startHarness, stripQuotes, type ObjectIn, type ScenarioResult } from './harness.ts';
import { ordinaryUploads } from './scenarios.ts';
import type { Job } from '../../functions/lib/types.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { home: { type: 'string' }, images: { type: 'string' }, delay: { type: 'string', default: '20' } },
});
const phase = positionals[0];
const images = Number(values.images);
if ((phase !== 'run' && phase !== 'recover') || !values.home || !Number.isInteger(images) || images < 1) {
  process.stderr.write('usage: crash-child.ts run|recover --home DIR --images N [--delay MS]\n');
  process.exit(1);
}

const emit = (event: string, fields: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
const PREFIX = 'uploads/crash/';

const uploads = await ordinaryUploads(PREFIX, images);
const h = await startHarness({ home: values.home, keepHome: true, classifyDelayMs: Number(values.delay) });

if (phase === 'run') {
  emit('started', { pid: process.pid });
  const timer = setInterval(() => emit('progress', { processed: h.stack.services.poller.stats().succeeded }), 20);
  await putObjects(h, uploads, { concurrency: 32 });
  emit('uploaded', { count: uploads.length, processed: h.stack.services.poller.stats().succeeded });
  await settle(h, { timeoutMs: 600_000 });
  clearInterval(timer);
  emit('finished', { processed: h.stack.services.poller.stats().succeeded });
  await h.stop();
} else {
  const started = Date.now();
  // Every image was uploaded before the kill (the parent waits for "uploaded"): S3 has them all.
  const objects: ObjectIn[] = uploads.map((u) => ({
    key: u.key,
    eTag: createHash('md5').update(u.body).digest('hex'),
    size: u.body.length,
    sentAt: 0,
    expect: u.expect,
  }));
  const before = await countOutcomes(h, objects, { checkApplied: true });

  const { reconcile } = await import('../../cli/reconcile.ts');
  const names = h.stack.names;
  const report = await reconcile(
    { s3: h.s3, sqs: h.sqs, dynamodb: h.db, region: h.stack.region, names: { uploadsBucket: names.uploadsBucket, uploadsPrefix: names.uploadsPrefix, intakeQueueUrl: names.intakeQueueUrl, decisionTable: names.decisionTable, statusShards: names.statusShards } },
    { minAgeMs: 0, enqueue: true, includeFailed: true },
  );
  await settle(h, { timeoutMs: 600_000 });

  // Decided but not applied when the process died: apply again (what the apply step would have done).
  const middle = await countOutcomes(h, objects, { checkApplied: true });
  const { applyDecision } = await import('../../functions/lib/apply-decision.ts');
  const { S3ObjectStore } = await import('../../functions/store/object-store.ts');
  const objectStore = new S3ObjectStore(h.s3);
  let reapplied = 0;
  for (const o of middle.outcomes) {
    if (!o.unapplied || !o.record) continue;
    const job: Job = { jobId: o.record.jobId, bucket: names.uploadsBucket, key: o.key, eTag: stripQuotes(o.record.eTag), eventTime: o.record.decidedAt, receivedAt: o.record.decidedAt };
    await applyDecision(objectStore, job, o.record.status as never, names.quarantineBucket);
    reapplied++;
  }

  const after = await countOutcomes(h, objects, { checkApplied: true });
  const decidedBefore = before.outcomes.filter((o) => o.decisions.length > 0).length;
  const result: ScenarioResult = {
    scenario: 'crash',
    counts: after.counts,
    figures: {
      'decided before restart': decidedBefore,
      'decided but not applied at restart': before.counts.unapplied ?? 0,
      'without a decision at restart (queue lost)': objects.length - decidedBefore,
      'reconcile: objects listed / undecided / enqueued': `${report.objects} / ${report.undecided.length} / ${report.enqueued}`,
      're-applied decisions': reapplied,
      'recovery time (restart → settled)': `${((Date.now() - started) / 1000).toFixed(1)} s`,
    },
    checks: [],
    seconds: 0,
  };
  const c = after.counts;
  check(result, 'nothing lost', c.lost === 0, `${c.lost} of ${c.objectsIn} without a terminal state`);
  check(result, 'nothing decided twice', c.decidedTwice === 0, `${c.decidedTwice} object versions with more than one automated decision`);
  check(result, 'every decision applied', (c.unapplied ?? 0) === 0, `${c.unapplied ?? 0} not applied after recovery`);
  check(result, 'nothing in the DLQ', c.inDlq === 0, `${c.inDlq} messages`);
  const wrong = after.outcomes.filter((o) => o.terminal !== o.expect);
  check(result, 'every image got its verdict', wrong.length === 0, wrong.length ? `${wrong.length} differ, e.g. ${wrong[0]!.key}: ${wrong[0]!.terminal}` : `${objects.length} as expected`);
  emit('result', { result });
  await h.stop();
}
