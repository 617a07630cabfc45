/**
 * Webhook request authentication (docs/events.md, "Receiving webhooks").
 *
 * Local runtime: each POST carries `X-Moderation-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw
 * request body with the shared secret ($MODERATION_WEBHOOK_SECRET), and `X-Moderation-Event-Id`.
 * On AWS, an EventBridge API destination cannot sign a body: its connection sends the secret itself
 * in `X-Moderation-Api-Key` (over HTTPS). A receiver that serves both accepts either
 * (verifyWebhookRequest). Every comparison is constant-time.
 *
 * Pure (node:crypto only): a receiver can copy this file.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Moderation-Signature';
export const EVENT_ID_HEADER = 'X-Moderation-Event-Id';
/** The header an EventBridge connection (API key authorization) sends the secret in. */
export const API_KEY_HEADER = 'X-Moderation-Api-Key';
/** The environment variable the CLI reads the webhook secret from. */
export const WEBHOOK_SECRET_ENV = 'MODERATION_WEBHOOK_SECRET';

const SIGNATURE = /^sha256=([0-9a-f]{64})$/;

/** `sha256=<hex HMAC-SHA256 of the raw body with the secret>`: the value of X-Moderation-Signature. */
export function signatureHeader(rawBody: string | Uint8Array, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

/**
 * True when `header` is `sha256=<hex>` and the hex is the HMAC-SHA256 of exactly these body bytes
 * with `secret`. Verify the raw body as received, before parsing it: re-serialized JSON differs.
 */
export function verifySignature(rawBody: string | Uint8Array, header: string | string[] | undefined | null, secret: string): boolean {
  if (!secret || typeof header !== 'string') return false;
  const given = SIGNATURE.exec(header.trim().toLowerCase());
  if (!given) return false;
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  return timingSafeEqual(Buffer.from(given[1]!, 'hex'), expected);
}

/** True when the API key header (AWS deliveries) holds exactly the secret; constant-time. */
export function verifyApiKey(header: string | string[] | undefined | null, secret: string): boolean {
  if (!secret || typeof header !== 'string') return false;
  // Compare digests: equal length whatever was sent, so the comparison leaks no length either.
  const digest = (value: string) => createHmac('sha256', 'moderation-api-key').update(value).digest();
  return timingSafeEqual(digest(header), digest(secret));
}

/**
 * A webhook request is authentic when it is signed with the secret (local runtime) or carries it as
 * the API key (EventBridge API destination). `headers` as Node gives them (lower-cased names).
 */
export function verifyWebhookRequest(rawBody: string | Uint8Array, headers: Record<string, string | string[] | undefined>, secret: string): boolean {
  return (
    verifySignature(rawBody, headers[SIGNATURE_HEADER.toLowerCase()], secret) || verifyApiKey(headers[API_KEY_HEADER.toLowerCase()], secret)
  );
}
