/**
 * The analysis part of a policy (functions/lib/analysis-policy.ts): labels, text and child-safety
 * rules, their validation ("did you mean"), versioning and what they need; the verdict they add
 * (functions/lib/analysis-verdict.ts), with the child-safety rule on both sides of the age boundary;
 * the bounded summary (functions/lib/analysis.ts).
 */
import { describe, expect, it } from 'vitest';
import { parsePolicy, presetPolicy, PolicyError } from '../../functions/lib/policy.ts';
import { analysesNotEnabled, matchText, parseAnalysisList, refuseAnalysesNotEnabled } from '../../functions/lib/analysis-policy.ts';
import { applyAnalysisRules } from '../../functions/lib/analysis-verdict.ts';
import { ANALYSIS_LIMITS, indexedLabelNames, summariseFaces, summariseLabels, summariseText } from '../../functions/lib/analysis.ts';
import { analysisPlan, AnalysisNotEnabledError } from '../../functions/analysis.ts';
import type { ModerationLabel } from '../../functions/lib/types.ts';

const BASE = 'rules:\n  Explicit: { reject: 80, review: 50 }\n';
const problems = (text: string): string[] => {
  try {
    parsePolicy(text);
  } catch (err) {
    if (err instanceof PolicyError) return err.issues;
    throw err;
  }
  throw new Error('the policy was accepted');
};

describe('compiling labels, text and faces', () => {
  it('derives what the policy needs from its rules', () => {
    expect(parsePolicy(BASE).analysis.needs).toEqual({ labels: false, text: false, faces: 'never' });
    const policy = parsePolicy(`${BASE}labels: { Weapon: { review: 80, reject: 95 } }\ntext: { presets: { urls: review } }\nfaces: { childSafety: { confidence: 40 } }\n`);
    expect(policy.analysis.needs).toEqual({ labels: true, text: true, faces: 'conditional' });
    expect(policy.minConfidence).toBe(40);
    // allow-only label rules need nothing; `analysis` runs one on every image
    expect(parsePolicy(`${BASE}labels: { Toy: allow }\n`).analysis.needs.labels).toBe(false);
    expect(parsePolicy(`${BASE}analysis: { faces: true }\nfaces: { childSafety: true }\n`).analysis.needs.faces).toBe('always');
  });

  it('every preset has the child-safety rule (DetectFaces only with nudity or swimwear)', () => {
    for (const name of ['strict', 'standard', 'permissive']) {
      expect(presetPolicy(name).analysis).toMatchObject({ childSafety: { confidence: expect.any(Number) }, needs: { labels: false, text: false, faces: 'conditional' } });
    }
    expect(presetPolicy('standard').minConfidence).toBe(50);
  });

  it('reports every problem with the field and "did you mean"', () => {
    expect(problems(`${BASE}lables: { Weapon: { review: 80 } }\n`)).toEqual(['unknown field "lables" (did you mean "labels"?)']);
    expect(problems(`${BASE}labels: { Weapon: { rejct: 90 } }\n`)).toEqual(['labels."Weapon": unknown field "rejct" (did you mean "reject"?)']);
    expect(problems(`${BASE}labels: { Weapon: { review: 90, reject: 80 } }\n`)).toEqual(['labels."Weapon": review (90) must not be above reject (80)']);
    expect(problems(`${BASE}labels: { Weapon: { review: 120 } }\n`)).toEqual(['labels."Weapon".review: must be a number from 0 to 100, got 120']);
    expect(problems(`${BASE}text: { presets: { phone-number: review, emails: rejct } }\n`)).toEqual([
      'text.presets: unknown preset "phone-number" (did you mean "phone-numbers"?)',
      'text.presets."emails": must be "review" or "reject", got "rejct" (did you mean "reject"?)',
    ]);
    expect(problems(`${BASE}text: { word: { reject: [x] } }\n`)).toEqual(['text: unknown field "word" (did you mean "words"?)']);
    expect(problems(`${BASE}faces: { childSafty: true }\n`)).toEqual(['faces: unknown field "childSafty" (did you mean "childSafety"?)']);
  });

  it('a regular expression is compiled when the policy is, with a clear error', () => {
    expect(problems(`${BASE}text: { patterns: { review: ['t\\.me/(\\w+', 'ok'] } }\n`)).toEqual([
      'text.patterns.review[0]: not a valid regular expression "t\\\\.me/(\\\\w+": unterminated group',
    ]);
  });

  it('the version changes when the analysis rules change, not when they are reordered or absent', () => {
    const plain = parsePolicy(BASE).version;
    expect(parsePolicy(`${BASE}labels: {}\n`).version).toBe(plain);
    const a = parsePolicy(`${BASE}text: { words: { reject: [casino, poker] } }\n`).version;
    expect(a).not.toBe(plain);
    expect(parsePolicy(`${BASE}text: { words: { reject: [poker, Casino] } }\n`).version).toBe(a);
    expect(parsePolicy(`${BASE}text: { words: { review: [casino, poker] } }\n`).version).not.toBe(a);
    expect(parsePolicy(`${BASE}faces: { childSafety: { confidence: 50 } }\n`).version).not.toBe(parsePolicy(`${BASE}faces: { childSafety: { confidence: 60 } }\n`).version);
    expect(parsePolicy(`${BASE}labels: { Weapon: { review: 80 } }\n`).version).not.toBe(parsePolicy(`${BASE}labels: { Weapon: { review: 81 } }\n`).version);
  });
});

