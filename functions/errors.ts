/**
 * Errors the handlers throw on purpose. Step Functions matches a Lambda error by its `name`
 * (errorType), so these names are the contract with statemachine/moderation.asl.json's Retry
 * blocks: Throttled and ServiceUnavailable are retried with backoff and jitter; anything else goes
 * straight to the Catch (FAILED + dead-letter queue).
 */
import { ModerationError } from './lib/errors.ts';

/** The service asked us to slow down (Rekognition TPS, DynamoDB, S3 SlowDown, Bedrock). */
export class ThrottledError extends ModerationError {
  override name = 'Throttled';
  constructor(service: string, cause: unknown) {
    super(`${service} throttled the request: ${describe(cause)}`, { cause });
  }
}

/** A transient failure on the service's side (5xx, timeouts, connection resets). */
export class ServiceUnavailableError extends ModerationError {
  override name = 'ServiceUnavailable';
  constructor(service: string, cause: unknown) {
    super(`${service} is unavailable: ${describe(cause)}`, { cause });
  }
}

export { ObjectUnreadableError } from './store/errors.ts';

const THROTTLING_CODES = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'SlowDown',
  'LimitExceededException',
]);

const TRANSIENT_CODES = new Set([
  'InternalServerError',
  'InternalServerException',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'ModelNotReadyException',
  'ModelTimeoutException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
]);

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

/**
 * Maps an AWS SDK error onto the named errors the state machine retries; returns the original
 * error when it is neither throttling nor transient (so it is caught, recorded and dead-lettered).
 */
export function toRetryableError(service: string, err: unknown): unknown {
  const e = (err ?? {}) as AwsLikeError;
  const code = e.name ?? e.code ?? '';
  const status = e.$metadata?.httpStatusCode ?? 0;
  if (THROTTLING_CODES.has(code) || e.code === 'SlowDown' || status === 429 || e.$retryable?.throttling) {
    return new ThrottledError(service, err);
  }
  if (TRANSIENT_CODES.has(code) || (e.code !== undefined && TRANSIENT_CODES.has(e.code)) || status >= 500) {
    return new ServiceUnavailableError(service, err);
  }
  return err;
}

/** Calls an AWS operation, rethrowing throttling and transient failures as the named retryable errors. */
export async function callAws<T>(service: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw toRetryableError(service, err);
  }
}

function describe(cause: unknown): string {
  const e = cause as AwsLikeError;
  return [e?.name, e?.message].filter(Boolean).join(': ') || String(cause);
}
