import { createHash } from 'node:crypto';

/**
 * Deterministic JSON: object keys sorted at every depth, undefined members dropped. Used where a
 * content hash must not depend on how a document happened to be written (YAML vs JSON, key order).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

/** A document's content version: `sha256:` and the first 16 hex digits of the SHA-256 of its canonical JSON. */
export function contentVersion(value: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16)}`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key];
      if (member !== undefined) sorted[key] = sortKeys(member);
    }
    return sorted;
  }
  return value;
}