describe('text rules', () => {
  const policy = parsePolicy(`${BASE}text:\n  words: { reject: [ass, "buy followers"] }\n  patterns: { review: ['t\\.me/\\w+'] }\n  presets: { urls: review, phone-numbers: review, emails: reject }\n`);
  const match = (line: string) => matchText(policy.analysis, [{ text: line, confidence: 99 }]).map((m) => `${m.rule}:${m.subject}`);
  it('words are whole words, case-insensitive; phrases across spaces', () => {
    expect(match('first class seats')).toEqual([]);
    expect(match('kick ASS!')).toEqual(['text:word:ASS']);
    expect(match('Buy  Followers now')).toEqual(['text:word:Buy Followers']);
  });
  it('presets find URLs, phone numbers and e-mail addresses, not dates or prices', () => {
    expect(match('visit www.spam.example.com')).toEqual(['text:urls:www.spam.example.com']);
    expect(match('call +1 (555) 123-4567')).toEqual(['text:phone-numbers:+1 (555) 123-4567']);
    expect(match('mail bob@example.org')).toEqual(['text:emails:bob@example.org']);
    expect(match('2026-11-25 sale: 19.99')).toEqual([]);
    expect(match('join t.me/spamchannel')).toEqual(expect.arrayContaining(['text:pattern:t.me/spamchannel']));
  });
});

describe('the child-safety rule', () => {
  const policy = parsePolicy(`${BASE}faces: { childSafety: { confidence: 50 } }\n`);
  const swimwear: ModerationLabel[] = [{ name: 'Female Swimwear or Underwear', parentName: 'Swimwear or Underwear', level: 2, confidence: 70 }];
  const approve = { verdict: 'APPROVE' as const, flagged: [] };
  const face = (low: number) => ({ ageRange: { low, high: low + 6 } });

  it('17: REJECT "possible minor"; 18: the moderation verdict stands', () => {
    const minor = applyAnalysisRules(approve, policy, { moderationLabels: swimwear, faces: [face(25), face(17)] });
    expect(minor).toMatchObject({ verdict: 'REJECT', rule: { category: 'child-safety', action: 'reject', label: 'Female Swimwear or Underwear' } });
    expect(minor.rule?.reason).toMatch(/^possible minor: a face estimated aged 17-23/);
    expect(applyAnalysisRules(approve, policy, { moderationLabels: swimwear, faces: [face(18)] })).toMatchObject({ verdict: 'APPROVE' });
  });

  it('needs nudity or swimwear at the rule\'s confidence (a kiss is neither)', () => {
    expect(applyAnalysisRules(approve, policy, { moderationLabels: [{ ...swimwear[0]!, confidence: 49.9 }], faces: [face(5)] }).verdict).toBe('APPROVE');
    const kiss: ModerationLabel[] = [{ name: 'Kissing on the Lips', parentName: 'Non-Explicit Nudity of Intimate parts and Kissing', level: 2, confidence: 99 }];
    expect(applyAnalysisRules(approve, policy, { moderationLabels: kiss, faces: [face(5)] }).verdict).toBe('APPROVE');
    const nudity: ModerationLabel[] = [{ name: 'Bare Back', parentName: 'Non-Explicit Nudity', level: 3, confidence: 80 }];
    expect(applyAnalysisRules(approve, policy, { moderationLabels: nudity, faces: [face(12)] }).verdict).toBe('REJECT');
  });

  it('overrides a moderation REJECT with the reason, and holds (never approves) when faces are missing', () => {
    const reject = { verdict: 'REJECT' as const, rule: { category: 'Explicit', label: 'Explicit', confidence: 95, action: 'reject' as const, threshold: 80 }, flagged: [] };
    expect(applyAnalysisRules(reject, policy, { moderationLabels: [{ name: 'Explicit', parentName: '', level: 1, confidence: 95 }], faces: [face(15)] }).rule?.category).toBe('child-safety');
    const held = applyAnalysisRules(approve, policy, { moderationLabels: swimwear, missing: ['faces'], reasons: { faces: 'ThrottlingException: slow down' } });
    expect(held.verdict).toBe('BORDERLINE');
    expect(held.holdReason).toMatch(/child-safety check could not run \(DetectFaces failed: ThrottlingException: slow down\).*held for a human/);
  });
});

