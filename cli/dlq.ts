/**
 * The dead-letter queue as operators handle it: what is in it (each message's error and original
 * job), and replaying it into the intake queue.
 *
 * What the messages are is the dead-letter channel's business (functions/store/dead-letter-channel.ts
 * reads each one back as its kind, error and jobs); this module walks and moves the queue.
 *
 * Replay is idempotent because the pipeline is: a job that already has a decision is stopped by the
 * detect step (it only re-applies the stored decision), so a message replayed twice is decided once.
 * A full replay is one StartMessageMoveTask; a selective one (--filter, --max) receives, sends to
 * the intake queue and deletes each chosen message, and leaves the others in the DLQ untouched.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import { describeDlqMessage, type DlqMessage, type DlqMessageKind } from '../functions/store/dead-letter-channel.ts';
import { DEAD_LETTER_ATTRIBUTES } from '../functions/lib/dead-letter.ts';
import type { DecisionStatus } from '../functions/lib/types.ts';
import { decisionStoreOf } from './stores.ts';
import type { Target } from './target.ts';
import { UsageError } from './output.ts';
import { rateLimiter } from './flags.ts';

export type DlqTarget = Pick<Target, 'sqs' | 'dynamodb'> & {
  names: Pick<Target['names'], 'intakeQueueUrl' | 'deadLetterQueueUrl' | 'decisionTable' | 'statusShards'>;
};

export { describeDlqMessage, type DlqJobRef, type DlqMessage, type DlqMessageKind } from '../functions/store/dead-letter-channel.ts';
export { RECEIVE_LIMIT_ERROR } from '../functions/lib/dead-letter.ts';

// ---------------------------------------------------------------------------------------------------
// Filters

export interface DlqFilter {
  /** Every job key must start with this. */
  keyPrefix?: string;
  /** The error name, exactly (any letter case). */
  errorName?: string;
  /** Either: the error name, or a key prefix. */
  any?: string;
}

/** `key:<prefix>`, `error:<name>`, or a bare value (an error name or a key prefix). */
export function parseDlqFilter(values: string[]): DlqFilter {
  const filter: DlqFilter = {};
  for (const raw of values) {
    const value = raw.trim();
    const match = /^(key|error):(.*)$/i.exec(value);
    if (match) {
      const [, kind, rest] = match;
      if (!rest) throw new UsageError(`--filter ${kind}: needs a value, e.g. --filter ${kind!.toLowerCase() === 'key' ? 'key:uploads/alice/' : 'error:ServiceUnavailable'}`);
      if (kind!.toLowerCase() === 'key') filter.keyPrefix = rest;
      else filter.errorName = rest;
    } else if (value) {
      filter.any = value;
    } else {
      throw new UsageError('--filter must not be empty (key:<prefix>, error:<name>, or either)');
    }
  }
  return filter;
}

export function isEmptyFilter(filter: DlqFilter): boolean {
  return filter.keyPrefix === undefined && filter.errorName === undefined && filter.any === undefined;
}

export function matchesFilter(message: DlqMessage, filter: DlqFilter): boolean {
  const sameError = (name: string) => message.errorName.toLowerCase() === name.toLowerCase();
  const keysStartWith = (prefix: string) => message.jobs.length > 0 && message.jobs.every((job) => job.key.startsWith(prefix));
  if (filter.keyPrefix !== undefined && !keysStartWith(filter.keyPrefix)) return false;
  if (filter.errorName !== undefined && !sameError(filter.errorName)) return false;
  if (filter.any !== undefined && !sameError(filter.any) && !keysStartWith(filter.any)) return false;
  return true;
}

/** Whether the filter explicitly asks for malformed bodies (they are skipped otherwise: replaying only parks them again). */
function wantsMalformed(filter: DlqFilter): boolean {
  return [filter.errorName, filter.any].some((name) => name?.toLowerCase() === 'malformedmessage');
}

// ---------------------------------------------------------------------------------------------------
// Reading the queue without consuming it

const PEEK_VISIBILITY_SECONDS = 120;

/**
 * Receives the DLQ's messages (each once), hands each batch to `visit`, and makes every message it
 * did not consume visible again at the end. `visit` returns the messages it consumed (deleted).
 */
