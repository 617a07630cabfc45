/**
 * A Rekognition-compatible endpoint on this machine: DetectModerationLabels over the AWS JSON 1.1
 * protocol (POST /, `X-Amz-Target: RekognitionService.DetectModerationLabels`), answered by the
 * offline classifier (nsfwjs MobileNetV2 in a worker pool) and mapped onto the model-7 taxonomy;
 * and DetectLabels, DetectFaces and DetectText, answered by human and Tesseract in the analysis
 * worker (analyzers.ts), started on the first such request.
 * Any AWS client works against it unchanged: @aws-sdk/client-rekognition, boto3, the AWS CLI.
 * Signatures are not checked (any Authorization is accepted).
 *
 * Images by S3 reference are read from the configured (local) S3 endpoint. Validation and errors
 * follow Rekognition's (see docs/local-runtime.md, "What it answers"): the error body is
 * `{"__type": "<Exception>", "Code": "<Exception>", "Message": "..."}` with the same status codes,
 * so SDKs raise their named exception classes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import type { ClassScores } from './classifier.ts';
import { toModerationLabels, DEFAULT_MIN_CONFIDENCE } from './mapping.ts';
import { createClassifierPool, type ClassifierPool, type ClassifierPoolOptions, type ClassifierPoolStats } from './pool.ts';
import { analysisParams, isAnalysisOperation } from './analysis-requests.ts';
import type { AnalysisInput, AnalysisOutput } from './analyzers.ts';
import type { AnalysisPool } from './analysis-pool.ts';
import { listen, sendAwsJson } from '../net.ts';
import { adapterAnswer, expiredAdapters } from './adapters.ts';

export const TARGET_PREFIX = 'RekognitionService.';
export const DETECT_MODERATION_LABELS = 'DetectModerationLabels';

/** Rekognition's fixed image limits (official). */
export const LIMITS = {
  maxS3ObjectBytes: 15 * 1024 * 1024,
  maxRequestBytes: 5 * 1024 * 1024,
  minSidePx: 80,
  maxSidePx: 10_000,
} as const;
/** Largest request body read (a 5 MB image is ~7 MB of base64). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** The request body of DetectModerationLabels, as sent on the wire (Bytes is base64). */
export interface DetectRequest {
  Image?: {
    Bytes?: string;
    S3Object?: { Bucket?: string; Name?: string; Version?: string };
  };
  MinConfidence?: number;
  HumanLoopConfig?: unknown;
  ProjectVersion?: string;
}

export interface DetectorEndpointOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Where images given by S3Object are read from. */
  s3: {
    endpoint: string;
    region?: string;
    /** Default true (local S3 emulators need path-style addressing). */
    forcePathStyle?: boolean;
    /** Default: the environment's if AWS_ACCESS_KEY_ID is set, else s3rver's own key pair. */
    credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
    /**
     * Reads an object in this process instead of over HTTP (the local stack passes its S3's
     * readObject: Rekognition reading S3 is the emulated AWS talking to itself). Used for objects
     * without a version id (the local S3 keeps none); a version id goes through `endpoint`.
     */
    read?: (bucket: string, key: string, maxBytes: number) => Promise<{ size: number; bytes?: Buffer } | undefined>;
  };
  /** The classifier; default a worker pool running nsfwjs (created here, closed by close()). */
  classify?: (image: Buffer) => Promise<ClassScores>;
  /** Options of the default pool (up to one worker per core, one started right away). */
  pool?: ClassifierPoolOptions;
  /**
   * DetectLabels, DetectFaces and DetectText; default the analysis pool (analysis-pool.ts), created on
   * the first such request and closed by close(). Tests replace it to skip the models.
   */
  analyze?: (input: AnalysisInput) => Promise<AnalysisOutput>;
  /** Options of the default analysis pool (default one worker; it starts on the first analysis request). */
  analysisPool?: ClassifierPoolOptions;
  /**
   * Fault injection: called for every well-formed DetectModerationLabels request before it is
   * served; an Error returned is answered instead (its `name` is the exception, e.g.
   * ThrottlingException; see detectorError()).
   */
  fault?: (request: DetectRequest) => Error | undefined;
  /**
   * Custom moderation adapters (project version ARNs) to answer as expired: by the base model, without
   * `ProjectVersion` in the response, as Rekognition does. $MODERATION_EXPIRED_ADAPTERS adds to these
   * (read on every request). Any other well-formed ProjectVersion is echoed (local/detector/adapters.ts).
   */
  expiredAdapters?: Iterable<string>;
}

