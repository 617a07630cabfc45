import { describe, expect, it } from 'vitest';
import { parsePolicy, PolicyError, presetPolicy, PRESETS, resolvePolicy, ruleFor, type Policy } from '../../functions/lib/policy.ts';
import { decideVerdict } from '../../functions/lib/verdict.ts';
import { ancestry } from '../../functions/lib/taxonomy.ts';
import type { ModerationLabel } from '../../functions/lib/types.ts';

/** The label and its parent chain at one confidence, as Rekognition model 7 returns a detection. */
function detected(name: string, confidence: number): ModerationLabel[] {
  const path = ancestry(name);
  return path.map((label, index) => ({
    name: label,
    parentName: index === 0 ? '' : path[index - 1],
    level: (index + 1) as 1 | 2 | 3,
    confidence,
  }));
}

function errorOf(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return error as PolicyError;
  }
  throw new Error('expected a PolicyError');
}

describe('ruleFor: the most specific rule wins', () => {
  const policy = parsePolicy(`
default: { review: 40 }
rules:
  Explicit: { reject: 90 }
  Explicit Nudity: { reject: 60 }
  Swimwear or Underwear: allow
`);

  it('walks from the label up to the top-level category', () => {
    expect(ruleFor(policy, 'Exposed Female Nipple')).toMatchObject({ category: 'Explicit Nudity', reject: 60 });
    expect(ruleFor(policy, 'Explicit Nudity')).toMatchObject({ category: 'Explicit Nudity', reject: 60 });
    expect(ruleFor(policy, 'Sex Toys')).toMatchObject({ category: 'Explicit', reject: 90 });
    expect(ruleFor(policy, 'Explicit')).toMatchObject({ category: 'Explicit', reject: 90 });
  });

  it('falls back to the default, category *', () => {
    expect(ruleFor(policy, 'Weapons')).toEqual({ category: '*', action: 'threshold', review: 40 });
    expect(ruleFor(policy, 'Never Heard Of')).toMatchObject({ category: '*' });
    expect(ruleFor(policy, 'constructor')).toMatchObject({ category: '*' });
  });

  it('lets allow beat a default that would flag', () => {
    expect(ruleFor(policy, 'Female Swimwear or Underwear')).toEqual({ category: 'Swimwear or Underwear', action: 'allow' });
    expect(decideVerdict(detected('Female Swimwear or Underwear', 99), policy).verdict).toBe('APPROVE');
  });

  it('places an unknown label under its known parent', () => {
    expect(ruleFor(policy, 'Exposed Something New', 'Explicit Nudity')).toMatchObject({ category: 'Explicit Nudity' });
  });
});

