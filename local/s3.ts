/**
 * S3 on this machine: s3rver in-process, bound to 127.0.0.1, objects on disk under the data
 * directory, and the bucket → queue event notification the CDK stack configures: ObjectCreated Put,
 * Post and CompleteMultipartUpload (never Copy), on the uploads bucket, under a key prefix, sent to the
 * intake queue in S3's real notification shape (eventVersion 2.1, URL-encoded key, increasing
 * sequencer). s3rver's own event records are not that shape, so they are rebuilt here.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import S3rver from 's3rver';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { buildS3Notification } from '../functions/lib/s3-event.ts';
import { closeServer, endpointOf, listen, LOCAL_REGION, LOOPBACK, silentLogger, sleep, type LocalLogger } from './net.ts';

export const UPLOADS_BUCKET = 'moderation-uploads';
export const QUARANTINE_BUCKET = 'moderation-quarantine';
export const DEFAULT_UPLOADS_PREFIX = 'uploads/';
/** The CDK construct's notification filter: new content only (Copy is how quarantine moves objects). */
export const NOTIFIED_EVENTS = ['ObjectCreated:Put', 'ObjectCreated:Post', 'ObjectCreated:CompleteMultipartUpload'] as const;
export type NotifiedEvent = (typeof NOTIFIED_EVENTS)[number];

export interface NotificationRule {
  bucket: string;
  /** Key prefix filter ('' = every key). */
  prefix?: string;
  /** Key suffix filter. */
  suffix?: string;
  events?: readonly NotifiedEvent[];
  configurationId?: string;
  /** The destination queue. */
  queueUrl: string;
  sqs: SQSClient;
}

export interface LocalS3Options {
  /** Where objects are stored (a directory per bucket). */
  directory: string;
  port?: number;
  host?: string;
  region?: string;
  /** Created when missing. */
  buckets: string[];
  notifications?: NotificationRule[];
  /**
   * Notifications that could not be delivered after every retry are appended here (JSON lines) and
   * sent again at the next start, so an event is never lost. Absent: they are only logged.
   */
  spoolFile?: string;
  /** SendMessage attempts per notification before it is spooled (default 8, about 25 s). */
  deliveryAttempts?: number;
  log?: LocalLogger;
}

