/**
 * Label tags (functions/lib/tags.ts) and the policy's `objectTags` that asks for them
 * (functions/lib/analysis-policy.ts): which labels become tags, what S3 accepts in a key, the room
 * left in S3's ten, and what a person's decision keeps.
 */
import { describe, expect, it } from 'vitest';
import { LABEL_TAG_PREFIX, labelTags, MAX_TAGS, withDecisionTags } from '../../functions/lib/tags.ts';
import { compilePolicy, parsePolicy } from '../../functions/lib/policy.ts';
import { PolicyError } from '../../functions/lib/errors.ts';

const BASE = { name: 'tags', rules: { Explicit: { reject: 80 } } };
const setting = (labels: number, minConfidence = 80) => ({ labels, minConfidence });
const found = (...pairs: [string, number][]) => pairs.map(([name, confidence]) => ({ name, confidence }));
/** The S3 tag grammar (letters and digits of any script, spaces, + - = . _ : / @), 128 characters a key. */
const S3_TAG_KEY = /^[\p{L}\p{N} +\-=._:/@]{1,128}$/u;

describe('labelTags', () => {
  it('takes the most confident labels at or above the confidence, at most as many as asked, confidence rounded', () => {
    expect(labelTags(setting(2), found(['Road', 80], ['Car', 97.5], ['Tree', 79.9], ['Sky', 91.2]))).toEqual([
      { Key: 'moderation-label:Car', Value: '98' },
      { Key: 'moderation-label:Sky', Value: '91' },
    ]);
    expect(labelTags(setting(5), found(['Road', 80], ['Tree', 79.9]))).toEqual([{ Key: 'moderation-label:Road', Value: '80' }]);
  });

  it('nothing without a setting, with 0 labels asked, or without labels', () => {
    expect(labelTags(undefined, found(['Car', 99]))).toEqual([]);
    expect(labelTags(setting(0), found(['Car', 99]))).toEqual([]);
    expect(labelTags(setting(3), undefined)).toEqual([]);
  });

  it('keeps only what S3 accepts in a key, any script; leaves out a name with nothing left and a second label with the same key', () => {
    const tags = labelTags(
      setting(8, 0),
      found(["Jack-o'-Lantern", 99], ['Crème Brûlée', 98], ['自転車', 97], ['(!)', 96], ['Jack-o-Lantern', 95], ['Tab\tand\nnewline', 94], ['x'.repeat(300), 93]),
    );
    expect(tags.map((tag) => tag.Key)).toEqual([
      'moderation-label:Jack-o-Lantern',
      'moderation-label:Crème Brûlée',
      'moderation-label:自転車',
      'moderation-label:Tabandnewline',
      `moderation-label:${'x'.repeat(128 - LABEL_TAG_PREFIX.length)}`,
    ]);
    for (const tag of tags) expect(tag.Key).toMatch(S3_TAG_KEY);
  });
});

describe('withDecisionTags with label tags', () => {
  const labels = [
    { Key: 'moderation-label:Car', Value: '98' },
    { Key: 'moderation-label:Road', Value: '88' },
  ];

  it('writes them after the status and job tags and the uploader’s own', () => {
    const { tags, dropped } = withDecisionTags([{ Key: 'team', Value: 'a' }], 'APPROVED', 'j', labels);
    expect(tags.map((tag) => tag.Key)).toEqual(['team', 'moderation-status', 'moderation-job', 'moderation-label:Car', 'moderation-label:Road']);
    expect(dropped).toEqual([]);
  });

  it('replaces the object’s label tags when given (none: []), keeps them when not (a person’s decision)', () => {
    const existing = [{ Key: 'moderation-status', Value: 'REVIEW' }, { Key: 'moderation-label:Old', Value: '90' }, { Key: 'team', Value: 'a' }];
    expect(withDecisionTags(existing, 'APPROVED', 'j', labels).tags.filter((t) => t.Key.startsWith(LABEL_TAG_PREFIX))).toEqual(labels);
    expect(withDecisionTags(existing, 'APPROVED', 'j', []).tags.filter((t) => t.Key.startsWith(LABEL_TAG_PREFIX))).toEqual([]);
    const human = withDecisionTags(existing, 'REJECTED', 'j').tags;
    expect(human).toContainEqual({ Key: 'moderation-label:Old', Value: '90' });
    expect(human).toContainEqual({ Key: 'moderation-status', Value: 'REJECTED' });
  });

  it('fills only the room left and names what it left out; never more than ten', () => {
    for (let own = 0; own <= 10; own += 1) {
      const existing = Array.from({ length: own }, (_, i) => ({ Key: `own-${i}`, Value: '' }));
      const many = Array.from({ length: 8 }, (_, i) => ({ Key: `moderation-label:L${i}`, Value: '90' }));
      const { tags, dropped } = withDecisionTags(existing, 'APPROVED', 'j', many);
      expect(tags.length).toBeLessThanOrEqual(MAX_TAGS);
      expect(tags).toContainEqual({ Key: 'moderation-status', Value: 'APPROVED' });
      const written = tags.filter((t) => t.Key.startsWith(LABEL_TAG_PREFIX)).length;
      expect(written).toBe(Math.max(0, Math.min(8, MAX_TAGS - 2 - own)));
      expect(dropped.filter((key) => key.startsWith(LABEL_TAG_PREFIX))).toHaveLength(8 - written);
    }
  });
});

describe('objectTags in a policy', () => {
  it('needs DetectLabels, and is not part of the version (label tags decide nothing)', () => {
    const plain = compilePolicy(BASE);
    const tagged = compilePolicy({ ...BASE, objectTags: { labels: 3 } });
    expect(plain.analysis.needs.labels).toBe(false);
    expect(tagged.analysis.needs.labels).toBe(true);
    expect(tagged.analysis.objectTags).toEqual({ labels: 3, minConfidence: 80 });
    // Changing them keeps the version: repeats go on reusing decisions, the history one version.
    expect(tagged.version).toBe(plain.version);
    expect(compilePolicy({ ...BASE, objectTags: { labels: 3, minConfidence: 90 } }).version).toBe(tagged.version);
    // labels: 0 is no label tags: the same policy as without the field.
    const none = compilePolicy({ ...BASE, objectTags: { labels: 0 } });
    expect(none.version).toBe(plain.version);
    expect(none.analysis.objectTags).toBeUndefined();
  });

  it('refuses what S3 cannot hold or is misspelt, naming the field and the value', () => {
    const problems = (objectTags: unknown) => {
      try {
        compilePolicy({ ...BASE, objectTags });
      } catch (error) {
        expect(error).toBeInstanceOf(PolicyError);
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(problems({ labels: 9 })).toContain('objectTags.labels: must be a whole number from 0 to 8');
    expect(problems({ labels: 2.5 })).toContain('got 2.5');
    expect(problems({ labels: 3, minConfidence: 101 })).toContain('objectTags.minConfidence: must be a number from 50 to 100 (DetectLabels is asked for labels at 50 or more), got 101');
    // Below what DetectLabels is asked for, the setting could not mean what it says.
    expect(problems({ labels: 3, minConfidence: 30 })).toContain('got 30');
    expect(problems({ label: 3 })).toContain('objectTags: unknown field "label" (did you mean "labels"?)');
    expect(problems(3)).toContain('objectTags: must be a mapping');
  });

  it('reads from YAML as the docs write it', () => {
    const policy = parsePolicy('name: t\nrules: {}\nobjectTags: { labels: 2, minConfidence: 90 }\n');
    expect(policy.analysis.objectTags).toEqual({ labels: 2, minConfidence: 90 });
  });
});