async function walkQueue(
  target: DlqTarget,
  visit: (batch: Array<{ message: Message; described: DlqMessage }>) => Promise<{ consumed: Set<string>; stop: boolean }>,
  options: { visibilitySeconds?: number } = {},
): Promise<void> {
  const held = new Map<string, string>(); // messageId → receipt handle, for messages to release
  const seen = new Set<string>();
  try {
    for (let emptyPolls = 0; emptyPolls < 2; ) {
      const { Messages } = await target.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: target.names.deadLetterQueueUrl,
          MaxNumberOfMessages: 10,
          // A short poll first; before concluding the queue is drained, one long poll (which asks
          // every SQS server, where a short poll samples some).
          WaitTimeSeconds: emptyPolls === 0 ? 0 : 1,
          VisibilityTimeout: options.visibilitySeconds ?? PEEK_VISIBILITY_SECONDS,
          AttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      const fresh = (Messages ?? []).filter((message) => {
        held.set(message.MessageId!, message.ReceiptHandle!);
        if (seen.has(message.MessageId!)) return false;
        seen.add(message.MessageId!);
        return true;
      });
      if (fresh.length === 0) {
        emptyPolls += 1;
        continue;
      }
      emptyPolls = 0;
      const { consumed, stop } = await visit(fresh.map((message) => ({ message, described: describeDlqMessage(message) })));
      for (const id of consumed) held.delete(id);
      if (stop) break;
    }
  } finally {
    await release(target, held);
  }
}

async function release(target: DlqTarget, held: Map<string, string>): Promise<void> {
  const entries = [...held.entries()];
  for (let i = 0; i < entries.length; i += 10) {
    await target.sqs
      .send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: target.names.deadLetterQueueUrl,
          Entries: entries.slice(i, i + 10).map(([id, receiptHandle], n) => ({ Id: `m${n}`, ReceiptHandle: receiptHandle, VisibilityTimeout: 0 })),
        }),
      )
      .catch(() => undefined); // Not fatal: they become visible again after the visibility timeout anyway.
  }
}

export interface QueueDepth {
  visible: number;
  inFlight: number;
  delayed: number;
}

export async function queueDepth(target: Pick<Target, 'sqs'>, queueUrl: string): Promise<QueueDepth> {
  const { Attributes = {} } = await target.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

/** The DLQ's messages (up to `max`), oldest failure first. Nothing is consumed. */
export async function listDlq(target: DlqTarget, options: { max?: number; filter?: DlqFilter } = {}): Promise<DlqMessage[]> {
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const found: DlqMessage[] = [];
  await walkQueue(target, async (batch) => {
    for (const { described } of batch) {
      if (options.filter && !matchesFilter(described, options.filter)) continue;
      if (found.length < max) found.push(described);
    }
    return { consumed: new Set(), stop: found.length >= max };
  });
  return found.sort((a, b) => a.failedAt.localeCompare(b.failedAt));
}

/**
 * One message: by message id, a job id (either at least 6 leading characters), or the object key.
 * Message ids of the embedded local stack change at every start (its queues are saved and restored),
 * so a job id or key is the stable way to name one there.
 */
export async function showDlqMessage(target: DlqTarget, id: string): Promise<DlqMessage> {
  const wanted = id.trim();
  if (!wanted) throw new UsageError('a message id, job id or object key is needed');
  const matches: DlqMessage[] = [];
  const isMatch = (m: DlqMessage) =>
    m.messageId === wanted ||
    (wanted.length >= 6 && m.messageId.startsWith(wanted)) ||
    m.jobs.some((j) => j.key === wanted || (wanted.length >= 6 && j.jobId.startsWith(wanted.toLowerCase())));
  await walkQueue(target, async (batch) => {
    for (const { described } of batch) if (isMatch(described)) matches.push(described);
    return { consumed: new Set(), stop: matches.some((m) => m.messageId === wanted) };
  });
  const exact = matches.find((m) => m.messageId === wanted);
  if (exact) return exact;
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new UsageError(`${wanted} matches ${matches.length} messages (${matches.map((m) => m.messageId).join(', ')}): give a message id`);
  }
  throw new UsageError(`no message for ${wanted} in the dead-letter queue (see \`moderation dlq list\`)`);
}

