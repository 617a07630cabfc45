/**
 * The Rekognition content-moderation taxonomy as data: model 7.0 (three levels, 10 top-level
 * categories, 52 labels) and the model 6.1 names it replaced, with AWS's 6.1 -> 7 mapping.
 *
 * Encoded from the AWS documentation and AWS's own v7 migration guide (retrieved 2026-11-25; model 7.0
 * released 2024-02-01). It is data, not logic: taxonomy.ts builds the lookups. Keep the released
 * spellings exactly (e.g. lower-case 'parts and' in 'Non-Explicit Nudity of Intimate parts and Kissing').
 */
import type { TaxonomyLevel } from './types.ts';

export interface TaxonomyEntry {
  readonly name: string;
  /** '' for a top-level (L1) category. */
  readonly parentName: string;
  readonly level: TaxonomyLevel;
}

/** Every model-7 label, parents before children, in the order of the AWS table. */
export const MODEL_7_LABELS: readonly TaxonomyEntry[] = [
  { name: 'Explicit', parentName: '', level: 1 },
  { name: 'Explicit Nudity', parentName: 'Explicit', level: 2 },
  { name: 'Exposed Male Genitalia', parentName: 'Explicit Nudity', level: 3 },
  { name: 'Exposed Female Genitalia', parentName: 'Explicit Nudity', level: 3 },
  { name: 'Exposed Buttocks or Anus', parentName: 'Explicit Nudity', level: 3 },
  { name: 'Exposed Female Nipple', parentName: 'Explicit Nudity', level: 3 },
  { name: 'Explicit Sexual Activity', parentName: 'Explicit', level: 2 },
  { name: 'Sex Toys', parentName: 'Explicit', level: 2 },
  { name: 'Non-Explicit Nudity of Intimate parts and Kissing', parentName: '', level: 1 },
  { name: 'Non-Explicit Nudity', parentName: 'Non-Explicit Nudity of Intimate parts and Kissing', level: 2 },
  { name: 'Bare Back', parentName: 'Non-Explicit Nudity', level: 3 },
  { name: 'Exposed Male Nipple', parentName: 'Non-Explicit Nudity', level: 3 },
  { name: 'Partially Exposed Buttocks', parentName: 'Non-Explicit Nudity', level: 3 },
  { name: 'Partially Exposed Female Breast', parentName: 'Non-Explicit Nudity', level: 3 },
  { name: 'Implied Nudity', parentName: 'Non-Explicit Nudity', level: 3 },
  { name: 'Obstructed Intimate Parts', parentName: 'Non-Explicit Nudity of Intimate parts and Kissing', level: 2 },
  { name: 'Obstructed Female Nipple', parentName: 'Obstructed Intimate Parts', level: 3 },
  { name: 'Obstructed Male Genitalia', parentName: 'Obstructed Intimate Parts', level: 3 },
  { name: 'Kissing on the Lips', parentName: 'Non-Explicit Nudity of Intimate parts and Kissing', level: 2 },
  { name: 'Swimwear or Underwear', parentName: '', level: 1 },
  { name: 'Female Swimwear or Underwear', parentName: 'Swimwear or Underwear', level: 2 },
  { name: 'Male Swimwear or Underwear', parentName: 'Swimwear or Underwear', level: 2 },
  { name: 'Violence', parentName: '', level: 1 },
  { name: 'Weapons', parentName: 'Violence', level: 2 },
  { name: 'Graphic Violence', parentName: 'Violence', level: 2 },
  { name: 'Weapon Violence', parentName: 'Graphic Violence', level: 3 },
  { name: 'Physical Violence', parentName: 'Graphic Violence', level: 3 },
  { name: 'Self-Harm', parentName: 'Graphic Violence', level: 3 },
  { name: 'Blood & Gore', parentName: 'Graphic Violence', level: 3 },
  { name: 'Explosions and Blasts', parentName: 'Graphic Violence', level: 3 },
  { name: 'Visually Disturbing', parentName: '', level: 1 },
  { name: 'Death and Emaciation', parentName: 'Visually Disturbing', level: 2 },
  { name: 'Emaciated Bodies', parentName: 'Death and Emaciation', level: 3 },
  { name: 'Corpses', parentName: 'Death and Emaciation', level: 3 },
  { name: 'Crashes', parentName: 'Visually Disturbing', level: 2 },
  { name: 'Air Crash', parentName: 'Crashes', level: 3 },
  { name: 'Drugs & Tobacco', parentName: '', level: 1 },
  { name: 'Products', parentName: 'Drugs & Tobacco', level: 2 },
  { name: 'Pills', parentName: 'Products', level: 3 },
  { name: 'Drugs & Tobacco Paraphernalia & Use', parentName: 'Drugs & Tobacco', level: 2 },
  { name: 'Smoking', parentName: 'Drugs & Tobacco Paraphernalia & Use', level: 3 },
  { name: 'Alcohol', parentName: '', level: 1 },
  { name: 'Alcohol Use', parentName: 'Alcohol', level: 2 },
  { name: 'Drinking', parentName: 'Alcohol Use', level: 3 },
  { name: 'Alcoholic Beverages', parentName: 'Alcohol', level: 2 },
  { name: 'Rude Gestures', parentName: '', level: 1 },
  { name: 'Middle Finger', parentName: 'Rude Gestures', level: 2 },
  { name: 'Gambling', parentName: '', level: 1 },
  { name: 'Hate Symbols', parentName: '', level: 1 },
  { name: 'Nazi Party', parentName: 'Hate Symbols', level: 2 },
  { name: 'White Supremacy', parentName: 'Hate Symbols', level: 2 },
  { name: 'Extremist', parentName: 'Hate Symbols', level: 2 },
];

