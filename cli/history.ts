/** Reading the decision history the way the CLI needs it: the latest word on one object version. */
import { latestOf, type DecisionStore } from '../functions/store/decision-store.ts';
import { normaliseETag } from '../functions/lib/object-identity.ts';
import type { DecisionRecord } from '../functions/lib/types.ts';

/**
 * The current decision for an object version (by ETag): the newest decision record (a human's over
 * the automated one), or FAILED when only failures exist so far.
 */
export async function currentDecision(store: DecisionStore, bucket: string, key: string, eTag: string): Promise<DecisionRecord | undefined> {
  const wanted = normaliseETag(eTag);
  return latestOf((await store.imageHistory(bucket, key)).filter((r) => normaliseETag(r.eTag) === wanted));
}
