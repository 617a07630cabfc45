/**
 * How an object version is named, the same everywhere (job id, detect, apply, reconcile): ETags
 * without quotes, and versionId "null" (what S3 reports for objects written while versioning was off
 * or suspended) as no version at all.
 */

/** An ETag as S3 sends it ("abc", W/"abc") to the bare value every comparison uses. */
export function normaliseETag(eTag: string | undefined | null): string | undefined {
  return eTag?.replace(/^W\//, '').replace(/"/g, '') || undefined;
}

/** S3's versionId "null" (and '' or absent) means the object has no version of its own. */
export function normaliseVersionId(versionId: string | undefined | null): string | undefined {
  return versionId && versionId !== 'null' ? versionId : undefined;
}
