/**
 * "Did you mean" for names a person typed (policy categories, fields). Levenshtein distance over
 * lower-cased names; only close matches are offered, since a wrong suggestion is worse than none.
 */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  const needle = input.trim().toLowerCase();
  if (!needle) return undefined;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = levenshtein(needle, candidate.toLowerCase());
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  // Allow roughly one typo per four characters, at least two: 'Violense' -> 'Violence', 'Nudty' -> 'Nudity'.
  const tolerance = Math.max(2, Math.floor(needle.length / 4));
  return best && best.distance > 0 && best.distance <= tolerance ? best.name : undefined;
}

function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
