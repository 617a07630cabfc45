/**
 * S3 on this machine: s3rver in-process, bound to 127.0.0.1, objects on disk under the data
 * directory, and the bucket → queue event notification the CDK stack configures: ObjectCreated Put,
 * Post, Copy and CompleteMultipartUpload, on the uploads bucket, under a key prefix, sent to the
 * intake queue in S3's real notification shape (eventVersion 2.1, URL-encoded key, increasing
 * sequencer). s3rver's own event records are not that shape, so they are rebuilt here.
 *
 * s3rver names files after request input (bucket, key, upload id, part number, form key, copy
 * source): its store is loaded here with a filesystem wrapper that refuses every path outside the
 * directory (confinedFilesystemStore, at the end of this file), so no request reads, writes or
 * deletes anything else on the machine.
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, resolve as resolvePath, sep } from 'node:path';
import { compileFunction } from 'node:vm';
import S3rver from 's3rver';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { buildS3Notification } from '../functions/lib/s3-event.ts';
import { closeServer, endpointOf, escapeXml, listen, LOCAL_REGION, LOOPBACK, silentLogger, sleep, type LocalLogger } from './net.ts';
import { copySourceObject, invalidTaggingHeader, resetTagsOnWrite, tagsMiddleware, type TaggableStore } from './s3-tags.ts';
import { accessKeyOf, checkServingGate, statusTagIn, type ServingGateOptions } from './serving-gate.ts';

export const UPLOADS_BUCKET = 'moderation-uploads';
export const QUARANTINE_BUCKET = 'moderation-quarantine';
export const DEFAULT_UPLOADS_PREFIX = 'uploads/';
/**
 * The CDK construct's notification filter: every way new content lands, Copy included (a platform
 * that renames by copying must not publish an unmoderated object). No loop: applying a decision
 * copies only into the quarantine bucket, which notifies nothing.
 */
export const NOTIFIED_EVENTS = ['ObjectCreated:Put', 'ObjectCreated:Post', 'ObjectCreated:Copy', 'ObjectCreated:CompleteMultipartUpload'] as const;
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
  /**
   * What to do at start with notifications an earlier run spooled: 'resend' them (the default), or
   * 'hold' them aside, unsent, until discardHeldNotifications(): for a start that recovers the
   * objects they were about another way (the stack after an unclean stop: reconcile finds every
   * undecided object, and sending both would moderate an object twice under two job ids).
   */
  spooledAtStart?: 'resend' | 'hold';
  /** Enforce the uploads bucket's serving gate (local/serving-gate.ts) for requests not signed by the pipeline. */
  servingGate?: ServingGateOptions;
  log?: LocalLogger;
}

export interface LocalS3 {
  endpoint: string;
  port: number;
  /** Notifications sent so far (this process). */
  delivered(): number;
  /** Resolves when every notification emitted so far has been delivered (or spooled). */
  flush(): Promise<void>;
  /** Notifications of an earlier run held at start (spooledAtStart 'hold'). */
  heldNotifications(): number;
  /** Removes the held notifications for good (call once what replaces them is done). */
  discardHeldNotifications(): void;
  /**
   * An object's size and, up to `maxBytes`, its bytes, straight from the store: how another emulated
   * service reads S3 in this process (the local Rekognition reads images by S3 reference), without an
   * HTTP request. Waits for a write in progress on the object, as a GET does. Undefined: no such object.
   */
  readObject(bucket: string, key: string, maxBytes: number): Promise<StoredObject | undefined>;
  close(): Promise<void>;
}

/** What readObject finds: the size, and the bytes unless there are more than were asked for. */
export interface StoredObject {
  size: number;
  bytes?: Buffer;
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
  // Every file s3rver reads or writes goes through this store, which refuses any path outside the directory.
  const store = confinedFilesystemStore(options.directory);
  const app = s3rver as unknown as { store: unknown; context: { store: unknown } };
  app.store = app.context.store = store;
  // Tags as S3 keeps them: a written object starts with the tags its request gives (local/s3-tags.ts).
  resetTagsOnWrite(store as TaggableStore);
  cacheBucketConfigurations(store as BucketConfigurationStore);
  await s3rver.configureBuckets();