/** Waits until the intake queue holds nothing (visible or in flight), or the timeout. True when drained. */
export async function waitForIntakeDrain(target: Pick<Target, 'sqs'> & { names: Pick<Target['names'], 'intakeQueueUrl'> }, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const depth = await queueDepth(target, target.names.intakeQueueUrl);
    if (depth.visible + depth.inFlight + depth.delayed === 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The status already recorded for each job (its latest decision), if any. */
export function decidedStatuses(target: DlqTarget, jobIds: string[]): Promise<Map<string, DecisionStatus>> {
  return decisionStoreOf(target).decidedStatuses(jobIds);
}

// ---------------------------------------------------------------------------------------------------
// Replay

export interface ReplayOptions {
  dryRun?: boolean;
  /** Move at most this many messages (selective replay). */
  max?: number;
  /** Messages per second. */
  rate?: number;
  filter?: DlqFilter;
  /** Move malformed bodies too (they are parked again unless the ingest handler now reads them). */
  includeMalformed?: boolean;
  /** Full redrive only: wait for the move task to finish (default true). */
  wait?: boolean;
  /** Called after each message is moved (progress). */
  onMoved?: (message: DlqMessage) => void;
}

export interface ReplayItem {
  messageId: string;
  kind: DlqMessageKind;
  errorName: string;
  keys: string[];
  jobIds: string[];
  /** Already decided jobs (the replay only re-applies their decision). */
  decided?: string[];
  note?: string;
}

export interface ReplayReport {
  mode: 'move-task' | 'per-message';
  dryRun: boolean;
  /** Messages looked at (per-message and dry runs). */
  examined: number;
  /** Moved (or, in a dry run, would move). */
  moved: number;
  items: ReplayItem[];
  skipped: ReplayItem[];
  /** Full redrive: the move task's handle and final status. */
  task?: { handle?: string; status?: string; failureReason?: string; toMove?: number };
  /** What is left in the DLQ after the replay. */
  remaining?: QueueDepth;
}

export async function queueArnOf(target: Pick<Target, 'sqs'>, queueUrl: string): Promise<string> {
  const { Attributes } = await target.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  if (!Attributes?.QueueArn) throw new Error(`no QueueArn for ${queueUrl}`);
  return Attributes.QueueArn;
}

/**
 * Replays the DLQ into the intake queue. Without a filter or --max (and not a dry run) it is a full
 * redrive with StartMessageMoveTask; otherwise each chosen message is sent to the intake queue and
 * then deleted from the DLQ (a crash in between leaves it in both: replayed twice, decided once).
 */
export async function replayDlq(target: DlqTarget, options: ReplayOptions = {}): Promise<ReplayReport> {
  const filter = options.filter ?? {};
  if (options.max !== undefined && (!Number.isInteger(options.max) || options.max < 0)) throw new UsageError(`--max must be a whole number ≥ 0, got ${options.max}`);
  if (options.rate !== undefined && !(options.rate > 0)) throw new UsageError(`--rate must be greater than 0, got ${options.rate}`);
  const full = !options.dryRun && options.max === undefined && isEmptyFilter(filter) && !options.includeMalformed;
  if (full) {
    const report = await fullRedrive(target, options);
    if (report) return report;
    // The SQS endpoint has no message move tasks: fall back to moving each message.
  }
  return selectiveReplay(target, options, filter, full ? 'move-task fallback' : undefined);
}

async function fullRedrive(target: DlqTarget, options: ReplayOptions): Promise<ReplayReport | undefined> {
  const [sourceArn, destinationArn] = await Promise.all([queueArnOf(target, target.names.deadLetterQueueUrl), queueArnOf(target, target.names.intakeQueueUrl)]);
  let handle: string | undefined;
  try {
    const started = await target.sqs.send(
      new StartMessageMoveTaskCommand({
        SourceArn: sourceArn,
        DestinationArn: destinationArn,
        ...(options.rate ? { MaxNumberOfMessagesPerSecond: Math.max(1, Math.min(500, Math.round(options.rate))) } : {}),
      }),
    );
    handle = started.TaskHandle;
  } catch (err) {
    const name = (err as Error).name;
    if (/UnsupportedOperation|InvalidAction|UnknownOperation|NotImplemented/i.test(name)) return undefined;
    throw err;
  }
  const report: ReplayReport = { mode: 'move-task', dryRun: false, examined: 0, moved: 0, items: [], skipped: [], task: { handle, status: 'RUNNING' } };
  if (options.wait === false) return report;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const { Results } = await target.sqs.send(new ListMessageMoveTasksCommand({ SourceArn: sourceArn, MaxResults: 10 }));
    const task = Results?.find((r) => r.TaskHandle === handle) ?? Results?.[0];
    if (!task) break;
    report.moved = Number(task.ApproximateNumberOfMessagesMoved ?? 0);
    report.task = { handle, status: task.Status, failureReason: task.FailureReason, toMove: task.ApproximateNumberOfMessagesToMove };
    if (task.Status !== 'RUNNING' && task.Status !== 'CANCELLING') break;
  }
  report.remaining = await queueDepth(target, target.names.deadLetterQueueUrl);
  return report;
}

async function selectiveReplay(target: DlqTarget, options: ReplayOptions, filter: DlqFilter, note?: string): Promise<ReplayReport> {
  const dryRun = Boolean(options.dryRun);
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const includeMalformed = Boolean(options.includeMalformed) || wantsMalformed(filter);
  const pace = rateLimiter(options.rate);
  const report: ReplayReport = { mode: 'per-message', dryRun, examined: 0, moved: 0, items: [], skipped: [] };
  if (max === 0) return report;
  // Long enough that the messages being moved stay hidden from anyone else for the whole run.
  // (A message seen again after its visibility ran out is recognised by id and not moved twice.)
  const expectedSeconds = options.rate && Number.isFinite(max) ? Math.ceil(max / options.rate) : 840;
  const visibilitySeconds = Math.min(43_200, Math.max(PEEK_VISIBILITY_SECONDS, expectedSeconds + 60));
  await walkQueue(
    target,
    async (batch) => {
      const consumed = new Set<string>();
      const chosen: Array<{ message: Message; described: DlqMessage }> = [];
      for (const entry of batch) {
        const { described } = entry;
        if (report.moved + chosen.length >= max) break;
        report.examined += 1;
        const item = replayItem(described);
        if (!matchesFilter(described, filter)) {
          report.skipped.push({ ...item, note: 'does not match --filter' });
        } else if ((described.kind === 'malformed' && !includeMalformed) || described.kind === 'test-event') {
          report.skipped.push({
            ...item,
            note: described.kind === 'test-event' ? 'S3 test event: nothing to moderate' : 'malformed body: ingest would park it again (--filter error:MalformedMessage to move it anyway)',
          });
        } else {
          chosen.push(entry);
        }
      }
      const statuses = await decidedStatuses(target, chosen.flatMap((c) => c.described.jobs.map((j) => j.jobId)));
      for (const { message, described } of chosen) {
        const item = replayItem(described);
        const decided = described.jobs.filter((j) => statuses.has(j.jobId)).map((j) => `${j.jobId.slice(0, 12)} ${statuses.get(j.jobId)}`);
        if (decided.length) item.decided = decided;
        if (!dryRun) {
          await pace();
          await target.sqs.send(
            new SendMessageCommand({
              QueueUrl: target.names.intakeQueueUrl,
              MessageBody: described.body,
              MessageAttributes: { [DEAD_LETTER_ATTRIBUTES.replayOf]: { DataType: 'String', StringValue: described.messageId } },
            }),
          );
          await target.sqs.send(new DeleteMessageCommand({ QueueUrl: target.names.deadLetterQueueUrl, ReceiptHandle: message.ReceiptHandle! }));
          consumed.add(described.messageId);
          options.onMoved?.(described);
        }
        report.items.push(item);
        report.moved += 1;
      }
      return { consumed, stop: report.moved >= max };
    },
    { visibilitySeconds },
  );
  if (note) for (const item of report.items) item.note ??= note;
  if (!dryRun) report.remaining = await queueDepth(target, target.names.deadLetterQueueUrl);
  return report;
}

function replayItem(message: DlqMessage): ReplayItem {
  return {
    messageId: message.messageId,
    kind: message.kind,
    errorName: message.errorName,
    keys: message.jobs.map((j) => j.key),
    jobIds: message.jobs.map((j) => j.jobId),
  };
}

/** What replaying this message will do, in a sentence. */
export function jobsNote(message: DlqMessage, decided: boolean): string {
  if (message.kind === 'malformed') return 'replay: the ingest handler would park this body again; fix the sender (or use --include-malformed once it can be read)';
  if (message.kind === 'test-event') return 'replay: nothing to moderate (an S3 test event); it can be deleted';
  if (decided) return 'replay: the job already has a decision; replaying only re-applies it (decided once)';
  return `replay: \`moderation dlq replay --filter key:${message.jobs[0]?.key ?? ''}\` sends it back to the intake queue`;
}
