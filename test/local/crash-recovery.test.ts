/**
 * After an unclean stop the next start recovers by itself (issue 10, section 5): a child process
 * running the local stack is SIGKILLed while most uploads are still queued (the in-memory queue is
 * lost), then the stack is simply started again on the same data directory. With no operator and
 * no `moderation reconcile`, every image ends with exactly one decision, the user is told on
 * stderr what was recovered, and a later start after a graceful stop recovers nothing.
 *
 * The restart also finds a notification the killed run had spooled (as when the queue could not be
 * reached): it is about an object the recovery enqueues anyway, under another job id, so sending
 * both would decide that image twice.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildS3Notification } from '../../functions/lib/s3-event.ts';
import { RUNNING_MARKER } from '../../local/recovery.ts';
import { QUARANTINE_BUCKET, UPLOADS_BUCKET } from '../../local/s3.ts';

const CHILD = fileURLToPath(new URL('./crash-recovery-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const IMAGES = 24;

type Line = { event: string; [field: string]: unknown };

function runChild(args: string[], killWhen?: (line: Line) => boolean): Promise<{ lines: Line[]; signal: NodeJS.Signals | null; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
      cwd: ROOT,
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Line[] = [];
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    createInterface({ input: child.stdout }).on('line', (text) => {
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        return;
      }
      lines.push(line);
      if (!killed && killWhen?.(line)) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ lines, code, signal, stderr }));
  });
}

const home = mkdtempSync(join(tmpdir(), 'moderation-crash-recovery-'));

/** The objects the local S3 holds in a bucket, from its files (s3rver keeps each object's data in `<key>._S3rver_object`). */
function objectsOnDisk(bucket: string): string[] {
  const directory = join(home, 's3', bucket);
  if (!existsSync(directory)) return [];
  return (readdirSync(directory, { recursive: true }) as string[]).filter((name) => name.endsWith('._S3rver_object')).map((name) => name.slice(0, -'._S3rver_object'.length));
}
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('local stack: the start after a SIGKILL recovers what the in-memory queue lost', () => {
  it('every image ends with exactly one decision, with no operator, and the user is told', async () => {
    const common = ['--home', home, '--images', String(IMAGES)];

    // 1. A run killed once every image is in S3 and a few are decided.
    let uploaded: Array<{ key: string; eTag: string; size: number }> | undefined;
    const first = await runChild(['run', ...common], (line) => {
      if (line.event === 'uploaded') uploaded = line.objects as typeof uploaded;
      return uploaded !== undefined && Number(line.processed) >= 2;
    });
    expect(first.signal, first.stderr.slice(-3000)).toBe('SIGKILL');
    expect(uploaded).toHaveLength(IMAGES);
    const processedAtKill = Number([...first.lines].reverse().find((l) => l.processed !== undefined)?.processed);
    expect(processedAtKill, 'the kill must come while images are still queued').toBeLessThan(IMAGES / 2);
    expect(existsSync(join(home, RUNNING_MARKER)), 'the killed run leaves its marker').toBe(true);
    // A REJECTED image decided before the kill has moved to quarantine: the rest are still in the uploads bucket.
    const inUploads = objectsOnDisk(UPLOADS_BUCKET);
    expect(new Set([...inUploads, ...objectsOnDisk(QUARANTINE_BUCKET)]).size, 'every upload is in one bucket or the other').toBe(IMAGES);

    // A notification the killed run could not deliver, for an image the recovery enqueues too.
    const spooled = uploaded!.at(-1)!;
    const notification = buildS3Notification([
      { bucket: UPLOADS_BUCKET, key: spooled.key, size: spooled.size, eTag: spooled.eTag, sequencer: '0000000000000001', eventName: 'ObjectCreated:Put', region: 'us-east-1' },
    ]);
    appendFileSync(join(home, 'undelivered-notifications.jsonl'), `${JSON.stringify({ queueUrl: 'http://127.0.0.1:1/000000000000/moderation-intake', body: JSON.stringify(notification) })}\n`);

    // 2. Started again: nothing but the start.
    const second = await runChild(['restart', ...common]);
    expect(second.code, second.stderr.slice(-3000)).toBe(0);
    const recovered = second.lines.find((l) => l.event === 'recovered')?.report as { enqueued: number; undecided: number; decided: number; objects: number } | null;
    const result = second.lines.find((l) => l.event === 'result') as unknown as {
      counts: { objectsIn: number; lost: number; decidedTwice: number; inDlq: number; failed: number; decisions: Record<string, number> };
      decisionsPerObject: Record<string, number>;
    };
    expect(recovered, second.stderr).toBeTruthy();
    expect(recovered!.objects).toBe(inUploads.length);
    expect(recovered!.enqueued).toBeGreaterThan(0);
    expect(recovered!.enqueued + recovered!.decided).toBe(inUploads.length);
    expect(result.counts.objectsIn).toBe(IMAGES);
    expect(result.counts.lost).toBe(0);
    expect(result.counts.decidedTwice).toBe(0);
    expect(result.counts.inDlq).toBe(0);
    expect(Object.values(result.decisionsPerObject)).toEqual(new Array(IMAGES).fill(1));
    // Told on stderr, even though the stack runs quiet.
    expect(second.stderr).toContain('did not stop gracefully');
    expect(second.stderr).toMatch(new RegExp(`recovered after the unclean stop: ${recovered!.enqueued} of ${inUploads.length} objects under s3://${UPLOADS_BUCKET}/uploads/ had no decision`));
    expect(second.stderr).toContain('1 S3 notifications the last run could not deliver were replaced by this recovery');
    expect(second.lines.find((l) => l.event === 'stopped')?.markerLeft).toBe(false);

    // 3. After that graceful stop, a start has nothing to recover and decides nothing again.
    const third = await runChild(['restart', ...common]);
    expect(third.code, third.stderr.slice(-3000)).toBe(0);
    expect(third.lines.find((l) => l.event === 'recovered')?.report).toBeNull();
    expect(third.stderr).not.toContain('did not stop gracefully');
    const again = third.lines.find((l) => l.event === 'result') as unknown as { counts: { lost: number; decidedTwice: number } };
    expect(again.counts).toMatchObject({ lost: 0, decidedTwice: 0 });
  }, 240_000);
});
