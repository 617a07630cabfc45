import { describe, expect, it } from 'vitest';
import type { ClassScores } from '../../local/detector/classifier.ts';
import { MODEL_7_LABELS } from '../../functions/lib/taxonomy-data.ts';
import { CALIBRATION, calibrate, signals, toModerationLabels, type RekognitionModerationLabel } from '../../local/detector/mapping.ts';

const scores = (partial: Partial<ClassScores>): ClassScores => {
  const s = { Drawing: 0, Hentai: 0, Neutral: 0, Porn: 0, Sexy: 0, ...partial };
  const rest = 1 - (s.Drawing + s.Hentai + s.Porn + s.Sexy);
  return partial.Neutral === undefined ? { ...s, Neutral: Math.max(0, rest) } : s;
};
const names = (labels: RekognitionModerationLabel[]) => labels.map((l) => l.Name);
const byName = (labels: RekognitionModerationLabel[], name: string) => labels.find((l) => l.Name === name);

describe('calibrate', () => {
  it('interpolates linearly between knots and clamps outside [0, 1]', () => {
    const curve = [
      [0, 0],
      [0.5, 20],
      [1, 100],
    ] as const;
    expect(calibrate(curve, 0.25)).toBeCloseTo(10);
    expect(calibrate(curve, 0.75)).toBeCloseTo(60);
    expect(calibrate(curve, -1)).toBe(0);
    expect(calibrate(curve, 2)).toBe(100);
    expect(calibrate(curve, Number.NaN)).toBe(0);
  });

  it('every curve is monotone and stays within 0-100', () => {
    for (const curve of Object.values(CALIBRATION)) {
      let previous = -1;
      for (let x = 0; x <= 1.0001; x += 0.01) {
        const y = calibrate(curve, x);
        expect(y).toBeGreaterThanOrEqual(previous);
        expect(y).toBeLessThanOrEqual(100);
        previous = y;
      }
    }
  });
});