describe('parsePolicy', () => {
  it('accepts model-6 names, applied to every model-7 category they became', () => {
    const policy = parsePolicy('rules:\n  Suggestive: { review: 70 }\n  Drugs: { reject: 90 }\n');
    expect(Object.keys(policy.rules).sort()).toEqual(['Drugs & Tobacco', 'Non-Explicit Nudity of Intimate parts and Kissing', 'Swimwear or Underwear']);
    expect(ruleFor(policy, 'Male Swimwear or Underwear')).toMatchObject({ category: 'Swimwear or Underwear', review: 70 });
    expect(ruleFor(policy, 'Implied Nudity')).toMatchObject({ category: 'Non-Explicit Nudity of Intimate parts and Kissing', review: 70 });
    expect(policy.warnings.join('\n')).toMatch(/Suggestive.*model-6\.1 name/);
  });

  it('lets an explicit model-7 rule beat a model-6 expansion, in any order', () => {
    const a = parsePolicy('rules:\n  Suggestive: { review: 70 }\n  Swimwear or Underwear: allow\n');
    const b = parsePolicy('rules:\n  Swimwear or Underwear: allow\n  Suggestive: { review: 70 }\n');
    expect(a.rules['Swimwear or Underwear']).toEqual({ category: 'Swimwear or Underwear', action: 'allow' });
    expect(a.version).toBe(b.version);
  });

  it('reads YAML and JSON alike; the version depends only on meaning', () => {
    const yaml = parsePolicy(`
name: mine
rules:
  Violence: { reject: 90, review: 60 }
  Explicit: { reject: 80 }
`);
    const json = parsePolicy('{"rules":{"explicit":{"reject":80},"Violence":{"review":60,"reject":90}},"name":"other","default":"allow"}');
    expect(yaml.version).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(json.version).toBe(yaml.version);
    // Model-6 'Tobacco' and model-7 'Drugs & Tobacco' mean the same category.
    expect(parsePolicy('rules: { Tobacco: { review: 50 } }').version).toBe(parsePolicy('rules: { "Drugs & Tobacco": { review: 50 } }').version);
  });

  it('changes the version when a threshold, a rule or the default changes', () => {
    const base = parsePolicy('rules:\n  Violence: { reject: 90 }\n').version;
    expect(parsePolicy('rules:\n  Violence: { reject: 91 }\n').version).not.toBe(base);
    expect(parsePolicy('rules:\n  Violence: { review: 90 }\n').version).not.toBe(base);
    expect(parsePolicy('rules:\n  Violence: allow\n').version).not.toBe(base);
    expect(parsePolicy('default: { review: 99 }\nrules:\n  Violence: { reject: 90 }\n').version).not.toBe(base);
  });

  it('asks Rekognition for the lowest threshold at which any rule acts', () => {
    expect(parsePolicy('rules:\n  Violence: { reject: 90, review: 45 }\n  Explicit: { reject: 70 }\n').minConfidence).toBe(45);
    expect(parsePolicy('rules:\n  Explicit: { reject: 70 }\n').minConfidence).toBe(70);
    expect(parsePolicy('default: { review: 20 }\nrules:\n  Explicit: { reject: 70 }\n').minConfidence).toBe(20);
    expect(parsePolicy('rules:\n  Explicit: { review: 0 }\n').minConfidence).toBe(0);
    expect(parsePolicy('rules:\n  Explicit: allow\n').minConfidence).toBe(50);
    expect(parsePolicy('rules: {}').minConfidence).toBe(50);
  });

  it('names the field and the value in every message', () => {
    const error = errorOf(() => parsePolicy('rules:\n  Violence: { reject: 150 }\n', 'policy.yaml'));
    expect(error.name).toBe('PolicyError');
    expect(error.message).toBe('policy.yaml: rules."Violence".reject: must be a number from 0 to 100, got 150');
    expect(error.issues).toEqual(['rules."Violence".reject: must be a number from 0 to 100, got 150']);

    expect(errorOf(() => parsePolicy('rules:\n  Violence: { review: "high" }\n')).message).toContain('rules."Violence".review: must be a number from 0 to 100, got "high"');
    expect(errorOf(() => parsePolicy('default: { review: -1 }\nrules: {}\n')).message).toContain('default.review: must be a number from 0 to 100, got -1');
    expect(errorOf(() => parsePolicy('rules:\n  Violence: deny\n')).message).toContain('rules."Violence": must be "allow" or an object with reject and/or review, got "deny"');
    expect(errorOf(() => parsePolicy('rules:\n  Violence: { reject: 50, review: 60 }\n')).message).toContain('rules."Violence": review (60) must not be above reject (50)');
    expect(errorOf(() => parsePolicy('rules:\n  Violence: {}\n')).message).toContain('rules."Violence": must set reject and/or review');
    expect(errorOf(() => parsePolicy('rules:\n  Violence: { rejct: 50 }\n')).issues).toEqual(['rules."Violence": unknown field "rejct" (did you mean "reject"?)']);
  });

  it('rejects unknown categories, with a suggestion when one is close', () => {
    expect(errorOf(() => parsePolicy('rules:\n  Violense: { reject: 50 }\n')).message).toContain('rules."Violense": unknown category "Violense" (did you mean "Violence"?)');
    const far = errorOf(() => parsePolicy('rules:\n  Cats: { reject: 50 }\n'));
    expect(far.message).toContain('unknown category "Cats"');
    expect(far.message).not.toContain('did you mean');
  });

  it('is strict about the top level and reports every problem at once', () => {
    const error = errorOf(() => parsePolicy('rulez:\n  Violence: { reject: 50 }\n', 'p.yaml'));
    expect(error.issues).toContain('unknown field "rulez" (did you mean "rules"?)');
    expect(error.issues).toContain('rules: required (a mapping of category name to rule)');
    expect(error.message).toMatch(/^p\.yaml: 2 problems: /);
  });

  it('rejects text that is not a policy document', () => {
    expect(errorOf(() => parsePolicy('rules: [\n', 'x.yaml')).message).toMatch(/^x\.yaml: not valid YAML or JSON: /);
    expect(errorOf(() => parsePolicy('')).message).toContain('must be a mapping with "rules"');
    expect(errorOf(() => parsePolicy('rules:\n  Explicit: { reject: 80 }\n  Explicit: { reject: 70 }\n')).message).toMatch(/not valid YAML or JSON: .*unique/i);
    expect(errorOf(() => parsePolicy('rules:\n  Explicit: { reject: 80 }\n  explicit: { reject: 70 }\n')).message).toContain('duplicates rules."Explicit"');
    expect(errorOf(() => parsePolicy('rules:\n  Drugs: { reject: 80 }\n  Tobacco: allow\n')).message).toContain('conflicts with rules."Drugs" on "Drugs & Tobacco"');
  });
});

