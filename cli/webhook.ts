/**
 * The `--webhook <url>` flag of `run` and `serve`, and the webhook settings from the environment:
 * the signing secret ($MODERATION_WEBHOOK_SECRET, required) and the retry tuning
 * ($MODERATION_WEBHOOK_ATTEMPTS, _BACKOFF_MS, _TIMEOUT_MS). docs/events.md.
 */
import { WEBHOOK_SECRET_ENV } from '../functions/lib/webhook-signature.ts';
import { WEBHOOK_DEFAULTS, webhookUrlProblem, type WebhookSettings } from '../local/webhook-delivery.ts';
import { UsageError } from './output.ts';

type Env = Record<string, string | undefined>;

/** The webhook a `--webhook` flag names (undefined when it is absent); a UsageError for a bad URL or no secret. */
export function webhookFromFlag(url: string | undefined, env: Env = process.env, flag = '--webhook'): WebhookSettings | undefined {
  if (url === undefined) return undefined;
  const problem = webhookUrlProblem(url.trim());
  if (problem) throw new UsageError(`${flag}: ${problem}`);
  return { url: url.trim(), secret: webhookSecret(env, flag), ...webhookTuning(env) };
}

/** The signing secret, or a UsageError that says how to set one. */
export function webhookSecret(env: Env = process.env, flag = '--webhook'): string {
  const secret = env[WEBHOOK_SECRET_ENV];
  if (!secret) {
    throw new UsageError(
      `${flag} needs the signing secret in $${WEBHOOK_SECRET_ENV} (e.g. export ${WEBHOOK_SECRET_ENV}=$(openssl rand -hex 32)); the receiver checks X-Moderation-Signature with the same secret`,
    );
  }
  return secret;
}

/** Retry tuning from the environment (each optional; defaults in WEBHOOK_DEFAULTS). */
export function webhookTuning(env: Env = process.env): Partial<WebhookSettings> {
  const tuning: Partial<WebhookSettings> = {};
  const read = (name: string, min: number, max: number): number | undefined => {
    const text = env[name];
    if (text === undefined || text.trim() === '') return undefined;
    const value = Number(text.trim());
    if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`$${name} must be a whole number from ${min} to ${max}, got "${text}"`);
    return value;
  };
  const attempts = read('MODERATION_WEBHOOK_ATTEMPTS', 1, 100);
  const backoffMs = read('MODERATION_WEBHOOK_BACKOFF_MS', 0, 3_600_000);
  const timeoutMs = read('MODERATION_WEBHOOK_TIMEOUT_MS', 100, 300_000);
  if (attempts !== undefined) tuning.attempts = attempts;
  if (backoffMs !== undefined) tuning.backoffMs = backoffMs;
  if (timeoutMs !== undefined) tuning.timeoutMs = timeoutMs;
  return tuning;
}

export const WEBHOOK_ENV_HELP = `Webhooks: each decision is POSTed once to the URL (at least once: retried with backoff on timeouts and
5xx), signed with $${WEBHOOK_SECRET_ENV} (X-Moderation-Signature: sha256=<HMAC of the body>); tuning:
$MODERATION_WEBHOOK_ATTEMPTS (default ${WEBHOOK_DEFAULTS.attempts}), $MODERATION_WEBHOOK_BACKOFF_MS (default ${WEBHOOK_DEFAULTS.backoffMs}), $MODERATION_WEBHOOK_TIMEOUT_MS (default ${WEBHOOK_DEFAULTS.timeoutMs}).
See \`moderation events --help\` and docs/events.md.`;