/**
 * Spellings from AWS's pre-release v7 migration guide and sample responses that differ from the released
 * names (beyond letter case, which lookups ignore anyway). Older clients and articles still use them.
 */
export const PRE_RELEASE_SPELLINGS: Readonly<Record<string, string>> = {
  'Exposed Female Nipples': 'Exposed Female Nipple',
  'Exposed Buttocks': 'Exposed Buttocks or Anus',
  'Drug & Tobacco Paraphernalia & Use': 'Drugs & Tobacco Paraphernalia & Use',
};

/**
 * Model 6.1 top-level categories -> the model-7 categories they became. 'Suggestive' split in two.
 * Note 'Explicit Nudity' was an L1 in 6.1 and is an L2 (under 'Explicit') in 7: lookups try model 7 first.
 */
export const MODEL_6_L1_TO_7: Readonly<Record<string, readonly string[]>> = {
  'Explicit Nudity': ['Explicit'],
  'Suggestive': ['Non-Explicit Nudity of Intimate parts and Kissing', 'Swimwear or Underwear'],
  'Violence': ['Violence'],
  'Visually Disturbing': ['Visually Disturbing'],
  'Rude Gestures': ['Rude Gestures'],
  'Drugs': ['Drugs & Tobacco'],
  'Tobacco': ['Drugs & Tobacco'],
  'Alcohol': ['Alcohol'],
  'Gambling': ['Gambling'],
  'Hate Symbols': ['Hate Symbols'],
};

/**
 * Model 6.1 second-level labels -> the most specific model-7 labels AWS maps them onto (an L3 where the
 * guide names one, else the L2 or L1). 'Illustrated Explicit Nudity' became content types in 7; its
 * nearest labels are kept. 'Hanging' follows AWS's helper onto 'Corpses'. `parent` is the 6.1 category.
 */
export const MODEL_6_L2_TO_7: Readonly<Record<string, { readonly parent: string; readonly v7: readonly string[] }>> = {
  'Nudity': { parent: 'Explicit Nudity', v7: ['Exposed Female Nipple', 'Exposed Buttocks or Anus'] },
  'Graphic Male Nudity': { parent: 'Explicit Nudity', v7: ['Exposed Male Genitalia'] },
  'Graphic Female Nudity': { parent: 'Explicit Nudity', v7: ['Exposed Female Genitalia'] },
  'Sexual Activity': { parent: 'Explicit Nudity', v7: ['Explicit Sexual Activity'] },
  'Illustrated Explicit Nudity': { parent: 'Explicit Nudity', v7: ['Explicit Nudity', 'Explicit Sexual Activity'] },
  'Adult Toys': { parent: 'Explicit Nudity', v7: ['Sex Toys'] },
  'Female Swimwear Or Underwear': { parent: 'Suggestive', v7: ['Female Swimwear or Underwear'] },
  'Male Swimwear Or Underwear': { parent: 'Suggestive', v7: ['Male Swimwear or Underwear'] },
  'Partial Nudity': { parent: 'Suggestive', v7: ['Implied Nudity'] },
  'Barechested Male': { parent: 'Suggestive', v7: ['Exposed Male Nipple'] },
  'Revealing Clothes': { parent: 'Suggestive', v7: ['Non-Explicit Nudity'] },
  'Sexual Situations': { parent: 'Suggestive', v7: ['Kissing on the Lips'] },
  'Graphic Violence Or Gore': { parent: 'Violence', v7: ['Blood & Gore'] },
  'Physical Violence': { parent: 'Violence', v7: ['Physical Violence'] },
  'Weapon Violence': { parent: 'Violence', v7: ['Weapon Violence'] },
  'Weapons': { parent: 'Violence', v7: ['Weapons'] },
  'Self Injury': { parent: 'Violence', v7: ['Self-Harm'] },
  'Emaciated Bodies': { parent: 'Visually Disturbing', v7: ['Emaciated Bodies'] },
  'Corpses': { parent: 'Visually Disturbing', v7: ['Corpses'] },
  'Hanging': { parent: 'Visually Disturbing', v7: ['Corpses'] },
  'Air Crash': { parent: 'Visually Disturbing', v7: ['Air Crash'] },
  'Explosions And Blasts': { parent: 'Visually Disturbing', v7: ['Explosions and Blasts'] },
  'Middle Finger': { parent: 'Rude Gestures', v7: ['Middle Finger'] },
  'Drug Products': { parent: 'Drugs', v7: ['Products'] },
  'Drug Use': { parent: 'Drugs', v7: ['Drugs & Tobacco Paraphernalia & Use'] },
  'Pills': { parent: 'Drugs', v7: ['Pills'] },
  'Drug Paraphernalia': { parent: 'Drugs', v7: ['Drugs & Tobacco Paraphernalia & Use'] },
  'Tobacco Products': { parent: 'Tobacco', v7: ['Products'] },
  'Smoking': { parent: 'Tobacco', v7: ['Smoking'] },
  'Drinking': { parent: 'Alcohol', v7: ['Drinking'] },
  'Alcoholic Beverages': { parent: 'Alcohol', v7: ['Alcoholic Beverages'] },
  'Gambling': { parent: 'Gambling', v7: ['Gambling'] },
  'Nazi Party': { parent: 'Hate Symbols', v7: ['Nazi Party'] },
  'White Supremacy': { parent: 'Hate Symbols', v7: ['White Supremacy'] },
  'Extremist': { parent: 'Hate Symbols', v7: ['Extremist'] },
};