  // Which request an s3rver 'event' comes from (a POST with an uploadId is CompleteMultipartUpload; the
  // caller's address): s3rver emits it through ctx.app, so each request gets an app of its own whose
  // emit passes the request along. (Not an AsyncLocalStorage: in Node 20 it turns on promise hooks for
  // every promise of the process, a tax on the whole local stack.)
  const middleware = (s3rver as unknown as { middleware: Array<(ctx: never, next: () => Promise<void>) => Promise<void>> }).middleware;
  // s3rver logs every request through koa-logger into a silenced winston console: formatting for nothing.
  if (middleware[0]?.name === 'logger') middleware.shift();
  middleware.unshift(async (ctx: { app: S3rver; req: IncomingMessage }, next) => {
    const app = ctx.app;
    const info: RequestInfo = { method: ctx.req.method ?? 'GET', url: ctx.req.url ?? '/', sourceIp: ctx.req.socket.remoteAddress ?? host };
    ctx.app = Object.create(app, {
      emit: { value: (name: string, ...args: unknown[]) => (name === 'event' ? onEvent(args[0] as { Records: S3rverRecord[] }, info) : app.emit(name, ...args)) },
    }) as S3rver;
    await next();
  });
  // After it (outside s3rver's own): the tags a PutObject or CopyObject gives, once the object is written.
  middleware.splice(1, 0, tagsMiddleware(store as TaggableStore) as never);
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

  const storedETag = async (bucket: string, key: string): Promise<string> => {
    const metadata = await (store as { getMetadata(b: string, k: string): Promise<Record<string, string>> }).getMetadata(bucket, key).catch(() => undefined);
    return metadata?.etag ? (JSON.parse(metadata.etag) as string) : '';
  };