describe('what a deployment enables', () => {
  const labelsPolicy = parsePolicy(`${BASE}labels: { Weapon: { review: 80 } }\nfaces: { childSafety: true }\n`);
  it('lists what a policy needs and the deployment lacks; refuses with one line', () => {
    expect(analysesNotEnabled(labelsPolicy, parseAnalysisList('labels'))).toEqual(['faces']);
    expect(analysesNotEnabled(labelsPolicy, parseAnalysisList('labels,faces'))).toEqual([]);
    expect(() => refuseAnalysesNotEnabled([labelsPolicy], 'none', 'stack s')).toThrow(/needs labels \(DetectLabels.*faces \(DetectFaces.*which stack s \(analyses enabled: none\) does not enable/);
    expect(() => refuseAnalysesNotEnabled([labelsPolicy], undefined, 'old stack')).not.toThrow();
    expect(() => parseAnalysisList('labels,face')).toThrow('--analyze: unknown analysis "face" (did you mean "faces"?)');
  });
  it('the detect step plans the calls, and refuses a policy the deployment does not enable (AnalysisNotEnabled)', () => {
    const none = { analyze: parseAnalysisList('') };
    expect(analysisPlan(parsePolicy(BASE), none)).toEqual({ labels: false, text: false, faces: 'never' });
    expect(analysisPlan(presetPolicy('standard'), none)).toEqual({ labels: false, text: false, faces: 'conditional' });
    expect(analysisPlan(parsePolicy(BASE), { analyze: parseAnalysisList('labels,faces,text') })).toEqual({ labels: true, text: true, faces: 'always' });
    expect(() => analysisPlan(labelsPolicy, { analyze: none.analyze, analysisEnabled: parseAnalysisList('labels') })).toThrow(AnalysisNotEnabledError);
    expect(() => analysisPlan(parsePolicy(BASE), { analyze: parseAnalysisList('text'), analysisEnabled: parseAnalysisList('none') })).toThrow(/--analyze text/);
  });
});

describe('the bounded summary', () => {
  it('caps labels, faces and lines so the record stays small', () => {
    const many = Array.from({ length: 200 }, (_, i) => ({
      Name: `Label ${i} ${'x'.repeat(40)}`,
      Confidence: 99 - i / 10,
      Parents: Array.from({ length: 8 }, (_, p) => ({ Name: `Parent ${p} of ${i}` })),
      Categories: Array.from({ length: 6 }, (_, c) => ({ Name: `Category ${c}` })),
      Instances: Array.from({ length: 30 }, () => ({ BoundingBox: { Width: 0.123456, Height: 0.2, Left: 0.3, Top: 0.4 }, Confidence: 90 })),
    }));
    const labels = summariseLabels({ Labels: many, LabelModelVersion: '3.0' });
    expect(labels.labels).toHaveLength(ANALYSIS_LIMITS.MAX_LABELS);
    expect(labels.labelCount).toBe(200);
    expect(labels.labels![0]).toMatchObject({ instances: 30, boxes: [{ width: 0.123 }, {}, {}] });
    const faces = summariseFaces({ FaceDetails: Array.from({ length: 100 }, (_, i) => ({ AgeRange: { Low: 20 + (i % 40), High: 30 + (i % 40) }, BoundingBox: { Width: i / 100, Height: 0.1 }, Emotions: [{ Type: 'HAPPY', Confidence: 90 }, { Type: 'CALM', Confidence: 5 }, { Type: 'SAD', Confidence: 1 }] })) });
    expect(faces.faces).toHaveLength(ANALYSIS_LIMITS.MAX_FACES);
    expect(faces.faces![0]!.emotions).toHaveLength(2);
    const text = summariseText({ TextDetections: Array.from({ length: 500 }, (_, i) => ({ DetectedText: `line ${i} ${'y'.repeat(400)}`, Type: 'LINE', Confidence: 90 })) });
    expect(text.text!.lines).toHaveLength(ANALYSIS_LIMITS.MAX_LINES);
    expect(text.text!.total).toBe(500);
    const bytes = Buffer.byteLength(JSON.stringify({ ...labels, ...faces, ...text }));
    // The worst case, far below DynamoDB's 400 KB item limit.
    expect(bytes).toBeLessThan(40_000);
    expect(indexedLabelNames({ ...labels })).toHaveLength(ANALYSIS_LIMITS.MAX_INDEXED_LABELS);
  });

  it('keeps every face under 18 first, whatever its size (the child-safety rule\'s evidence)', () => {
    const faces = summariseFaces({ FaceDetails: [...Array.from({ length: 12 }, () => ({ AgeRange: { Low: 30, High: 40 }, BoundingBox: { Width: 0.5, Height: 0.5 } })), { AgeRange: { Low: 9, High: 14 }, BoundingBox: { Width: 0.01, Height: 0.01 } }] });
    expect(faces.faces![0]!.ageRange).toEqual({ low: 9, high: 14 });
    expect(faces.faceCount).toBe(13);
  });
});
