/**
 * Produces the command transcripts in docs/auditing.md and docs/operating.md: a local stack with the
 * real local detector (nsfwjs), announced in <home>/serve.json like `moderation serve`, then the
 * `moderation` binary run against it as a user would. Two faults are injected so that there is
 * something to operate on: a Rekognition outage for one uploader (its jobs fail into the DLQ) and
 * lost S3 notifications for another (objects without a decision).
 *
 *   node --import tsx test/cli/docs-transcript.ts [workdir]     # writes <workdir>/transcript.md
 */
import '../../local/polyfills.ts';
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, appendFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { startLocalStack } from '../../local/stack.ts';
import { startDetectorEndpoint, detectorError } from '../../local/detector/server.ts';
import { resolveTarget, serveFile, type ServeInfo, type TargetNames } from '../../cli/target.ts';
import { decodeS3Key } from '../../functions/lib/s3-event.ts';
import { waitForIntakeDrain } from '../../cli/dlq.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const workdir = resolve(process.argv[2] ?? '/tmp/moderation-docs');
rmSync(workdir, { recursive: true, force: true });
mkdirSync(workdir, { recursive: true });
const home = join(workdir, '.moderation');
const transcript = join(workdir, 'transcript.md');
writeFileSync(transcript, '');

let outage = (_key: string) => false;
let losing = (_key: string) => false;

const stack = await startLocalStack({
  home,
  quiet: true,
  persistQueues: false,
  waitTimeSeconds: 1,
  // Every uploader's copy of the samples goes to the detector, so the outage hits each of carol's
  // uploads (with reuse on, identical bytes would repeat alice's decisions: docs/architecture.md).
  reuseDecisions: false,
  retryIntervalOverrides: { Detect: [200, 400, 800], Record: 0, Apply: 0, RecordFailure: 0 },
  detector: {
    start: ({ host, port, s3 }) =>
      startDetectorEndpoint({
        host,
        port,
        s3,
        fault: (request) => (outage(request.Image?.S3Object?.Name ?? '') ? detectorError('InternalServerError', 'Internal server error') : undefined),
      }),
  },
  functions: {
    ingest: async (event: SQSEvent) => {
      const { handler } = await import('../../functions/ingest.ts');
      const lost = (body: string) => {
        try {
          return losing(decodeS3Key(JSON.parse(body).Records[0].s3.object.key));
        } catch {
          return false;
        }
      };
      return handler({ Records: event.Records.filter((r) => !lost(r.body)) });
    },
  },
});
const info: ServeInfo = { pid: process.pid, region: stack.region, endpoints: stack.endpoints, names: stack.names as TargetNames };
writeFileSync(serveFile(home), JSON.stringify(info));
const target = await resolveTarget({ home });