export interface DetectorStats {
  /** HTTP requests received. */
  requests: number;
  /** Requests answered with a result (any operation). */
  succeeded: number;
  /** Requests answered with a result, by operation (DetectModerationLabels, DetectLabels, DetectFaces, DetectText). */
  operations: Record<string, number>;
  /** Answered with an error, by exception name. */
  errors: Record<string, number>;
  /** Errors answered because `fault` said so. */
  injectedFaults: number;
  /** Requests being served right now. */
  inFlight: number;
  /** Images classified (by source). */
  images: { bytes: number; s3: number };
  /** Mean time to classify one image, as seen by the endpoint (queueing included), ms. */
  meanClassifyMs: number;
  /** The default classifier pool's own figures (workers, CPU time); absent with a `classify` option. */
  classifier?: ClassifierPoolStats;
}

export interface DetectorEndpoint {
  /** e.g. http://127.0.0.1:41234 — use as the Rekognition client's endpoint. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
  stats(): DetectorStats;
}

/** HTTP status of each exception Rekognition answers (ThrottlingException is a server fault in its API model). */
const STATUS: Record<string, number> = {
  AccessDeniedException: 400,
  HumanLoopQuotaExceededException: 400,
  ImageTooLargeException: 400,
  InvalidImageFormatException: 400,
  InvalidParameterException: 400,
  InvalidS3ObjectException: 400,
  ProvisionedThroughputExceededException: 400,
  ResourceNotReadyException: 400,
  SerializationException: 400,
  UnknownOperationException: 400,
  ValidationException: 400,
  InternalServerError: 500,
  ServiceUnavailableException: 503,
  ThrottlingException: 500,
};

const MESSAGES: Record<string, string> = {
  ThrottlingException: 'Rate exceeded',
  ProvisionedThroughputExceededException: 'Provisioned rate exceeded',
  InternalServerError: 'Internal server error',
  InvalidImageFormatException: 'Request has invalid image format',
  InvalidParameterException: 'Request has invalid parameters',
  InvalidS3ObjectException: 'Unable to get object metadata from S3. Check object key, region and/or access permissions.',
};

/** An error this endpoint answers with: `name` is the exception (`__type`), `statusCode` the HTTP status. */
export class DetectorError extends Error {
  readonly statusCode: number;