  const onEvent = (event: { Records: S3rverRecord[] }, request: RequestInfo | undefined): boolean => {
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
        // s3rver's Copy event carries no ETag (S3's does): read it from the stored object's metadata.
        const sequencer = nextSequencer();
        track(
          (async () => {
            const notification = buildS3Notification([
              {
                bucket,
                key,
                size: size ?? 0,
                eTag: eTag ?? (await storedETag(bucket, key)),
                sequencer,
                eventName,
                eventTime: record.eventTime,
                region,
                configurationId: rule.configurationId,
              },
            ]);
            if (request) notification.Records[0]!.requestParameters.sourceIPAddress = request.sourceIp;
            await send(rule, JSON.stringify(notification));
          })(),
        );
      }
    }
    return true;
  };

  const koa = s3rver.callback();
  const gate = options.servingGate;
  const readStatus = async (bucket: string, key: string): Promise<string | undefined> => {
    const tagging = await (store as { getSubresource(b: string, k: string, t: string): Promise<{ toXML(): string } | null> })
      .getSubresource(bucket, key, 'tagging')
      .catch(() => null);
    return statusTagIn(tagging?.toXML());
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    // s3rver takes x-amz-* query parameters as headers (a presigned CopyObject URL carries its copy
    // source so). Move the copy source into the header here, so that it gets the same checks and
    // decoding as one sent as a header.
    hoistCopySource(req);
    const refusal = refusedOutright(req);
    if (refusal) {
      sendS3Error(res, 400, refusal.code, refusal.message);
      return;
    }
    reencodeCopySource(req);
    // The gate looks at the object inside its lock: a read that arrives while an upload replaces the
    // object waits for it, and is judged by the new object's tags, not served the new bytes under the
    // old object's APPROVED.
    void objectLocks
      .run(objectsOf(req.url ?? '/', req.headers['x-amz-copy-source']), async () => {
        if (gate) {
          const body = await peekTaggingBody(req, gate);
          const verdict = body === 'length-required' ? { allowed: false as const, reason: 'a tagging request needs a Content-Length' } : await checkServingGate(req, gate, readStatus, body);
          if (!verdict.allowed) {
            sendS3Error(res, 403, 'AccessDenied', verdict.reason);
            return;
          }
        }
        signedAsS3rver(req);
        // Held until the response is done (a download streams after s3rver's handler returns) and so
        // is s3rver's handler (after the write come the request's tags, even if the client has gone).
        // A request whose body never came in whole never ends in s3rver: its close is enough.
        await new Promise<void>((resolve) => {
          let closed = false;
          let handled = false;
          const settle = () => {
            if (closed && (handled || !req.complete)) resolve();
          };
          res.once('close', () => {
            closed = true;
            settle();
          });
          const finished = () => {
            handled = true;
            settle();
          };
          Promise.resolve(koa(req, res)).then(finished, finished);
        });
      })
      .catch((err: Error) => {
        log.warn('local S3 request failed; refused', { error: err.message });
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
  };
  const server = createServer(handle);
  const port = await listen(server, options.port ?? 0, host);

  // Redeliver what a previous run could not (the file is removed once every entry is sent or re-spooled).
  // Queue URLs carry the port, which may differ from the last run: an unknown one goes to the first rule's queue.
  let held = 0;
  let discardHeld = () => {};
  if (options.spoolFile && options.notifications?.length && options.spooledAtStart === 'hold') {
    const { entries, done } = takeSpool(options.spoolFile);
    held = entries.length;
    discardHeld = () => {
      done();
      held = 0;
    };
  } else if (options.spoolFile && options.notifications?.length) {
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
    heldNotifications: () => held,
    discardHeldNotifications: () => discardHeld(),
    readObject: async (bucket, key, maxBytes) => {
      let found: StoredObject | undefined;
      await objectLocks.run([`${bucket}/${key}`], async () => {
        type Found = { metadata: Record<string, string>; content?: NodeJS.ReadableStream & { destroy(): void } } | null;
        const object = await (store as { getObject(b: string, k: string): Promise<Found> }).getObject(bucket, key);
        if (!object) return;
        const size = Number(object.metadata['content-length']);
        if (size > maxBytes) {
          object.content?.destroy();
          found = { size };
          return;
        }
        const chunks: Buffer[] = [];
        for await (const chunk of object.content ?? []) chunks.push(chunk as Buffer);
        found = { size, bytes: Buffer.concat(chunks) };
      });
      return found;
    },
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

/** s3rver only knows its own access key (S3RVER) and does not verify SigV4 anyway: every request is presented as signed with it, so clients with real (or any) credentials work unchanged. */
function signedAsS3rver(req: IncomingMessage): void {
  const auth = req.headers.authorization;
  if (auth) req.headers.authorization = auth.replace(/Credential=[^/,\s]+\//, 'Credential=S3RVER/');
  if (req.url && /[?&]X-Amz-Credential=/i.test(req.url)) req.url = req.url.replace(/(X-Amz-Credential=)[^%&/]+(%2F|\/)/i, '$1S3RVER$2');
}

/** An error answer in S3's XML shape (what SDK clients turn into a named error). */
function sendS3Error(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'Content-Type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message><RequestId>local</RequestId></Error>`);
}

/** What is refused before anything is looked at or written (400). */
function refusedOutright(req: IncomingMessage): { code: string; message: string } | undefined {
  // s3rver maps keys onto file paths as they are: a key with '.' or '..' segments would read and write
  // files outside its directory. S3 itself takes such keys literally; here they are refused.
  const traversal = [req.url ?? '', typeof req.headers['x-amz-copy-source'] === 'string' ? req.headers['x-amz-copy-source'] : ''].find(hasDotSegment);
  if (traversal !== undefined) {
    return { code: 'InvalidArgument', message: "Keys with '.' or '..' path segments are not supported by the local S3 (they would name files outside its directory)." };
  }
  // S3 refuses a tag set it cannot keep before it writes anything; so does the local S3.
  const invalidTags = invalidTaggingHeader(req);
  return invalidTags === undefined ? undefined : { code: 'InvalidTag', message: invalidTags };
}

/**
 * S3 takes x-amz-copy-source percent-encoded (encodeURIComponent per segment); s3rver reads it with
 * decodeURI, which leaves %2B %3D %26 %2C %3B %40 %24 %23 %3F %3A encoded, so a source key with
 * '+', '=', '&', ... is "NoSuchKey" (a rejected upload named "a+b.jpg" would never be quarantined).
 * Hand s3rver the form its decodeURI turns back into the exact key (copySourceObject reads it so).
 */
function reencodeCopySource(req: IncomingMessage): void {
  const copySource = req.headers['x-amz-copy-source'];
  if (typeof copySource !== 'string') return;
  const q = copySource.indexOf('?');
  const path = q < 0 ? copySource : copySource.slice(0, q);
  try {
    req.headers['x-amz-copy-source'] = encodeURI(decodeURIComponent(path)) + (q < 0 ? '' : copySource.slice(q));
  } catch {
    // Not valid percent-encoding: s3rver answers for it.
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
    // As s3rver reads it (after reencodeCopySource): decodeURI of the whole header, so a '?' in a key
    // is part of the key.
    const source = copySourceObject(copySource);
    if (source) keys.push(`${source.bucket}/${source.key}`);
  }
  return keys;
}

/** Moves an `x-amz-copy-source` query parameter (any case) into the header of that name. */
function hoistCopySource(req: IncomingMessage): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  if (q < 0) return;
  let found: string | undefined;
  const kept = url
    .slice(q + 1)
    .split('&')
    .filter((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // Left as is.
      }
      if (decoded.toLowerCase() !== 'x-amz-copy-source') return true;
      const value = eq < 0 ? '' : pair.slice(eq + 1).replace(/\+/g, ' ');
      try {
        found = decodeURIComponent(value);
      } catch {
        found = value;
      }
      return false;
    });
  if (found === undefined) return;
  // Once the query's own encoding is undone, the value is the header's (itself percent-encoded: /bucket/key%20name).
  req.headers['x-amz-copy-source'] = found;
  req.url = url.slice(0, q) + (kept.length ? `?${kept.join('&')}` : '');
}

// ---------------------------------------------------------------------------------------------------
// The confined store

/**
 * s3rver's FilesystemStore, with every filesystem call confined to its root directory.
 *
 * s3rver maps request input straight onto file paths: the bucket and key, the multipart `uploadId`
 * and `partNumber` query parameters, the `key` field of a browser POST form, the copy source. With
 * '..' in any of them it read, wrote and deleted files anywhere the user can. Rather than checking
 * each route (and missing the next one), the store module is loaded here with its own `fs-extra`:
 * a wrapper that resolves every path argument of every call and refuses (S3 AccessDenied, 403) any
 * that is not inside the root. This is the one place s3rver's files are opened; calls the wrapper
 * does not know fail closed.
 *
 * On top of that (for precise errors and to keep buckets apart inside the root) the store refuses
 * bucket names that are not one path segment (400 InvalidBucketName), keys with '.' or '..'
 * segments or NUL (400 InvalidArgument), upload ids that s3rver cannot have issued (404
 * NoSuchUpload) and part numbers outside 1-10000 (400 InvalidArgument).
 */
interface BucketConfigurationStore {
  getSubresource(bucket: string, key: string | undefined, type: string): Promise<unknown>;
  putSubresource(bucket: string, key: string | undefined, resource: { type: string }): Promise<void>;
  deleteSubresource(bucket: string, key: string | undefined, type: string): Promise<void>;
  deleteBucket(bucket: string): Promise<unknown>;
}

/**
 * s3rver reads the bucket's CORS and website configuration files on every request (two failed file
 * opens per request when, as here, there are none): a bucket's configuration is read once and kept
 * until this store changes it, which it alone does.
 */
function cacheBucketConfigurations(store: BucketConfigurationStore): void {
  const cache = new Map<string, Promise<unknown>>();
  const id = (bucket: string, type: string) => `${bucket}\u0000${type}`;
  const { getSubresource, putSubresource, deleteSubresource, deleteBucket } = store;
  store.getSubresource = function (bucket, key, type) {
    if (key !== undefined) return getSubresource.call(this, bucket, key, type);
    let found = cache.get(id(bucket, type));
    if (!found) {
      // Bounded: a client may name any number of buckets that do not exist.
      if (cache.size >= 64) cache.clear();
      found = getSubresource.call(this, bucket, key, type);
      cache.set(id(bucket, type), found);
      // A failed read is not kept: the next request reads again.
      found.catch(() => cache.delete(id(bucket, type)));
    }
    return found;
  };
  store.putSubresource = async function (bucket, key, resource) {
    if (key === undefined) cache.delete(id(bucket, resource.type));
    try {
      return await putSubresource.call(this, bucket, key, resource);
    } finally {
      if (key === undefined) cache.delete(id(bucket, resource.type));
    }
  };
  store.deleteSubresource = async function (bucket, key, type) {
    try {
      return await deleteSubresource.call(this, bucket, key, type);
    } finally {
      if (key === undefined) cache.delete(id(bucket, type));
    }
  };
  store.deleteBucket = async function (bucket) {
    try {
      return await deleteBucket.call(this, bucket);
    } finally {
      for (const key of [...cache.keys()]) if (key.startsWith(`${bucket}\u0000`)) cache.delete(key);
    }
  };
}

export function confinedFilesystemStore(directory: string): unknown {
  const { Store } = confinedStoreClasses(directory);
  return new Store(resolvePath(directory));
}

const requireHere = createRequire(import.meta.url);
const s3rverMain = requireHere.resolve('s3rver');
const requireFromS3rver = createRequire(s3rverMain);

type S3ErrorClass = new (code: string, message: string, detail?: Record<string, unknown>) => Error;
const S3Error = requireFromS3rver('./models/error') as S3ErrorClass;

interface StoreLike {
  getBucketPath(bucket: string): string;
  getResourcePath(bucket: string, key?: string, resource?: string): string;
  initiateUpload(bucket: string, key: string, uploadId: string, metadata: unknown): Promise<unknown>;
  putPart(bucket: string, uploadId: string, partNumber: unknown, content: unknown): Promise<unknown>;
  putObjectMultipart(bucket: string, uploadId: string, parts: unknown): Promise<unknown>;
  [method: string]: unknown;
}
type StoreClass = new (root: string) => StoreLike;

/** The number of leading path arguments of each fs-extra function s3rver's store and utils call. */
const FS_PATH_ARGUMENTS: Record<string, number> = {
  stat: 1,
  statSync: 1,
  readFile: 1,
  writeFile: 1,
  createReadStream: 1,
  createWriteStream: 1,
  mkdirp: 1,
  copy: 2,
  unlink: 1,
  readdir: 1,
  readdirSync: 1,
  rmdir: 1,
  remove: 1,
  removeSync: 1,
};

/** Functions that return a value (not a promise): a refusal is thrown; the others return a rejected promise. */
function returnsSynchronously(name: string): boolean {
  return name.endsWith('Sync') || name.startsWith('create');
}

export class OutsideDirectoryError extends S3Error {
  /** The path that was refused. */
  readonly path: string;
  constructor(path: unknown) {
    // The path is not echoed back: it would tell the caller where the data directory is.
    super('AccessDenied', 'Access Denied: the local S3 reads and writes only inside its data directory.');
    this.name = 'OutsideDirectoryError';
    this.path = String(path);
  }
}

/** fs-extra as s3rver's store sees it: every path argument resolved and checked to be inside `root`. */
export function confinedFs(root: string): Record<string, unknown> {
  const realFs = requireFromS3rver('fs-extra') as Record<string, unknown>;
  const base = resolvePath(root);
  const inside = (path: unknown): boolean => {
    if (typeof path !== 'string' || path.includes('\0')) return false;
    const resolved = resolvePath(path);
    return resolved === base || resolved.startsWith(base.endsWith(sep) ? base : base + sep);
  };
  return new Proxy(realFs, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof name !== 'string' || typeof value !== 'function') return value;
      const count = FS_PATH_ARGUMENTS[name];
      return (...args: unknown[]) => {
        const outside = count === undefined ? `fs.${name}` : args.slice(0, count).find((arg) => !inside(arg));
        if (count === undefined || outside !== undefined) {
          const error = count === undefined ? new Error(`the local S3 store called fs.${name}, which its confinement does not know`) : new OutsideDirectoryError(outside);
          if (returnsSynchronously(name)) throw error;
          return Promise.reject(error);
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** Loads a CommonJS file of s3rver afresh with some of its requires replaced. */
function loadWith(file: string, replaced: Record<string, unknown>): unknown {
  const source = readFileSync(file, 'utf8');
  const wrapper = compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file });
  const module = { exports: {} as unknown };
  const requireOriginal = createRequire(file);
  const requireReplaced = (id: string) => (Object.hasOwn(replaced, id) ? replaced[id] : requireOriginal(id));
  wrapper.call(module.exports, module.exports, requireReplaced, module, file, dirname(file));
  return module.exports;
}

/**
 * The store classes for one root: `Base` is s3rver's FilesystemStore with the confined fs (the
 * guarantee), `Store` adds the input checks. Exported for tests.
 */
export function confinedStoreClasses(root: string): { Base: StoreClass; Store: StoreClass } {
  const fs = confinedFs(root);
  const utils = loadWith(requireFromS3rver.resolve('./utils'), { 'fs-extra': fs });
  const Base = loadWith(requireFromS3rver.resolve('./stores/filesystem'), { 'fs-extra': fs, '../utils': utils }) as StoreClass;
  class Store extends Base {
    override getBucketPath(bucket: string): string {
      checkBucketName(bucket);
      return super.getBucketPath(bucket);
    }
    override getResourcePath(bucket: string, key?: string, resource?: string): string {
      checkBucketName(bucket);
      if (key !== undefined) checkKey(key);
      return super.getResourcePath(bucket, key, resource);
    }
    override initiateUpload(bucket: string, key: string, uploadId: string, metadata: unknown): Promise<unknown> {
      checkKey(key);
      checkUploadId(uploadId);
      return super.initiateUpload(bucket, key, uploadId, metadata);
    }
    override putPart(bucket: string, uploadId: string, partNumber: unknown, content: unknown): Promise<unknown> {
      checkUploadId(uploadId);
      checkPartNumber(partNumber);
      return super.putPart(bucket, uploadId, partNumber, content);
    }
    override putObjectMultipart(bucket: string, uploadId: string, parts: unknown): Promise<unknown> {
      checkUploadId(uploadId);
      if (Array.isArray(parts)) for (const part of parts) checkPartNumber((part as { number?: unknown }).number);
      return super.putObjectMultipart(bucket, uploadId, parts);
    }
  }
  return { Base, Store };
}

function checkBucketName(bucket: unknown): void {
  if (typeof bucket !== 'string' || !bucket || bucket === '.' || bucket === '..' || /[/\\\0]/.test(bucket)) {
    throw new S3Error('InvalidBucketName', 'The specified bucket is not valid.', { BucketName: String(bucket) });
  }
}

function checkKey(key: unknown): void {
  if (typeof key !== 'string' || key.includes('\0') || key.split(/[/\\]/).some((segment) => segment === '.' || segment === '..')) {
    throw new S3Error('InvalidArgument', "Keys with '.' or '..' path segments are not supported by the local S3 (they would name files outside its directory).", {
      ArgumentName: 'key',
      ArgumentValue: String(key),
    });
  }
}

/** s3rver issues upload ids as 32 hex digits (crypto.randomBytes(16)); anything else names no upload. */
function checkUploadId(uploadId: unknown): void {
  if (typeof uploadId !== 'string' || !/^[0-9a-f]{32}$/i.test(uploadId)) {
    throw new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', {
      UploadId: String(uploadId),
    });
  }
}

function checkPartNumber(partNumber: unknown): void {
  const text = String(partNumber);
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 10_000) {
    throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber', ArgumentValue: text });
  }
}

