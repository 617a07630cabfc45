/** The policy's settings beside its rules: animation.maxFrames and formats.svg (validated like the rules). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_ANIMATION_MAX_FRAMES, parsePolicy, PolicyError, presetPolicy } from '../../functions/lib/policy.ts';

function issuesOf(text: string): string[] {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return (error as PolicyError).issues;
  }
  throw new Error('expected a PolicyError');
}

describe('policy settings', () => {
  it('defaults: 10 frames per animation, SVG held for review', () => {
    expect(DEFAULT_ANIMATION_MAX_FRAMES).toBe(10);
    for (const preset of ['strict', 'standard', 'permissive']) {
      expect(presetPolicy(preset)).toMatchObject({ animation: { maxFrames: 10 }, formats: { svg: 'review' } });
    }
  });

  it('reads animation.maxFrames and formats.svg', () => {
    const policy = parsePolicy('rules:\n  Explicit: { reject: 80 }\nanimation: { maxFrames: 4 }\nformats: { svg: unusable }\n');
    expect(policy.animation).toEqual({ maxFrames: 4 });
    expect(policy.formats).toEqual({ svg: 'unusable' });
    expect(parsePolicy('{"rules": {}, "formats": {"svg": "raster"}}').formats.svg).toBe('raster');
  });

  it('versions settings that change decisions, and only those', () => {
    const base = parsePolicy('rules:\n  Explicit: { reject: 80 }\n').version;
    // Writing the defaults out changes nothing (and policies written before the settings keep their version).
    expect(parsePolicy('rules:\n  Explicit: { reject: 80 }\nanimation: { maxFrames: 10 }\nformats: { svg: review }\n').version).toBe(base);
    expect(parsePolicy('rules:\n  Explicit: { reject: 80 }\nanimation: { maxFrames: 3 }\n').version).not.toBe(base);
    expect(parsePolicy('rules:\n  Explicit: { reject: 80 }\nformats: { svg: raster }\n').version).not.toBe(base);
  });

  it('names the field and the value, with did-you-mean for fields and values', () => {
    expect(issuesOf('rules: {}\nanimation: { maxFrames: 0 }')).toEqual(['animation.maxFrames: must be a whole number from 1 to 100, got 0']);
    expect(issuesOf('rules: {}\nanimation: { maxFrames: 2.5 }')).toEqual(['animation.maxFrames: must be a whole number from 1 to 100, got 2.5']);
    expect(issuesOf('rules: {}\nanimation: { maxFrames: "ten" }')).toEqual(['animation.maxFrames: must be a whole number from 1 to 100, got "ten"']);
    expect(issuesOf('rules: {}\nanimation: { maxFrames: 1000 }')).toEqual(['animation.maxFrames: must be a whole number from 1 to 100, got 1000']);
    expect(issuesOf('rules: {}\nanimation: { maxFrame: 3 }')).toEqual(['animation: unknown field "maxFrame" (did you mean "maxFrames"?)']);
    expect(issuesOf('rules: {}\nanimation: 10')).toEqual(['animation: must be a mapping with maxFrames, got 10']);
    expect(issuesOf('rules: {}\nformats: { svg: reveiw }')).toEqual(['formats.svg: must be one of "review", "unusable", "raster", got "reveiw" (did you mean "review"?)']);
    expect(issuesOf('rules: {}\nformats: { svg: block }')).toEqual(['formats.svg: must be one of "review", "unusable", "raster", got "block"']);
    expect(issuesOf('rules: {}\nformats: { svgg: raster }')).toEqual(['formats: unknown field "svgg" (did you mean "svg"?)']);
    expect(issuesOf('rules: {}\nanimaton: { maxFrames: 3 }')).toEqual(['unknown field "animaton" (did you mean "animation"?)']);
  });
});
