/**
 * Recovery after an unclean stop. The local queues and executions live in memory: a graceful stop
 * saves the queued messages, a SIGKILL, a crash or a power cut loses them, and the objects they were
 * about would stay without a decision until an operator ran `moderation reconcile --enqueue`.
 *
 * So the stack keeps a marker file in its data directory while it runs (written at start, removed
 * at the end of a graceful stop). A start that finds the marker knows the last run ended uncleanly
 * and runs reconcile (cli/reconcile.ts) with enqueue: every object under the uploads prefix with no
 * decision for its ETag (or only FAILED records, whose dead-letter message was in memory too) goes
 * back on the intake queue. Nothing is decided twice:
 *  - objects written by this run are left to their own notifications: the S3 endpoint starts only at
 *    a whole second (`boundary`) and reconcile skips anything modified from then on (S3 lists
 *    LastModified in whole seconds, so nothing written before the boundary is listed at or after it);
 *  - notifications the last run had spooled are held, not resent, and dropped once reconcile is done
 *    (they are about the same objects, under other job ids);
 *  - reconcile's job id comes from the object's ETag and LastModified, so a recovery that is itself
 *    interrupted and run again enqueues the same job ids, which the record step writes once.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { localClientConfig, type LocalEndpoints } from './client-config.ts';
import type { LocalLogger } from './net.ts';

export const RUNNING_MARKER = 'stack-running.json';

export interface RunningMarker {
  pid: number;
  startedAt: string;
}

/** The marker the last run left, if it did not stop gracefully. */
export function readRunningMarker(home: string): RunningMarker | undefined {
  let text: string;
  try {
    text = readFileSync(join(home, RUNNING_MARKER), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<RunningMarker>;
    return { pid: Number(parsed.pid) || 0, startedAt: String(parsed.startedAt ?? '') };
  } catch {
    // Torn by the crash that left it: still a crash.
    return { pid: 0, startedAt: '' };
  }
}

export function writeRunningMarker(home: string): void {
  writeFileSync(join(home, RUNNING_MARKER), `${JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() } satisfies RunningMarker)}\n`);
}

export function removeRunningMarker(home: string): void {
  rmSync(join(home, RUNNING_MARKER), { force: true });
}

/** Waits for the next whole second and returns it: the S3 endpoint of a recovering start opens then. */
export async function nextWholeSecond(): Promise<Date> {
  const boundary = (Math.floor(Date.now() / 1000) + 1) * 1000;
  while (Date.now() < boundary) await new Promise((resolve) => setTimeout(resolve, boundary - Date.now()));
  return new Date(boundary);
}

export interface RecoveryInput {
  home: string;
  previous: RunningMarker;
  region: string;
  endpoints: LocalEndpoints;
  names: {
    uploadsBucket: string;
    uploadsPrefix: string;
    intakeQueueUrl: string;
    decisionTable: string;
    statusShards: number;
  };
  /** When this run's S3 endpoint opened: objects modified from then on are this run's. */
  boundary: Date;
  /** Notifications of the last run held at start (they are dropped once reconcile is done). */
  heldNotifications: number;
  log: LocalLogger;
}

export interface RecoveryReport {
  /** Objects under the uploads prefix written before this start. */
  objects: number;
  decided: number;
  /** Sent back to the intake queue: no record at all. */
  undecided: number;
  /** Sent back to the intake queue: only FAILED records (the dead-letter message was lost). */
  failed: number;
  enqueued: number;
  keys: string[];
}

/** Finds what the last run left undecided and enqueues it; tells the user on the stack's log (stderr). */
export async function recoverUndecided(input: RecoveryInput): Promise<RecoveryReport> {
  const { reconcile } = await import('../cli/reconcile.ts');
  const config = localClientConfig({ region: input.region, endpoints: input.endpoints });
  const s3 = new S3Client(config.s3);
  const sqs = new SQSClient(config.sqs);
  const dynamodb = DynamoDBDocumentClient.from(new DynamoDBClient(config.dynamodb), { marshallOptions: { removeUndefinedValues: true } });
  const notice = (message: string, fields?: Record<string, unknown>) => (input.log.notice ?? input.log.warn).call(input.log, message, fields);
  const when = input.previous.pid ? ` (process ${input.previous.pid}, started ${input.previous.startedAt})` : '';
  notice(`the last run on ${input.home} did not stop gracefully${when}: its queued messages were lost; looking for uploads without a decision…`);
  try {
    const report = await reconcile(
      { s3, sqs, dynamodb, region: input.region, names: input.names },
      // minAgeMs 1 with now = the boundary: whatever this run wrote (LastModified >= boundary) is left alone.
      { enqueue: true, includeFailed: true, minAgeMs: 1, now: input.boundary },
    );
    const failed = report.undecided.filter((o) => o.state === 'failed' && o.enqueued).length;
    const undecided = report.undecided.filter((o) => o.state === 'undecided' && o.enqueued).length;
    const result: RecoveryReport = {
      objects: report.objects - report.inFlight,
      decided: report.decided,
      undecided,
      failed,
      enqueued: report.enqueued,
      keys: report.undecided.filter((o) => o.enqueued).map((o) => o.key),
    };
    const where = `s3://${report.bucket}/${report.prefix}`;
    if (result.enqueued) {
      const shown = result.keys.slice(0, 10).map(printable).join(', ');
      notice(
        `recovered after the unclean stop: ${result.enqueued} of ${result.objects} objects under ${where} had no decision and were queued for moderation again` +
          `${failed ? ` (${failed} of them had FAILED and their dead-letter message was lost)` : ''}` +
          `${result.decided ? `; the ${result.decided} already decided are left as they are` : ''}. ` +
          `Queued: ${shown}${result.keys.length > 10 ? `, … ${result.keys.length - 10} more` : ''}`,
      );
    } else {
      notice(`nothing to recover: all ${result.objects} objects under ${where} have a decision`);
    }
    if (input.heldNotifications) notice(`${input.heldNotifications} S3 notifications the last run could not deliver were replaced by this recovery`);
    return result;
  } finally {
    s3.destroy();
    sqs.destroy();
    dynamodb.destroy();
  }
}

/** A key as a JSON string with every control and bidirectional formatting character escaped (keys come from uploaders). */
function printable(key: string): string {
  return JSON.stringify(key).replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