export interface LocalS3 {
  endpoint: string;
  port: number;
  /** Notifications sent so far (this process). */
  delivered(): number;
  /** Resolves when every notification emitted so far has been delivered (or spooled). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** S3's sequencer: hex, comparable (longer or lexically greater = later) for events of one key. Ours grows. */
export function createSequencer(): () => string {
  let last = 0n;
  return () => {
    const now = BigInt(Date.now()) << 16n;
    last = now > last ? now : last + 1n;
    return last.toString(16).toUpperCase().padStart(16, '0');
  };
}

interface S3rverRecord {
  eventName: string;
  eventTime: string;
  s3: { bucket: { name: string }; object: { key: string; size?: number; eTag?: string } };
}

interface RequestInfo {
  method: string;
  url: string;
  sourceIp: string;
}

export async function startLocalS3(options: LocalS3Options): Promise<LocalS3> {
  const host = options.host ?? LOOPBACK;
  const region = options.region ?? LOCAL_REGION;
  const log = options.log ?? silentLogger;
  const attempts = Math.max(1, options.deliveryAttempts ?? 8);
  mkdirSync(options.directory, { recursive: true });

  const s3rver = new S3rver({
    directory: options.directory,
    silent: true,
    // The signature is not what is being tested here; any client credentials are accepted (see below).
    allowMismatchedSignatures: true,
    vhostBuckets: false,
    configureBuckets: options.buckets.map((name) => ({ name })),
  });
  await s3rver.configureBuckets();

  const requests = new AsyncLocalStorage<RequestInfo>();
  const objectLocks = new KeyedLock();
  const nextSequencer = createSequencer();
  const inFlight = new Set<Promise<void>>();
  let delivered = 0;
  let closed = false;

  const send = async (rule: NotificationRule, body: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await rule.sqs.send(new SendMessageCommand({ QueueUrl: rule.queueUrl, MessageBody: body }));
        delivered++;
        return;
      } catch (err) {
        if (attempt >= attempts || closed) {
          log.error('S3 notification not delivered', { queueUrl: rule.queueUrl, error: (err as Error).message, spooled: Boolean(options.spoolFile), body });
          if (options.spoolFile) appendFileSync(options.spoolFile, `${JSON.stringify({ queueUrl: rule.queueUrl, body })}\n`);
          return;
        }
        log.warn('S3 notification delivery failed; retrying', { attempt, error: (err as Error).message });
        await sleep(Math.min(8_000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2));
      }
    }
  };
  const track = (promise: Promise<void>) => {
    inFlight.add(promise);
    void promise.finally(() => inFlight.delete(promise));
  };

  s3rver.on('event', (event: { Records: S3rverRecord[] }) => {
    const request = requests.getStore();
    for (const record of event.Records) {
      // s3rver reports CompleteMultipartUpload as Post; the request tells them apart.
      let eventName = record.eventName;
      if (eventName === 'ObjectCreated:Post' && request?.method === 'POST' && /[?&]uploadId=/.test(request.url)) {
        eventName = 'ObjectCreated:CompleteMultipartUpload';
      }
      const { name: bucket } = record.s3.bucket;
      const { key, size, eTag } = record.s3.object;
      for (const rule of options.notifications ?? []) {
        if (rule.bucket !== bucket) continue;
        if (!(rule.events ?? NOTIFIED_EVENTS).includes(eventName as NotifiedEvent)) continue;
        if (rule.prefix && !key.startsWith(rule.prefix)) continue;
        if (rule.suffix && !key.endsWith(rule.suffix)) continue;
        const notification = buildS3Notification([
          {
            bucket,
            key,
            size: size ?? 0,
            eTag: eTag ?? '',
            sequencer: nextSequencer(),
            eventName,
            eventTime: record.eventTime,
            region,
            configurationId: rule.configurationId,
          },
        ]);
        if (request) notification.Records[0]!.requestParameters.sourceIPAddress = request.sourceIp;
        track(send(rule, JSON.stringify(notification)));
      }
    }
  });

  const koa = s3rver.callback();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    // s3rver only knows its own access key (S3RVER) and does not verify SigV4 anyway: present every
    // request as signed with it, so clients with real (or any) credentials work unchanged.
    const auth = req.headers.authorization;
    if (auth) req.headers.authorization = auth.replace(/Credential=[^/,\s]+\//, 'Credential=S3RVER/');
    if (req.url && /[?&]X-Amz-Credential=/i.test(req.url)) req.url = req.url.replace(/(X-Amz-Credential=)[^%&/]+(%2F|\/)/i, '$1S3RVER$2');
    // s3rver maps keys onto file paths as they are: a key with '.' or '..' segments would read and write
    // files outside its directory. S3 itself takes such keys literally; here they are refused.
    const traversal = [req.url ?? '', typeof req.headers['x-amz-copy-source'] === 'string' ? req.headers['x-amz-copy-source'] : ''].find(hasDotSegment);
    if (traversal !== undefined) {
      const message = "Keys with '.' or '..' path segments are not supported by the local S3 (they would name files outside its directory).";
      res.writeHead(400, { 'Content-Type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code><Message>${message}</Message><RequestId>local</RequestId></Error>`);
      return;
    }
    // S3 takes x-amz-copy-source percent-encoded (encodeURIComponent per segment); s3rver reads it with
    // decodeURI, which leaves %2B %3D %26 %2C %3B %40 %24 %23 %3F %3A encoded, so a source key with
    // '+', '=', '&', ... is "NoSuchKey" (a rejected upload named "a+b.jpg" would never be quarantined).
    // Hand s3rver the form its decodeURI turns back into the exact key.
    const copySource = req.headers['x-amz-copy-source'];
    if (typeof copySource === 'string') {
      const q = copySource.indexOf('?');
      const path = q < 0 ? copySource : copySource.slice(0, q);
      try {
        req.headers['x-amz-copy-source'] = encodeURI(decodeURIComponent(path)) + (q < 0 ? '' : copySource.slice(q));
      } catch {
        // Not valid percent-encoding: s3rver answers for it.
      }
    }
    const run = () =>
      new Promise<void>((resolve) => {
        res.once('close', resolve);
        requests.run({ method: req.method ?? 'GET', url: req.url ?? '/', sourceIp: req.socket.remoteAddress ?? host }, () => koa(req, res));
      });
    void objectLocks.run(objectsOf(req.url ?? '/', req.headers['x-amz-copy-source']), run);
  };
  const server = createServer(handle);
  const port = await listen(server, options.port ?? 0, host);

  // Redeliver what a previous run could not (the file is removed once every entry is sent or re-spooled).
  // Queue URLs carry the port, which may differ from the last run: an unknown one goes to the first rule's queue.
  if (options.spoolFile && options.notifications?.length) {
    const { entries, done } = takeSpool(options.spoolFile);
    const resends: Promise<void>[] = [];
    for (const entry of entries) {
      const rule = options.notifications.find((r) => r.queueUrl === entry.queueUrl) ?? options.notifications[0]!;
      resends.push(send(rule, entry.body));
    }
    if (entries.length) log.info('re-sending S3 notifications that were not delivered last time', { count: entries.length });
    track(Promise.allSettled(resends).then(done));
  }

  const flush = async () => {
    while (inFlight.size) await Promise.allSettled([...inFlight]);
  };
  return {
    endpoint: endpointOf(port, host),
    port,
    delivered: () => delivered,
    flush,
    close: async () => {
      await closeServer(server);
      // Objects stored before the close still get their notification.
      await flush();
      closed = true;
    },
  };
}

/** Takes over the spool (and one left half-sent by a crash); `done` removes it when its entries are handled. */
function takeSpool(file: string): { entries: Array<{ queueUrl: string; body: string }>; done: () => void } {
  const taken = `${file}.sending`;
  try {
    // A leftover .sending file (a crash mid-resend) is merged first.
    const leftover = readFileSync(taken, 'utf8');
    appendFileSync(file, leftover);
    rmSync(taken);
  } catch {
    // None.
  }
  let text: string;
  try {
    renameSync(file, taken);
    text = readFileSync(taken, 'utf8');
  } catch {
    return { entries: [], done: () => {} };
  }
  const entries = text
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as { queueUrl: string; body: string }];
      } catch {
        return [];
      }
    });
  return { entries, done: () => rmSync(taken, { force: true }) };
}

