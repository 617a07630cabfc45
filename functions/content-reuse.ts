/**
 * Never pay twice for the same bytes (docs/architecture.md, "Never pay twice for the same bytes"):
 * before Rekognition is asked, Detect looks the upload up in the decision store's content index.
 *
 * - Identical bytes: the SHA-256 of the whole object (read by Detect's one GET anyway). An S3 ETag is
 *   not a content hash (a multipart upload's is a hash of its parts' hashes, so the same bytes uploaded
 *   in other parts have another ETag), and S3's own SHA-256 checksum exists only when the uploader sent
 *   one (and is a checksum of part checksums for multipart uploads): neither can be relied on.
 * - Known bad: a near-duplicate (functions/lib/perceptual-hash.ts) of an image REJECTED under the same
 *   policy version is rejected too, its reason saying so with the distance.
 *
 * Only APPROVED, REJECTED and UNUSABLE are repeated, never REVIEW (a person has yet to look) nor FAILED
 * (nothing was decided). The index points at the job that first decided the bytes and its latest
 * decision is what is repeated, so a human override made since wins; a near-duplicate is only matched
 * while the image it resembles still stands REJECTED.
 */
import { createHash } from 'node:crypto';
import { decisionHistory } from './stores.ts';
import { handlerConfig } from './lib/config.ts';
import { recordIdOf } from './store/table-schema.ts';
import { NEAR_DUPLICATE_MAX_DISTANCE } from './lib/hash-bands.ts';
import type { DecisionRecord, DecisionStatus, Detection, Job, ReusedDecision } from './lib/types.ts';

/** The statuses a repeat of the same bytes carries over. */
const REUSABLE_STATUSES: readonly DecisionStatus[] = ['APPROVED', 'REJECTED', 'UNUSABLE'];
/** Known-bad candidates followed to their latest decision, nearest first, at most. */
const MAX_NEAR_CANDIDATES = 3;

export function contentHashOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The decision these exact bytes already have under this policy version, as a detection; undefined when there is none to repeat. */
export async function identicalContentDetection(job: Job, contentHash: string, policyVersion: string, startedAt: number): Promise<Detection | undefined> {
  const store = decisionHistory();
  const source = await store.content.sourceOf(contentHash, policyVersion);
  if (!source || source.jobId === job.jobId) return undefined;
  const latest = await store.latestDecision(source.jobId);
  if (!latest || !REUSABLE_STATUSES.includes(latest.status)) return undefined;
  // What the bytes show is in the automated record (a person's decision records no analysis).
  const seen = latest.analysis ? latest : latest.kind === 'automated' ? undefined : await store.automated(source.jobId);
  return { ...reusedDetection(latest, { match: 'identical' }, policyVersion, startedAt), ...repeatedLabelsOf(seen) };
}

/** REJECTED, as a detection, when the image is a near-duplicate of one that stands REJECTED under this policy version. */
export async function knownBadDetection(job: Job, perceptualHash: string, policyVersion: string, startedAt: number): Promise<Detection | undefined> {
  const store = decisionHistory();
  const matches = (await store.content.nearRejected(perceptualHash, policyVersion, NEAR_DUPLICATE_MAX_DISTANCE)).filter((m) => m.jobId !== job.jobId);
  for (const match of matches.slice(0, MAX_NEAR_CANDIDATES)) {
    const latest = await store.latestDecision(match.jobId);
    if (latest?.status === 'REJECTED') return reusedDetection(latest, { match: 'near-duplicate', distance: match.distance }, policyVersion, startedAt);
  }
  return undefined;
}

function reusedDetection(latest: DecisionRecord, how: Pick<ReusedDecision, 'match' | 'distance'>, policyVersion: string, startedAt: number): Detection {
  const status = latest.status as ReusedDecision['status'];
  const reusedFrom: ReusedDecision = {
    jobId: latest.jobId,
    recordId: recordIdOf(latest),
    status,
    decidedBy: latest.decidedBy,
    ...how,
    ...(latest.reason ? { reason: latest.reason } : {}),
  };
  return {
    verdict: status === 'APPROVED' ? 'APPROVE' : status === 'REJECTED' ? 'REJECT' : 'UNUSABLE',
    // What the earlier decision saw (labels, the rule that decided, the model): auditors querying by
    // category find the repeat too.
    labels: latest.labels ?? [],
    ...(latest.rule ? { rule: latest.rule } : {}),
    flagged: [],
    policyVersion,
    ...(latest.modelVersion ? { modelVersion: latest.modelVersion } : {}),
    ...(status === 'UNUSABLE' ? { unusableReason: latest.reason ?? 'the file is not a usable image' } : {}),
    source: 's3-object',
    reusedFrom,
    durationMs: Date.now() - startedAt,
  };
}

/** The same bytes show the same things: a repeat's label tags come from the earlier labels. */
function repeatedLabelsOf(record: DecisionRecord | undefined): Pick<Detection, 'repeatedLabels'> {
  const labels = record?.analysis?.labels;
  return labels ? { repeatedLabels: labels.map(({ name, confidence }) => ({ name, confidence })) } : {};
}

/**
 * After the automated decision is written: remembers the bytes (the job that decided them) and, for a
 * REJECTED still image, its perceptual hash among the known bad. A repeat of identical bytes adds
 * nothing (the bytes are indexed already); a near-duplicate's own bytes are remembered, but not its
 * hash (a chain of near-duplicates of near-duplicates would drift away from what was rejected).
 * Never at the decision's expense: an index that cannot be written costs a Rekognition call later,
 * so the failure is logged and counted (ContentIndexFailures), not thrown.
 */
export async function rememberContent(record: DecisionRecord, detection: Detection | undefined, onError: (err: Error) => void): Promise<void> {
  const fingerprint = detection?.fingerprint;
  if (!fingerprint || !detection || detection.objectState || !REUSABLE_STATUSES.includes(record.status) || !record.policyVersion) return;
  // Reuse switched off (REUSE_DECISIONS=off): nothing will look the bytes up, so nothing is written.
  if (!handlerConfig().reuseDecisions) return;
  const store = decisionHistory();
  const entry = { policyVersion: record.policyVersion, jobId: record.jobId, recordedAt: record.decidedAt };
  try {
    if (detection.reusedFrom?.match !== 'identical') await store.content.remember({ ...entry, contentHash: fingerprint.contentHash });
    const still = (detection.frames?.total ?? 1) === 1;
    if (record.status === 'REJECTED' && fingerprint.perceptualHash && still && !detection.reusedFrom) {
      await store.content.rememberRejected({ ...entry, perceptualHash: fingerprint.perceptualHash });
    }
  } catch (err) {
    onError(err as Error);
  }
}