describe('toModerationLabels', () => {
  it('reports nothing for a neutral photo', () => {
    const out = toModerationLabels(scores({ Neutral: 0.97, Drawing: 0.02, Porn: 0.01 }));
    expect(out).toEqual({ ModerationLabels: [], ModerationModelVersion: '7.0', ContentTypes: [] });
  });

  it('keeps the clothed-group-photo case (Porn ~0.5) under the default MinConfidence', () => {
    const out = toModerationLabels(scores({ Porn: 0.5, Sexy: 0.1, Neutral: 0.4 }));
    expect(out.ModerationLabels).toEqual([]);
    // ...but a policy asking for weak signals still sees it.
    const weak = toModerationLabels(scores({ Porn: 0.5, Sexy: 0.1, Neutral: 0.4 }), { minConfidence: 20 });
    expect(byName(weak.ModerationLabels, 'Explicit')?.Confidence).toBeCloseTo(25);
  });

  it('maps high Porn to Explicit > Explicit Nudity, child first, same confidence', () => {
    const out = toModerationLabels(scores({ Porn: 0.97, Sexy: 0.02 }));
    expect(out.ModerationLabels.slice(0, 2)).toEqual([
      { Name: 'Explicit Nudity', ParentName: 'Explicit', TaxonomyLevel: 2, Confidence: expect.any(Number) },
      { Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: expect.any(Number) },
    ]);
    const [child, parent] = out.ModerationLabels;
    expect(child.Confidence).toBe(parent.Confidence);
    expect(child.Confidence).toBeGreaterThan(90);
    expect(out.ContentTypes).toEqual([]);
  });

  it('maps Hentai to Explicit Nudity with the Animated content type', () => {
    const out = toModerationLabels(scores({ Hentai: 0.95, Drawing: 0.04 }));
    expect(names(out.ModerationLabels)).toEqual(['Explicit Nudity', 'Explicit']);
    expect(out.ContentTypes).toEqual([{ Name: 'Animated', Confidence: expect.closeTo(99, 0) }]);
  });

  it('maps a drawing to the Illustrated content type and no label', () => {
    const out = toModerationLabels(scores({ Drawing: 0.9, Neutral: 0.09, Hentai: 0.01 }));
    expect(out.ModerationLabels).toEqual([]);
    expect(out.ContentTypes).toEqual([{ Name: 'Illustrated', Confidence: expect.closeTo(91, 0) }]);
  });

  it('maps Sexy mixed with Porn to Implied Nudity with its two ancestors', () => {
    const out = toModerationLabels(scores({ Sexy: 0.45, Porn: 0.45 }));
    const implied = byName(out.ModerationLabels, 'Implied Nudity');
    expect(implied).toMatchObject({ ParentName: 'Non-Explicit Nudity', TaxonomyLevel: 3 });
    expect(byName(out.ModerationLabels, 'Non-Explicit Nudity')).toMatchObject({
      ParentName: 'Non-Explicit Nudity of Intimate parts and Kissing',
      TaxonomyLevel: 2,
      Confidence: implied!.Confidence,
    });
    expect(byName(out.ModerationLabels, 'Non-Explicit Nudity of Intimate parts and Kissing')).toMatchObject({ ParentName: '', TaxonomyLevel: 1 });
    expect(implied!.Confidence).toBeGreaterThanOrEqual(60); // review level in the standard policy
    expect(byName(out.ModerationLabels, 'Explicit')?.Confidence ?? 0).toBeLessThan(80); // not reject level
    // strongest path first
    expect(out.ModerationLabels[0].Name).toBe('Implied Nudity');
  });

  it('maps Sexy alone to Swimwear or Underwear > Female Swimwear or Underwear', () => {
    const out = toModerationLabels(scores({ Sexy: 0.9, Porn: 0.03 }));
    expect(names(out.ModerationLabels)).toEqual(['Female Swimwear or Underwear', 'Swimwear or Underwear']);
    expect(out.ModerationLabels[0]).toMatchObject({ ParentName: 'Swimwear or Underwear', TaxonomyLevel: 2 });
    expect(out.ModerationLabels[0].Confidence).toBeGreaterThan(80);
  });

  it('filters by MinConfidence, ancestors with their child', () => {
    const s = scores({ Porn: 0.72, Sexy: 0.2 });
    const all = toModerationLabels(s, { minConfidence: 0 });
    expect(names(all.ModerationLabels)).toEqual(expect.arrayContaining(['Explicit', 'Explicit Nudity', 'Implied Nudity', 'Female Swimwear or Underwear']));
    const strict = toModerationLabels(s, { minConfidence: 55 });
    expect(names(strict.ModerationLabels)).toEqual(['Implied Nudity', 'Non-Explicit Nudity', 'Non-Explicit Nudity of Intimate parts and Kissing']);
    expect(toModerationLabels(s, { minConfidence: 100 }).ModerationLabels).toEqual([]);
    for (const label of all.ModerationLabels) expect(label.Confidence).toBeGreaterThan(0);
  });

  it('never reports categories nsfwjs cannot see', () => {
    const seen = new Set<string>();
    for (const s of [scores({ Porn: 1 }), scores({ Sexy: 1 }), scores({ Hentai: 1 }), scores({ Sexy: 0.5, Porn: 0.5 })]) {
      for (const l of toModerationLabels(s, { minConfidence: 0 }).ModerationLabels) seen.add(l.Name);
    }
    for (const never of ['Violence', 'Weapons', 'Drugs & Tobacco', 'Alcohol', 'Gambling', 'Hate Symbols', 'Rude Gestures', 'Visually Disturbing']) {
      expect(seen.has(never)).toBe(false);
    }
  });

  it('uses only names, parents and levels of the model-7 taxonomy', () => {
    const known = new Map(MODEL_7_LABELS.map((l) => [l.name, l]));
    const s = [scores({ Porn: 1 }), scores({ Sexy: 1 }), scores({ Sexy: 0.5, Porn: 0.5 })];
    for (const label of s.flatMap((x) => toModerationLabels(x, { minConfidence: 0 }).ModerationLabels)) {
      const ref = known.get(label.Name);
      expect(ref, label.Name).toBeDefined();
      expect(label.ParentName).toBe(ref!.parentName);
      expect(label.TaxonomyLevel).toBe(ref!.level);
    }
  });

  it('tolerates out-of-range or missing probabilities', () => {
    const out = toModerationLabels({ Drawing: Number.NaN, Hentai: -1, Neutral: 2, Porn: 1.5, Sexy: 0 });
    expect(byName(out.ModerationLabels, 'Explicit')!.Confidence).toBeLessThanOrEqual(100);
    expect(signals({ Drawing: 0, Hentai: 0.6, Neutral: 0, Porn: 0.6, Sexy: 0 }).explicit).toBe(1);
  });
});