  constructor(type: string, message?: string, statusCode?: number) {
    super(message ?? MESSAGES[type] ?? type);
    this.name = type;
    this.statusCode = statusCode ?? STATUS[type] ?? 400;
  }
}

/** Builds an error for `fault`, e.g. `detectorError('ThrottlingException')`. */
export function detectorError(type: string, message?: string, statusCode?: number): DetectorError {
  return new DetectorError(type, message, statusCode);
}

export async function startDetectorEndpoint(options: DetectorEndpointOptions): Promise<DetectorEndpoint> {
  const host = options.host ?? '127.0.0.1';
  let pool: ClassifierPool | undefined;
  let classify = options.classify;
  if (!classify) {
    const created = createClassifierPool(options.pool);
    pool = created;
    classify = (image) => created.classify(image);
  }
  const s3 = new S3Client({
    endpoint: options.s3.endpoint,
    region: options.s3.region ?? 'us-east-1',
    forcePathStyle: options.s3.forcePathStyle ?? true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials:
      options.s3.credentials ?? (process.env.AWS_ACCESS_KEY_ID ? undefined : { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }),
    maxAttempts: 2,
  });

  const stats = { requests: 0, succeeded: 0, operations: {} as Record<string, number>, errors: {} as Record<string, number>, injectedFaults: 0, inFlight: 0 };
  let analysisPool: Promise<AnalysisPool> | undefined;
  let closing = false;
  const analyze =
    options.analyze ??
    (async (input: AnalysisInput) => {
      if (closing) throw new DetectorError('InternalServerError', 'the local detector is closing');
      analysisPool ??= import('./analysis-pool.ts').then(({ createAnalysisPool }) => createAnalysisPool(options.analysisPool));
      return (await analysisPool).run(input);
    });
  const images = { bytes: 0, s3: 0 };
  let classifyMs = 0;

  const server = createServer((req, res) => {
    stats.requests++;
    stats.inFlight++;
    res.on('close', () => stats.inFlight--);
    handle(req, res).catch((err) => answerError(res, err));
  });
  // Keep-alive sockets must not hold close() up.
  server.keepAliveTimeout = 5_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = String(req.headers['x-amz-target'] ?? '');
    if (req.method !== 'POST' || !target.startsWith(TARGET_PREFIX)) {
      req.resume();
      return answerError(res, new DetectorError('UnknownOperationException', target ? `Unknown operation ${target}` : 'Missing X-Amz-Target'));
    }
    const operation = target.slice(TARGET_PREFIX.length);
    if (operation !== DETECT_MODERATION_LABELS && !isAnalysisOperation(operation)) {
      req.resume();
      return answerError(res, new DetectorError('UnknownOperationException', `Operation ${operation} is not supported by the local detector`));
    }

    const body = await readBody(req);
    let request: DetectRequest;
    try {
      request = JSON.parse(body.toString('utf8') || '{}');
      if (!request || typeof request !== 'object' || Array.isArray(request)) throw new Error('not an object');
    } catch {
      return answerError(res, new DetectorError('SerializationException', 'The request body is not a JSON object'));
    }

    const injected = options.fault?.(request);
    if (injected) {
      stats.injectedFaults++;
      return answerError(res, injected);
    }

    if (isAnalysisOperation(operation)) {
      // The same image sources, limits and errors as DetectModerationLabels.
      const params = analysisParams(operation, request as Record<string, unknown>);
      const { image } = await loadImage(request);
      await checkImage(image);
      const output = await analyze({ ...params, image } as AnalysisInput);
      stats.succeeded++;
      stats.operations[operation] = (stats.operations[operation] ?? 0) + 1;
      return answer(res, 200, output);
    }

    const minConfidence = validateMinConfidence(request.MinConfidence);
    const adapter = adapterAnswer(request.ProjectVersion, expiredAdapters(options.expiredAdapters));
    const { image, source } = await loadImage(request);
    await checkImage(image);

    const started = performance.now();
    const scores = await classify!(image);
    classifyMs += performance.now() - started;
    images[source]++;

    const output = toModerationLabels(scores, { minConfidence });
    stats.succeeded++;
    stats.operations[operation] = (stats.operations[operation] ?? 0) + 1;
    answer(res, 200, { ...output, ...adapter });
  }

  async function loadImage(request: DetectRequest): Promise<{ image: Buffer; source: 'bytes' | 's3' }> {
    const image = request.Image;
    if (image === undefined || image === null) {
      throw new DetectorError('ValidationException', "1 validation error detected: Value null at 'image' failed to satisfy constraint: Member must not be null");
    }
    if (typeof image !== 'object') throw new DetectorError('SerializationException', 'Image must be an object');
    const hasBytes = image.Bytes !== undefined && image.Bytes !== null;
    const hasS3 = image.S3Object !== undefined && image.S3Object !== null;
    if (hasBytes === hasS3) throw new DetectorError('InvalidParameterException', 'Request has invalid parameters: give exactly one of Image.Bytes and Image.S3Object');
    if (hasBytes) return { image: decodeBytes(image.Bytes), source: 'bytes' };
    return { image: await readS3Object(image.S3Object!), source: 's3' };
  }