/**
 * A PutObjectTagging body from someone other than the pipeline, read ahead so the gate can see its
 * tag keys, then put back for s3rver to read as usual. Other requests are left untouched.
 */
async function peekTaggingBody(req: IncomingMessage, gate: ServingGateOptions): Promise<string | undefined | 'length-required'> {
  if ((req.method ?? '').toUpperCase() !== 'PUT' || !/[?&]tagging(=|&|$)/.test(req.url ?? '')) return undefined;
  const key = accessKeyOf(req);
  if (key !== undefined && gate.pipelineAccessKeys.includes(key)) return undefined;
  const length = Number(req.headers['content-length']);
  if (!Number.isInteger(length) || length < 0) return 'length-required';
  if (length === 0) return '';
  const chunks: Buffer[] = [];
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const onReadable = () => {
      let chunk: Buffer | null;
      while (received < length && (chunk = req.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        received += chunk.length;
      }
      if (received >= length) done();
    };
    const done = () => {
      req.off('readable', onReadable);
      req.off('error', reject);
      req.off('end', done);
      resolve();
    };
    req.on('readable', onReadable);
    req.on('error', reject);
    req.on('end', done);
  });
  const body = Buffer.concat(chunks);
  // Not yet at 'end' (nothing more was asked for), so the stream takes the bytes back.
  req.unshift(body);
  return body.toString('utf8');
}

