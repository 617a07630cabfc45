/**
 * A copy restored from quarantine by a granted appeal (functions/lib/apply-decision.ts,
 * restoreFromQuarantine) lands in the uploads bucket like any upload: ObjectCreated:Copy, a new job.
 * Judged again, it would be rejected again and moved back to quarantine, undoing the appeal. So
 * Detect asks first whether the object is that copy, and then carries the human decision over
 * instead of calling Rekognition: the new job is recorded APPROVED by `policy`, its reason naming
 * the appeal (invariant 1 still holds: the new object version gets its own decision).
 *
 * The restore's metadata mark (RESTORED_FROM_METADATA) is only a hint: anyone who may upload can set
 * metadata. It is trusted only when the named job's latest decision is a granted appeal (a human
 * APPROVED with `appealOf`) of the same bucket and key, whose record holds the SHA-256 of the bytes
 * approved, and this object has exactly those bytes. Uploading the very bytes a reviewer approved
 * gets them approved, which is right whoever uploads them.
 */
import { decisionHistory, objects } from './stores.ts';
import { contentHashOf } from './content-reuse.ts';
import { RESTORED_FROM_METADATA } from './lib/apply-decision.ts';
import { MAX_DOWNLOAD_BYTES } from './lib/image.ts';
import { recordIdOf } from './store/table-schema.ts';
import type { Detection, Job } from './lib/types.ts';

const JOB_ID = /^[0-9a-f]{40}$/;

export async function restoredDetection(
  job: Job,
  head: { size: number; metadata?: Record<string, string> },
  /** The SHA-256 of the bytes Detect's one GET read (contentHashOf), when it read them. */
  contentHash: string | undefined,
  policyVersion: string,
  startedAt: number,
): Promise<Detection | undefined> {
  const from = head.metadata?.[RESTORED_FROM_METADATA];
  if (!from || !JOB_ID.test(from) || from === job.jobId || head.size > MAX_DOWNLOAD_BYTES) return undefined;
  const granted = await decisionHistory().latestDecision(from);
  if (
    !granted ||
    granted.kind !== 'human' ||
    granted.status !== 'APPROVED' ||
    !granted.appealOf ||
    !granted.contentSha256 ||
    granted.bucket !== job.bucket ||
    granted.key !== job.key
  ) {
    return undefined;
  }
  const sha256 = contentHash ?? contentHashOf(await objects().read(job));
  if (sha256 !== granted.contentSha256) return undefined;
  return {
    verdict: 'APPROVE',
    labels: [],
    flagged: [],
    policyVersion,
    source: 's3-object',
    restoredFrom: { jobId: from, recordId: recordIdOf(granted), decidedBy: granted.decidedBy },
    durationMs: Date.now() - startedAt,
  };
}
