/**
 * The live policy as a container sees it: the policy set read from its parameter at most every
 * `maxAgeMs` (so a `moderation policy push` takes effect within that window, without a redeploy),
 * and the last good copy when the parameter cannot be read or holds something invalid. With no good
 * copy at all it fails closed: PolicyUnavailable, which the state machine retries, and which ends
 * FAILED (and in the DLQ, replayable) if it lasts: an upload is never judged without a policy.
 *
 * Pure: the read and the parse are given (functions/policy-source.ts passes the SSM parameter
 * store and parsePolicySet), and so is the clock.
 */
import { ModerationError } from './errors.ts';
import type { PolicySet } from './policy-set.ts';

/** No policy to judge with: the parameter cannot be read (or is invalid) and there was never a good copy. */
export class PolicyUnavailableError extends ModerationError {
  override name = 'PolicyUnavailable';
}

/** The parameter as read: its value and SSM's version number of it. */
export interface StoredPolicy {
  value: string;
  version: number;
  modifiedAt?: Date;
}

export interface LivePolicySnapshot {
  set: PolicySet;
  /** The parameter version this set was read from. */
  parameterVersion: number;
  value: string;
}

export interface LivePolicyOptions {
  read: () => Promise<StoredPolicy>;
  parse: (value: string, version: number) => PolicySet;
  /** How long a read is trusted (at most 60 s in the pipeline). */
  maxAgeMs: number;
  now?: () => number;
  /** The last good copy is used because the parameter could not be read, or holds an invalid policy. */
  onFallback?: (reason: 'unreadable' | 'invalid', error: Error, kept: LivePolicySnapshot) => void;
  /** A new value was read and is in force. */
  onChange?: (snapshot: LivePolicySnapshot, previous?: LivePolicySnapshot) => void;
}

export class LivePolicy {
  private good?: LivePolicySnapshot;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private inflight?: Promise<LivePolicySnapshot>;
  private readonly now: () => number;

  constructor(private readonly options: LivePolicyOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The policy set in force: cached for maxAgeMs; one read at a time however many callers wait. */
  async current(): Promise<LivePolicySnapshot> {
    if (this.good && this.now() - this.checkedAt < this.options.maxAgeMs) return this.good;
    this.inflight ??= this.refresh().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** The last good copy, if any (never reads). */
  lastGood(): LivePolicySnapshot | undefined {
    return this.good;
  }

  private async refresh(): Promise<LivePolicySnapshot> {
    let stored: StoredPolicy;
    try {
      stored = await this.options.read();
    } catch (err) {
      return this.fallBack('unreadable', err as Error, `the policy parameter cannot be read: ${messageOf(err)}`);
    }
    // The same value: nothing to parse (compared by value, not version: another stack's parameter can have the same version).
    if (this.good && this.good.value === stored.value) {
      this.good = { ...this.good, parameterVersion: stored.version };
      this.checkedAt = this.now();
      return this.good;
    }
    let set: PolicySet;
    try {
      set = this.options.parse(stored.value, stored.version);
    } catch (err) {
      return this.fallBack('invalid', err as Error, `the policy parameter (version ${stored.version}) holds no valid policy: ${messageOf(err)}`);
    }
    const previous = this.good;
    this.good = { set, parameterVersion: stored.version, value: stored.value };
    this.checkedAt = this.now();
    this.options.onChange?.(this.good, previous);
    return this.good;
  }

  /** Keep the last good copy (until the next read is due), or fail closed without one. */
  private fallBack(reason: 'unreadable' | 'invalid', error: Error, message: string): LivePolicySnapshot {
    if (!this.good) throw new PolicyUnavailableError(`no policy to judge with: ${message}; nothing is decided without one (the job is retried, then FAILED and dead-lettered)`, { cause: error });
    this.checkedAt = this.now();
    this.options.onFallback?.(reason, error, this.good);
    return this.good;
  }
}

function messageOf(err: unknown): string {
  const e = err as { name?: string; message?: string };
  return [e?.name && e.name !== 'Error' ? e.name : undefined, e?.message].filter(Boolean).join(': ') || String(err);
}
