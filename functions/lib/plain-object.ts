/** A parsed YAML/JSON mapping (not null, not an array): what the policy documents' fields must be. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