  async function readS3Object(ref: NonNullable<NonNullable<DetectRequest['Image']>['S3Object']>): Promise<Buffer> {
    const { Bucket, Name, Version } = ref;
    if (typeof Bucket !== 'string' || !Bucket || typeof Name !== 'string' || !Name) {
      throw new DetectorError('InvalidParameterException', 'Request has invalid parameters: S3Object needs Bucket and Name');
    }
    if (options.s3.read && !Version) return readInProcess(options.s3.read, Bucket, Name);
    let response;
    try {
      response = await s3.send(new GetObjectCommand({ Bucket, Key: Name, VersionId: Version || undefined }));
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      // A 4xx from S3 (no such bucket/key/version, access denied) is the caller's problem, as in AWS;
      // no answer at all or a 5xx is this machine's (retryable).
      if (status && status >= 400 && status < 500) throw new DetectorError('InvalidS3ObjectException');
      throw new DetectorError('InternalServerError', `Could not read s3://${Bucket}/${Name}: ${(err as Error).message}`);
    }
    const length = response.ContentLength ?? 0;
    if (length > LIMITS.maxS3ObjectBytes) {
      (response.Body as { destroy?: () => void } | undefined)?.destroy?.();
      throw new DetectorError('ImageTooLargeException', `Image size ${length} bytes exceeds the maximum of ${LIMITS.maxS3ObjectBytes} bytes for an S3 object`);
    }
    const bytes = await response.Body!.transformToByteArray();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The same answers as over HTTP: no object (or a 4xx from the store) is the caller's problem, anything else this machine's. */
  async function readInProcess(read: NonNullable<DetectorEndpointOptions['s3']['read']>, bucket: string, key: string): Promise<Buffer> {
    let found;
    try {
      found = await read(bucket, key, LIMITS.maxS3ObjectBytes);
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status && status >= 400 && status < 500) throw new DetectorError('InvalidS3ObjectException');
      throw new DetectorError('InternalServerError', `Could not read s3://${bucket}/${key}: ${(err as Error).message}`);
    }
    if (!found) throw new DetectorError('InvalidS3ObjectException');
    if (!found.bytes) {
      throw new DetectorError('ImageTooLargeException', `Image size ${found.size} bytes exceeds the maximum of ${LIMITS.maxS3ObjectBytes} bytes for an S3 object`);
    }
    return found.bytes;
  }

  async function close(): Promise<void> {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    s3.destroy();
    closing = true;
    await pool?.close();
    await (await analysisPool?.catch(() => undefined))?.close();
  }

  // Through net.ts like every local endpoint: it puts the browser guard in front of the handler.
  const port = await listen(server, options.port ?? 0, host);
  const hostInUrl = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;

  function answerError(res: ServerResponse, err: unknown): void {
    const e = toDetectorError(err);
    stats.errors[e.name] = (stats.errors[e.name] ?? 0) + 1;
    answer(res, e.statusCode, { __type: e.name, Code: e.name, Message: e.message }, e.name);
  }

  return {
    endpoint: `http://${hostInUrl}:${port}`,
    port,
    close,
    stats: () => ({
      ...stats,
      operations: { ...stats.operations },
      errors: { ...stats.errors },
      images: { ...images },
      meanClassifyMs: images.bytes + images.s3 ? classifyMs / (images.bytes + images.s3) : 0,
      ...(pool ? { classifier: pool.stats() } : {}),
    }),
  };
}

function answer(res: ServerResponse, statusCode: number, body: unknown, errorType?: string): void {
  sendAwsJson(res, statusCode, body, '1.1', errorType);
}

