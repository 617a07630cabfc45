import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../functions/lib/policy.ts';
import { decideVerdict } from '../../functions/lib/verdict.ts';
import type { ModerationLabel } from '../../functions/lib/types.ts';

const label = (name: string, parentName: string, level: 1 | 2 | 3, confidence: number): ModerationLabel => ({ name, parentName, level, confidence });

const policy = parsePolicy(`
rules:
  Violence: { reject: 80, review: 50 }
  Weapons: { review: 70 }
  Explicit: { reject: 90 }
  Explicit Nudity: { reject: 60 }
  Non-Explicit Nudity of Intimate parts and Kissing: { review: 60 }
  Kissing on the Lips: allow
`);

describe('decideVerdict: thresholds are inclusive', () => {
  const violence = (confidence: number) => [label('Violence', '', 1, confidence)];

  it('REJECT at exactly the reject threshold', () => {
    const result = decideVerdict(violence(80), policy);
    expect(result.verdict).toBe('REJECT');
    expect(result.rule).toEqual({ category: 'Violence', label: 'Violence', confidence: 80, action: 'reject', threshold: 80 });
  });

  it('BORDERLINE just below reject and at exactly review', () => {
    expect(decideVerdict(violence(79.99), policy)).toMatchObject({ verdict: 'BORDERLINE', rule: { action: 'review', threshold: 50 } });
    expect(decideVerdict(violence(50), policy).verdict).toBe('BORDERLINE');
  });

  it('APPROVE just below review, with no rule and nothing flagged', () => {
    expect(decideVerdict(violence(49.99), policy)).toEqual({ verdict: 'APPROVE', flagged: [] });
    expect(decideVerdict([], policy)).toEqual({ verdict: 'APPROVE', flagged: [] });
  });

  it('a rule with review only never rejects', () => {
    expect(decideVerdict([label('Violence', '', 1, 65), label('Weapons', 'Violence', 2, 99)], policy)).toMatchObject({
      verdict: 'BORDERLINE',
      rule: { category: 'Weapons', label: 'Weapons', action: 'review', threshold: 70 },
    });
  });
});

describe('decideVerdict: the deciding rule', () => {
  it('is the strongest: reject beats a more confident review', () => {
    const result = decideVerdict(
      [label('Violence', '', 1, 99), label('Weapons', 'Violence', 2, 99), label('Explicit Nudity', 'Explicit', 2, 61)],
      policy,
    );
    expect(result.verdict).toBe('REJECT');
    expect(result.rule).toMatchObject({ category: 'Explicit Nudity', label: 'Explicit Nudity', action: 'reject', threshold: 60 });
    expect(result.flagged.map((f) => [f.label, f.action])).toEqual([
      ['Explicit Nudity', 'reject'],
      ['Weapons', 'review'],
    ]);
  });

  it('among equals, the more confident label, then the deeper one', () => {
    const chain = [
      label('Explicit', '', 1, 95),
      label('Explicit Nudity', 'Explicit', 2, 95),
      label('Exposed Female Nipple', 'Explicit Nudity', 3, 95),
      label('Exposed Buttocks or Anus', 'Explicit Nudity', 3, 70),
    ];
    const result = decideVerdict(chain, policy);
    expect(result.rule).toMatchObject({ label: 'Exposed Female Nipple', category: 'Explicit Nudity', confidence: 95 });
    expect(result.flagged.map((f) => f.label)).toEqual(['Exposed Female Nipple', 'Explicit Nudity', 'Exposed Buttocks or Anus']);
  });

  it('lets a specific rule beat its parent for labels under it (Explicit Nudity 60 vs Explicit 90)', () => {
    const chain = [label('Explicit', '', 1, 70), label('Explicit Nudity', 'Explicit', 2, 70), label('Exposed Male Genitalia', 'Explicit Nudity', 3, 70)];
    expect(decideVerdict(chain, policy)).toMatchObject({ verdict: 'REJECT', rule: { category: 'Explicit Nudity', threshold: 60 } });
    // Sex Toys has no rule of its own: Explicit's 90 applies.
    expect(decideVerdict([label('Explicit', '', 1, 70), label('Sex Toys', 'Explicit', 2, 70)], policy).verdict).toBe('APPROVE');
  });

  it('an allowed child is not overruled by its parent in the same chain', () => {
    const kiss = [label('Non-Explicit Nudity of Intimate parts and Kissing', '', 1, 92), label('Kissing on the Lips', 'Non-Explicit Nudity of Intimate parts and Kissing', 2, 92)];
    expect(decideVerdict(kiss, policy)).toEqual({ verdict: 'APPROVE', flagged: [] });
  });

  it('but a parent more confident than its allowed child still counts (fail closed)', () => {
    const kiss = [label('Non-Explicit Nudity of Intimate parts and Kissing', '', 1, 92), label('Kissing on the Lips', 'Non-Explicit Nudity of Intimate parts and Kissing', 2, 55)];
    expect(decideVerdict(kiss, policy)).toMatchObject({ verdict: 'BORDERLINE', rule: { category: 'Non-Explicit Nudity of Intimate parts and Kissing', label: 'Non-Explicit Nudity of Intimate parts and Kissing' } });
  });

  it('an allowed child next to a flagged sibling does not hide the sibling', () => {
    const labels = [
      label('Non-Explicit Nudity of Intimate parts and Kissing', '', 1, 90),
      label('Kissing on the Lips', 'Non-Explicit Nudity of Intimate parts and Kissing', 2, 90),
      label('Non-Explicit Nudity', 'Non-Explicit Nudity of Intimate parts and Kissing', 2, 75),
      label('Implied Nudity', 'Non-Explicit Nudity', 3, 75),
    ];
    expect(decideVerdict(labels, policy)).toMatchObject({ verdict: 'BORDERLINE', rule: { label: 'Implied Nudity', confidence: 75 } });
  });

  it('an unknown label falls under the default, or its known parent', () => {
    const allowDefault = decideVerdict([label('Brand New Label', '', 1, 99)], policy);
    expect(allowDefault.verdict).toBe('APPROVE');
    const strictDefault = parsePolicy('default: { review: 40 }\nrules: {}');
    expect(decideVerdict([label('Brand New Label', '', 1, 41)], strictDefault)).toMatchObject({ verdict: 'BORDERLINE', rule: { category: '*' } });
    expect(decideVerdict([label('New Nudity Kind', 'Explicit Nudity', 3, 65)], policy)).toMatchObject({ verdict: 'REJECT', rule: { category: 'Explicit Nudity' } });
  });
});
