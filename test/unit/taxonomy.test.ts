import { describe, expect, it } from 'vitest';
import {
  allCategories,
  ancestry,
  findCategory,
  MODERATION_MODEL_VERSION,
  normaliseLabels,
  resolveCategoryName,
  topLevelCategory,
} from '../../functions/lib/taxonomy.ts';

describe('taxonomy: model 7', () => {
  it('has the released shape: 10 top-level categories, 52 labels, three levels', () => {
    const all = allCategories();
    expect(MODERATION_MODEL_VERSION).toBe('7.0');
    expect(all).toHaveLength(52);
    expect(all.filter((n) => n.level === 1)).toHaveLength(10);
    expect(all.filter((n) => n.level === 2)).toHaveLength(20);
    expect(all.filter((n) => n.level === 3)).toHaveLength(22);
    // Every parent exists one level up.
    for (const node of all.filter((n) => n.level > 1)) {
      expect(findCategory(node.parentName)?.level).toBe(node.level - 1);
    }
  });

  it('finds labels case-insensitively and by pre-release spellings', () => {
    expect(findCategory('explicit nudity')).toEqual({ name: 'Explicit Nudity', parentName: 'Explicit', level: 2 });
    expect(findCategory('Exposed Female Nipples')?.name).toBe('Exposed Female Nipple');
    expect(findCategory('Drug & Tobacco Paraphernalia & Use')?.name).toBe('Drugs & Tobacco Paraphernalia & Use');
    expect(findCategory('Kissing on the lips')?.name).toBe('Kissing on the Lips');
    expect(findCategory('Suggestive')).toBeUndefined(); // a model-6 name only
    expect(findCategory('Nope')).toBeUndefined();
  });

  it('gives the canonical path from the top-level category', () => {
    expect(ancestry('Exposed Female Nipple')).toEqual(['Explicit', 'Explicit Nudity', 'Exposed Female Nipple']);
    expect(ancestry('self-harm')).toEqual(['Violence', 'Graphic Violence', 'Self-Harm']);
    expect(ancestry('Gambling')).toEqual(['Gambling']);
    expect(ancestry('Graphic Male Nudity')).toEqual(['Explicit', 'Explicit Nudity', 'Exposed Male Genitalia']);
    expect(ancestry('Something New')).toEqual(['Something New']);
    expect(topLevelCategory('Air Crash')).toBe('Visually Disturbing');
    expect(topLevelCategory('Tobacco')).toBe('Drugs & Tobacco');
    expect(topLevelCategory('Suggestive')).toBeUndefined(); // spans two model-7 categories
    expect(topLevelCategory('Something New')).toBeUndefined();
  });
});

describe('taxonomy: model 6.1 names', () => {
  it('maps top-level categories, including the split of Suggestive', () => {
    expect(resolveCategoryName('Suggestive')).toEqual(['Non-Explicit Nudity of Intimate parts and Kissing', 'Swimwear or Underwear']);
    expect(resolveCategoryName('Drugs')).toEqual(['Drugs & Tobacco']);
    expect(resolveCategoryName('tobacco')).toEqual(['Drugs & Tobacco']);
  });

  it('maps second-level labels onto the most specific model-7 labels', () => {
    expect(resolveCategoryName('Graphic Male Nudity')).toEqual(['Exposed Male Genitalia']);
    expect(resolveCategoryName('Barechested Male')).toEqual(['Exposed Male Nipple']);
    expect(resolveCategoryName('Revealing Clothes')).toEqual(['Non-Explicit Nudity']);
    expect(resolveCategoryName('Female Swimwear Or Underwear')).toEqual(['Female Swimwear or Underwear']);
    expect(resolveCategoryName('Explosions And Blasts')).toEqual(['Explosions and Blasts']);
    expect(resolveCategoryName('Hanging')).toEqual(['Corpses']);
    expect(resolveCategoryName('Nudity')).toEqual(['Exposed Female Nipple', 'Exposed Buttocks or Anus']);
  });

  it("reads 'Explicit Nudity' as the model-7 L2 first", () => {
    expect(resolveCategoryName('Explicit Nudity')).toEqual(['Explicit Nudity']);
    expect(resolveCategoryName('Explicit')).toEqual(['Explicit']);
    expect(resolveCategoryName('Unheard Of')).toEqual([]);
  });
});

describe('normaliseLabels', () => {
  it('fills parent and level from the taxonomy and sorts by confidence', () => {
    const labels = normaliseLabels([
      { Name: 'Explicit', ParentName: '', TaxonomyLevel: 1, Confidence: 97.5 },
      { Name: 'exposed female nipples', Confidence: 98.1 },
      { Name: 'Explicit Nudity', ParentName: 'Explicit', TaxonomyLevel: 2, Confidence: 97.9 },
    ]);
    expect(labels).toEqual([
      { name: 'Exposed Female Nipple', parentName: 'Explicit Nudity', level: 3, confidence: 98.1 },
      { name: 'Explicit Nudity', parentName: 'Explicit', level: 2, confidence: 97.9 },
      { name: 'Explicit', parentName: '', level: 1, confidence: 97.5 },
    ]);
  });

  it('maps an older model response onto model 7, splitting what was split', () => {
    const labels = normaliseLabels([
      { Name: 'Explicit Nudity', ParentName: '', Confidence: 91 }, // model-6 L1: model-7 'Explicit'
      { Name: 'Graphic Male Nudity', ParentName: 'Explicit Nudity', Confidence: 90 },
      { Name: 'Suggestive', ParentName: '', Confidence: 60 },
    ]);
    expect(labels.map((l) => [l.name, l.level, l.confidence])).toEqual([
      ['Explicit', 1, 91],
      ['Exposed Male Genitalia', 3, 90],
      ['Non-Explicit Nudity of Intimate parts and Kissing', 1, 60],
      ['Swimwear or Underwear', 1, 60],
    ]);
  });

  it('dedupes by canonical name keeping the highest confidence', () => {
    const labels = normaliseLabels([
      { Name: 'Tobacco', ParentName: '', Confidence: 70 },
      { Name: 'Drugs', ParentName: '', Confidence: 85 },
      { Name: 'Drugs & Tobacco', ParentName: '', TaxonomyLevel: 1, Confidence: 80 },
    ]);
    expect(labels).toEqual([{ name: 'Drugs & Tobacco', parentName: '', level: 1, confidence: 85 }]);
  });

  it('keeps unknown labels as they came and drops nameless ones', () => {
    const labels = normaliseLabels([
      { Name: 'Future Label', ParentName: 'Explicit Nudity', TaxonomyLevel: 3, Confidence: 55 },
      { Name: 'Other Future', Confidence: 52 },
      { ParentName: 'Explicit', Confidence: 99 },
    ]);
    expect(labels).toEqual([
      { name: 'Future Label', parentName: 'Explicit Nudity', level: 3, confidence: 55 },
      { name: 'Other Future', parentName: '', level: 1, confidence: 52 },
    ]);
  });
});