/**
 * The exception to answer with. Errors named after an exception keep their name (the classifier's
 * InvalidImageFormatException, the pool's InternalServerError, a fault's ThrottlingException) and
 * their `statusCode` if they carry one; anything else is a 500 InternalServerError.
 */
function toDetectorError(err: unknown): DetectorError {
  if (err instanceof DetectorError) return err;
  if (err instanceof Error && (err.name in STATUS || err.name.endsWith('Exception'))) {
    const statusCode = (err as { statusCode?: unknown }).statusCode;
    return new DetectorError(err.name, err.message, typeof statusCode === 'number' ? statusCode : undefined);
  }
  return new DetectorError('InternalServerError', err instanceof Error ? err.message : String(err));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      req.resume();
      throw new DetectorError('ValidationException', `Request body exceeds ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function validateMinConfidence(value: unknown): number {
  if (value === undefined || value === null) return DEFAULT_MIN_CONFIDENCE;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new DetectorError('SerializationException', 'MinConfidence must be a number');
  }
  if (value < 0 || value > 100) {
    const bound = value < 0 ? 'greater than or equal to 0' : 'less than or equal to 100';
    throw new DetectorError('ValidationException', `1 validation error detected: Value '${value}' at 'minConfidence' failed to satisfy constraint: Member must have value ${bound}`);
  }
  return value;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBytes(value: unknown): Buffer {
  if (typeof value !== 'string' || value.length % 4 === 1 || !BASE64.test(value)) {
    throw new DetectorError('SerializationException', 'Image.Bytes must be base64');
  }
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length === 0) {
    throw new DetectorError('ValidationException', "1 validation error detected: Value at 'image.bytes' failed to satisfy constraint: Member must have length greater than or equal to 1");
  }
  if (bytes.length > LIMITS.maxRequestBytes) {
    // What Rekognition answers (a request-level constraint, not ImageTooLargeException).
    throw new DetectorError(
      'ValidationException',
      `1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=${bytes.length} cap=${bytes.length}]' at 'image.bytes' failed to satisfy constraint: Member must have length less than or equal to ${LIMITS.maxRequestBytes}`,
    );
  }
  return bytes;
}

/** JPEG or PNG (by signature), within Rekognition's pixel limits. Decoding problems surface later in the classifier. */
async function checkImage(image: Buffer): Promise<void> {
  const isJpeg = image.length > 3 && image[0] === 0xff && image[1] === 0xd8 && image[2] === 0xff;
  const isPng = image.length > 8 && image.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  if (!isJpeg && !isPng) throw new DetectorError('InvalidImageFormatException');
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = await sharp(image).metadata());
  } catch {
    throw new DetectorError('InvalidImageFormatException');
  }
  if (!width || !height) throw new DetectorError('InvalidImageFormatException');
  if (width > LIMITS.maxSidePx || height > LIMITS.maxSidePx) {
    throw new DetectorError('ImageTooLargeException', `Input image dimensions ${width} x ${height} exceed maximum dimension size of ${LIMITS.maxSidePx} pixels`);
  }
  if (width < LIMITS.minSidePx || height < LIMITS.minSidePx) {
    // What Rekognition answers for images under 80 px a side.
    throw new DetectorError('InvalidParameterException', 'Request has invalid parameters');
  }
}

// `node --import tsx local/detector/server.ts`: a standalone endpoint (e.g. for boto3 or the AWS CLI).
// Reads DETECTOR_PORT (default 0) and AWS_ENDPOINT_URL_S3 (default http://127.0.0.1:4569).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const endpoint = await startDetectorEndpoint({
    port: Number(process.env.DETECTOR_PORT ?? 0),
    s3: { endpoint: process.env.AWS_ENDPOINT_URL_S3 ?? 'http://127.0.0.1:4569' },
  });
  console.log(`Rekognition DetectModerationLabels, DetectLabels, DetectFaces, DetectText (local detector) at ${endpoint.endpoint}`);
  const stop = () => void endpoint.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