describe('presets', () => {
  const verdictOf = (policy: Policy, name: string, confidence: number) => decideVerdict(detected(name, confidence), policy).verdict;

  it('each parses, with a distinct version', () => {
    const versions = (['strict', 'standard', 'permissive'] as const).map((name) => {
      const policy = presetPolicy(name);
      expect(policy.name).toBe(name);
      expect(policy.warnings).toEqual([]);
      return policy.version;
    });
    expect(new Set(versions).size).toBe(3);
    expect(Object.isFrozen(PRESETS.standard.rules)).toBe(true);
  });

  it('strict (children): swimwear held then rejected, everything reviewed, low MinConfidence', () => {
    const strict = presetPolicy('strict');
    expect(verdictOf(strict, 'Female Swimwear or Underwear', 85)).toBe('REJECT');
    expect(verdictOf(strict, 'Female Swimwear or Underwear', 55)).toBe('BORDERLINE');
    expect(verdictOf(strict, 'Exposed Male Genitalia', 50)).toBe('REJECT');
    expect(verdictOf(strict, 'Drinking', 60)).toBe('BORDERLINE');
    expect(verdictOf(strict, 'Middle Finger', 75)).toBe('REJECT');
    expect(verdictOf(strict, 'Kissing on the Lips', 65)).toBe('REJECT');
    expect(strict.minConfidence).toBe(30);
  });

  it('standard (general): explicit rejected, swimwear and kissing allowed, weapons reviewed', () => {
    const standard = presetPolicy('standard');
    expect(verdictOf(standard, 'Exposed Female Genitalia', 80)).toBe('REJECT');
    expect(verdictOf(standard, 'Exposed Female Genitalia', 60)).toBe('BORDERLINE');
    expect(verdictOf(standard, 'Female Swimwear or Underwear', 99)).toBe('APPROVE');
    expect(verdictOf(standard, 'Kissing on the Lips', 99)).toBe('APPROVE');
    expect(verdictOf(standard, 'Partially Exposed Female Breast', 70)).toBe('BORDERLINE');
    expect(verdictOf(standard, 'Blood & Gore', 90)).toBe('REJECT');
    expect(verdictOf(standard, 'Weapons', 85)).toBe('BORDERLINE');
    expect(verdictOf(standard, 'Nazi Party', 85)).toBe('REJECT');
    expect(verdictOf(standard, 'Alcoholic Beverages', 99)).toBe('APPROVE');
    expect(verdictOf(standard, 'Pills', 75)).toBe('BORDERLINE');
    expect(verdictOf(standard, 'Smoking', 99)).toBe('APPROVE');
    expect(standard.minConfidence).toBe(50);
  });

  it('permissive (dating app): swimwear allowed, only confident explicit content rejected', () => {
    const permissive = presetPolicy('permissive');
    expect(verdictOf(permissive, 'Female Swimwear or Underwear', 99)).toBe('APPROVE');
    expect(verdictOf(permissive, 'Exposed Male Nipple', 99)).toBe('APPROVE');
    expect(verdictOf(permissive, 'Exposed Female Genitalia', 85)).toBe('BORDERLINE');
    expect(verdictOf(permissive, 'Exposed Female Genitalia', 90)).toBe('REJECT');
    expect(verdictOf(permissive, 'Implied Nudity', 80)).toBe('APPROVE');
    expect(verdictOf(permissive, 'Implied Nudity', 86)).toBe('BORDERLINE');
    expect(verdictOf(permissive, 'White Supremacy', 86)).toBe('REJECT');
  });

  it('rejects an unknown preset name', () => {
    expect(() => presetPolicy('lenient')).toThrow(/unknown policy preset "lenient" \(presets: strict, standard, permissive\)/);
  });
});

describe('resolvePolicy', () => {
  const noFiles = (path: string): string => {
    throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
  };

  it('takes a preset name, in any case', () => {
    expect(resolvePolicy('strict', noFiles).version).toBe(presetPolicy('strict').version);
    expect(resolvePolicy(' Permissive ', noFiles).name).toBe('permissive');
  });

  it('takes the policy inline, as JSON or multi-line YAML', () => {
    expect(resolvePolicy('{"rules":{"Explicit":{"reject":75}}}', noFiles).rules.Explicit).toMatchObject({ reject: 75 });
    expect(resolvePolicy('rules:\n  Explicit: { reject: 75 }\n', noFiles).rules.Explicit).toMatchObject({ reject: 75 });
  });

  it('reads anything else as a file, and says so clearly when it is missing', () => {
    const files: Record<string, string> = { '/etc/policy.yaml': 'name: file\nrules:\n  Gambling: { review: 55 }\n' };
    const read = (path: string) => files[path] ?? noFiles(path);
    expect(resolvePolicy('/etc/policy.yaml', read).name).toBe('file');
    expect(() => resolvePolicy('/etc/missing.yaml', read)).toThrow(PolicyError);
    expect(() => resolvePolicy('/etc/missing.yaml', read)).toThrow(/^policy file not found: \/etc\/missing\.yaml \(expected a preset/);
    expect(() => resolvePolicy('', read)).toThrow(/policy setting is empty/);
  });

  it('prefixes validation errors with the file name', () => {
    const read = () => 'rules:\n  Violence: { reject: 150 }\n';
    expect(() => resolvePolicy('bad.yaml', read)).toThrow('bad.yaml: rules."Violence".reject: must be a number from 0 to 100, got 150');
  });

  it('reads real files by default', () => {
    expect(() => resolvePolicy('/definitely/not/here/policy.yaml')).toThrow(/policy file not found/);
  });
});