/** Whether a request path (or copy source) has a '.' or '..' segment once percent-decoded. */
function hasDotSegment(pathAndQuery: string): boolean {
  const path = pathAndQuery.split('?')[0] ?? '';
  return path.split('/').some((segment) => {
    let decoded = segment;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      // Not valid percent-encoding: s3rver answers for it.
    }
    return decoded === '.' || decoded === '..' || decoded.split(/[\\/]/).some((part) => part === '..');
  });
}

/**
 * S3 writes an object atomically: a reader sees the old object or the new one, and a copy whose
 * source is deleted meanwhile either completes or fails. s3rver writes an object as three files
 * (data, md5, metadata) in steps, so two requests on one key can interleave: a copy still writing
 * its destination while a second copy of the same (just deleted) source fails and removes it left a
 * quarantined object missing (test/reliability duplicates). Requests on the same object therefore
 * run one at a time; requests on different objects still run in parallel.
 */
class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` holding every key (taken in sorted order, so two requests never wait on each other). */
  async run(keys: string[], fn: () => Promise<void>): Promise<void> {
    const releases: Array<() => void> = [];
    try {
      for (const key of [...new Set(keys)].sort()) {
        const previous = this.tails.get(key) ?? Promise.resolve();
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        const tail = previous.then(() => held);
        this.tails.set(key, tail);
        releases.push(() => {
          release();
          if (this.tails.get(key) === tail) this.tails.delete(key);
        });
        await previous;
      }
      await fn();
    } finally {
      for (const release of releases) release();
    }
  }
}

/** The objects a path-style request touches: `/<bucket>/<key>` and the copy source, as `bucket/key`. */
function objectsOf(url: string, copySource: string | string[] | undefined): string[] {
  const keys: string[] = [];
  const decode = (text: string, decoder: (s: string) => string) => {
    try {
      return decoder(text);
    } catch {
      return text;
    }
  };
  const path = url.split('?')[0] ?? '';
  const target = decode(path.replace(/^\/+/, ''), decodeURIComponent);
  if (target.includes('/')) keys.push(target);
  if (typeof copySource === 'string') {
    const source = decode(copySource.split('?')[0]!.replace(/^\/+/, ''), decodeURI);
    if (source.includes('/')) keys.push(source);
  }
  return keys;
}