async function moderation(args: string[], options: { show?: boolean; stderr?: boolean } = {}): Promise<string> {
  let stdout = '';
  let stderr = '';
  let code = 0;
  try {
    ({ stdout, stderr } = await run(process.execPath, [join(ROOT, 'bin/moderation.js'), ...args], { cwd: workdir, env: { ...process.env, USER: 'dana', MODERATION_STACK: '' }, maxBuffer: 1 << 24 }));
  } catch (err) {
    ({ stdout = '', stderr = '', code = 1 } = err as { stdout?: string; stderr?: string; code?: number });
  }
  if (options.show !== false) {
    const shown = args.map((a) => (/[\s"|*]/.test(a) ? `"${a}"` : a)).join(' ');
    appendFileSync(transcript, `\n$ npx moderation ${shown}\n${stdout}${options.stderr !== false && stderr ? stderr : ''}${code ? `(exit code ${code})\n` : ''}`);
  }
  return stdout;
}
const note = (text: string) => appendFileSync(transcript, `\n## ${text}\n`);
const settle = async () => {
  await stack.services.s3.flush();
  await waitForIntakeDrain(target, 60_000);
  await stack.services.poller.idle();
};

try {
  note('setup: two uploaders moderated');
  await moderation(['run', join(ROOT, 'samples'), '--uploader', 'alice']);
  await moderation(['run', join(ROOT, 'samples'), '--uploader', 'bob']);

  note('setup: a Rekognition outage for carol (her jobs fail into the DLQ), a malformed message, lost notifications for dan');
  outage = (key) => key.startsWith('uploads/carol/');
  await moderation(['run', join(ROOT, 'samples'), '--uploader', 'carol', '--timeout', '30']);
  await target.sqs.send(new SendMessageCommand({ QueueUrl: target.names.intakeQueueUrl, MessageBody: '{"hello": "is this the upload queue?"}' }));
  losing = (key) => key.startsWith('uploads/dan/');
  for (const file of ['approve-landscape.jpg', 'reject-skin-blobs.jpg']) {
    await target.s3.send(new PutObjectCommand({ Bucket: target.names.uploadsBucket, Key: `uploads/dan/${file}`, Body: readFileSync(join(ROOT, 'samples', file)), ContentType: 'image/jpeg' }));
  }
  await settle();
  losing = () => false;

  note('auditors');
  await moderation(['audit', '--status', 'REJECTED', '--since', '24h']);
  await moderation(['audit', '--key', 'uploads/alice/borderline-skin-bands.jpg']);
  await moderation(['audit', '--uploader', 'carol']);
  await moderation(['audit', '--category', 'Explicit', '--status', 'REJECTED']);
  // This month, whenever the transcript is made: a fixed month would show an empty CSV once it has passed.
  const now = new Date();
  const month = now.toISOString().slice(0, 7);
  const monthEnd = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0)).toISOString().slice(0, 10);
  await moderation(['audit', '--status', 'REJECTED,REVIEW,FAILED', '--since', `${month}-01`, '--until', monthEnd, '--format', 'csv', '--limit', '3']);
  await moderation(['audit', '--status', 'REVIEW', '--format', 'json', '--limit', '1']);
  await moderation(['audit', 'export', `${month}.csv`, '--since', `${month}-01`, '--until', monthEnd]);
  appendFileSync(transcript, `\n$ head -3 ${month}.csv\n${readFileSync(join(workdir, `${month}.csv`), 'utf8').split('\n').slice(0, 3).join('\n')}\n`);

  note('review');
  const pending = await moderation(['review', 'list']);
  const ids = [...pending.matchAll(/^([0-9a-f]{12})\s+\S+\s+\S+\s+(uploads\/\S+)/gm)].map((m) => ({ id: m[1]!, key: m[2]! }));
  const alice = ids.find((i) => i.key.startsWith('uploads/alice/'))!;
  const bob = ids.find((i) => i.key.startsWith('uploads/bob/'))!;
  await moderation(['review', 'show', alice.id]);
  await moderation(['review', 'approve', alice.id, '--reason', 'abstract shapes, no nudity', '--reviewer', 'dana']);
  await moderation(['review', 'reject', bob.id, '--reason', 'reads as implied nudity on a kids-facing album']);
  await moderation(['review', 'reject', alice.id, '--reason', 'second thoughts']);
  await moderation(['audit', '--key', alice.key]);
  await moderation(['review', 'list']);

  note('operators: dead-letter queue');
  await moderation(['dlq', 'list']);
  await moderation(['dlq', 'show', 'uploads/carol/reject-skin-blobs.jpg']);
  await moderation(['dlq', 'replay', '--dry-run']);
  outage = () => false;
  await moderation(['dlq', 'replay', '--max', '2', '--rate', '5']);
  await settle();
  await moderation(['dlq', 'replay']);
  await settle();
  await moderation(['dlq', 'list']);
  await moderation(['audit', '--uploader', 'carol']);

  note('operators: reconcile');
  await moderation(['reconcile', '--min-age', '0']);
  await moderation(['reconcile', '--min-age', '0', '--enqueue']);
  await settle();
  await moderation(['reconcile', '--min-age', '0']);

  note('cost');
  await moderation(['cost', '--images', '1000000', '--borderline-rate', '0.05']);
  await moderation(['cost', '--images', '1000000', '--borderline-rate', '0.05', '--workflow', 'standard']);
  await moderation(['cost', '--images', '50000000', '--borderline-rate', '0.02', '--no-review']);

  note('errors');
  await moderation(['audit', '--status', 'DENIED']);
  await moderation(['audit', '--since', 'last tuesday']);
  await moderation(['dlq', 'replay', '--max', '-5']);
  await moderation(['review', 'reject', alice.id]);
} finally {
  await target.close();
  rmSync(serveFile(home), { force: true });
  await stack.stop();
}
process.stdout.write(`wrote ${transcript}\n`);
