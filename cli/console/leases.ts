/**
 * Who has an item open: an item opened in one browser session shows as taken to the others for a
 * few minutes, so two reviewers sharing a console do not work on the same image. The leases live in
 * this console process only (docs/console.md, "Two reviewers"): reviewers running their own
 * consoles against a deployed stack do not see each other's, and a lease is advice, never the
 * guarantee. The guarantee is the decision store's conditional write (appendHuman): of two
 * decisions on one job exactly one is recorded, and the other reviewer is told whose won.
 */
export interface Lease {
  jobId: string;
  /** The browser session holding it. */
  session: string;
  reviewer: string;
  takenAt: Date;
  expiresAt: Date;
}

export const DEFAULT_LEASE_MS = 5 * 60_000;

export class Leases {
  private readonly leases = new Map<string, Lease>();

  constructor(
    private readonly ttlMs: number = DEFAULT_LEASE_MS,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The unexpired lease on a job, if any. */
  holder(jobId: string): Lease | undefined {
    const lease = this.leases.get(jobId);
    if (lease && lease.expiresAt.getTime() <= this.now().getTime()) {
      this.leases.delete(jobId);
      return undefined;
    }
    return lease;
  }

  /** The lease held by another session than this one, if any. */
  heldByOther(jobId: string, session: string): Lease | undefined {
    const lease = this.holder(jobId);
    return lease && lease.session !== session ? lease : undefined;
  }

  /**
   * Takes (or renews) the lease for this session, unless another session holds it: then nothing
   * changes and that session's lease is returned.
   */
  take(jobId: string, session: string, reviewer: string): { taken: true; lease: Lease } | { taken: false; lease: Lease } {
    const other = this.heldByOther(jobId, session);
    if (other) return { taken: false, lease: other };
    const now = this.now();
    const previous = this.holder(jobId);
    const lease: Lease = { jobId, session, reviewer, takenAt: previous?.takenAt ?? now, expiresAt: new Date(now.getTime() + this.ttlMs) };
    this.leases.set(jobId, lease);
    return { taken: true, lease };
  }

  /** Gives up this session's lease (after its decision). */
  release(jobId: string, session: string): void {
    if (this.leases.get(jobId)?.session === session) this.leases.delete(jobId);
  }

  /** Gives up every lease of a session (it opened another item). */
  releaseAllOf(session: string, except?: string): void {
    for (const [jobId, lease] of this.leases) if (lease.session === session && jobId !== except) this.leases.delete(jobId);
  }
}
