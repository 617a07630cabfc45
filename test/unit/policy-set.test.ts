/**
 * Policy sets (functions/lib/policy-set.ts): parsing and validation (every problem names the field
 * and the value, with "did you mean"), routing by key prefix and uploader glob, the stored form and
 * its size limit; and the live policy's cache (functions/lib/live-policy.ts): at most maxAge old, the
 * last good copy when the parameter is unreadable or invalid, fail closed without one.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFINITION_FILE } from '../../functions/lib/pipeline-settings.ts';
import { presetPolicy } from '../../functions/lib/policy.ts';
import {
  compilePolicySet,
  defaultPolicySetting,
  parsePolicySet,
  PolicySetError,
  policySetParameterValue,
  resolvePolicySet,
  routePolicy,
} from '../../functions/lib/policy-set.ts';
import { LivePolicy, PolicyUnavailableError, type StoredPolicy } from '../../functions/lib/live-policy.ts';

const TENANTS = `
policies:
  kids: strict
  photos:
    rules:
      Explicit: { reject: 80, review: 50 }
      Swimwear or Underwear: allow
routes:
  - { prefix: uploads/kids/, policy: kids }
  - { uploader: "dating-*", policy: permissive }
default: photos
`;

function problemsOf(text: string): string[] {
  try {
    parsePolicySet(text, 'tenants.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(PolicySetError);
    expect((err as Error).name).toMatch(/^Policy(Set)?Error$/);
    expect((err as Error).message).toMatch(/^tenants\.yaml: /);
    return (err as PolicySetError).issues;
  }
  throw new Error('expected the policy set to be refused');
}

describe('parsing a policy set', () => {
  it('compiles named policies (a preset by name, a document), routes and the default; policies are named by their key', () => {
    const set = parsePolicySet(TENANTS);
    expect(set.kind).toBe('set');
    expect(Object.keys(set.policies).sort()).toEqual(['kids', 'permissive', 'photos']);
    expect(set.policies.kids).toMatchObject({ name: 'kids', version: presetPolicy('strict').version });
    expect(set.policies.permissive).toMatchObject({ name: 'permissive', version: presetPolicy('permissive').version });
    expect(set.policies.photos!.rules).toHaveProperty('Explicit');
    expect(set.routes).toEqual([
      { prefix: 'uploads/kids/', policy: 'kids' },
      { uploader: 'dating-*', policy: 'permissive' },
    ]);
    expect(set.defaultPolicy).toBe('photos');
    expect(set.version).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(set.warnings).toEqual([]);
  });

  it('the version follows what routes where, not how it is written', () => {
    const json = JSON.stringify({
      default: 'photos',
      routes: [{ policy: 'kids', prefix: 'uploads/kids/' }, { policy: 'permissive', uploader: 'dating-*' }],
      policies: { photos: { rules: { 'Swimwear or Underwear': 'allow', Explicit: { review: 50, reject: 80 } } }, kids: 'strict' },
    });
    expect(parsePolicySet(json).version).toBe(parsePolicySet(TENANTS).version);
    expect(parsePolicySet(TENANTS.replace('uploads/kids/', 'uploads/children/')).version).not.toBe(parsePolicySet(TENANTS).version);
  });

  it('a plain policy or a preset name is a set with one policy, its default, and no routes', () => {
    const plain = parsePolicySet('name: photo-sharing\nrules:\n  Explicit: { reject: 80 }\n');
    expect(plain).toMatchObject({ kind: 'policy', defaultPolicy: 'photo-sharing', routes: [] });
    expect(plain.version).toBe(plain.policies['photo-sharing']!.version);
    const preset = parsePolicySet('strict');
    expect(preset).toMatchObject({ kind: 'policy', defaultPolicy: 'strict', document: 'strict' });
    expect(policySetParameterValue(preset)).toBe('strict');
    expect(resolvePolicySet('Permissive').defaultPolicy).toBe('permissive');
  });

  it('names the field and the value of every problem, with "did you mean"', () => {
    const issues = problemsOf(`
polices: {}
policies:
  kids: stirct
  photos: { rules: { Explicit: { rejcet: 80 } } }
  "bad name": standard
routes:
  - { prefx: uploads/kids/, policy: kids }
  - { prefix: uploads/x/, uploader: "a*", policy: kids }
  - { uploader: "team/a", policy: kids }
  - { prefix: uploads/y/, policy: kdis }
  - { prefix: "", policy: kids }
default: photoss
`);
    expect(issues).toEqual(
      expect.arrayContaining([
        'unknown field "polices" (did you mean "policies"?)',
        'policies.kids: unknown preset "stirct" (did you mean "strict"?; or write the policy document here)',
        'policies.photos.rules."Explicit": unknown field "rejcet" (did you mean "reject"?)',
        expect.stringMatching(/^policies\."bad name": a policy name is letters, digits/),
        'routes[0]: unknown field "prefx" (did you mean "prefix"?)',
        expect.stringMatching(/^routes\[1\]: must have exactly one of prefix .* and uploader/),
        expect.stringMatching(/^routes\[2\]\.uploader: an uploader id is one key segment and has no "\/", got "team\/a"/),
        'routes[3].policy: unknown policy "kdis" (did you mean "kids"?)',
        'routes[4].prefix: must be a non-empty key prefix such as "uploads/kids/", got ""',
        'default: unknown policy "photoss" (did you mean "photos"?)',
      ]),
    );
  });

  it('requires a default, and a policy a route names', () => {
    expect(problemsOf('routes:\n  - { prefix: uploads/kids/ }\n')).toEqual([
      'routes[0].policy: required (the name of the policy this route picks)',
      expect.stringMatching(/^default: required/),
    ]);
  });

  it('a typo of "policies" in a document without rules is read as a set, so the hint is about sets', () => {
    expect(problemsOf('policis: { kids: strict }\ndefault: kids\n')).toEqual(
      expect.arrayContaining(['unknown field "policis" (did you mean "policies"?)']),
    );
  });

  it('a plain policy keeps the plain policy\'s own messages', () => {
    expect(() => parsePolicySet('rules:\n  Violense: { reject: 80 }\n', 'p.yaml')).toThrow(/rules\."Violense": unknown category "Violense" \(did you mean "Violence"\?\)/);
  });

  it('warns about a policy nothing uses, a route that can never match, and a name the key overrides', () => {
    const set = parsePolicySet(`
policies:
  kids: { name: children, rules: { Explicit: { reject: 50 } } }
  unused: standard
routes:
  - { prefix: uploads/kids/, policy: kids }
  - { prefix: uploads/kids/, policy: strict }
default: standard
`);
    expect(set.warnings).toEqual([
      'policies.kids.name: "children" is not used; the policy is named by its key, "kids"',
      'routes[1]: never matches, routes[0] has the same prefix "uploads/kids/" and comes first',
      'policies.unused: no route and not the default: it is never used',
    ]);
    expect(set.policies.kids!.name).toBe('kids');
  });

  it('refuses what does not fit a standard parameter (4 KB), naming the size and the way out', () => {
    const rules = Object.fromEntries(
      ['Explicit', 'Violence', 'Hate Symbols', 'Gambling', 'Alcohol', 'Rude Gestures', 'Visually Disturbing', 'Drugs & Tobacco'].map((c) => [c, { reject: 90, review: 60 }]),
    );
    const policies = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`tenant-${i}`, { rules }]));
    const set = compilePolicySet({ policies, routes: Object.keys(policies).map((name) => ({ prefix: `uploads/${name}/`, policy: name })), default: 'standard' });
    expect(() => policySetParameterValue(set, 'standard')).toThrow(/is \d{4,} bytes as compact JSON; a standard SSM parameter holds at most 4096: .*policyParameterTier: "advanced"/);
    expect(policySetParameterValue(set, 'advanced').length).toBeLessThanOrEqual(8192);
  });

  it("the fallback setting (MODERATION_POLICY) is the default policy: a preset's name, or its document named as in the set", () => {
    expect(defaultPolicySetting(parsePolicySet('strict'))).toBe('strict');
    expect(defaultPolicySetting(parsePolicySet('policies: { kids: strict }\nroutes: [{ prefix: k/, policy: kids }]\ndefault: standard\n'))).toBe('standard');
    const named = JSON.parse(defaultPolicySetting(parsePolicySet(TENANTS)));
    expect(named).toMatchObject({ name: 'photos', rules: { Explicit: { reject: 80, review: 50 } } });
  });
});

describe('routing', () => {
  const set = parsePolicySet(TENANTS);

  it('kids/ and the default route to different policies', () => {
    expect(routePolicy(set, { key: 'uploads/kids/ann/1.jpg', uploader: 'kids' })).toMatchObject({ policy: { name: 'kids' }, route: 0, via: 'key prefix "uploads/kids/"' });
    expect(routePolicy(set, { key: 'uploads/bob/1.jpg', uploader: 'bob' })).toMatchObject({ policy: { name: 'photos' }, via: 'default' });
    expect(routePolicy(set, { key: 'uploads/bob/1.jpg', uploader: 'bob' }).route).toBeUndefined();
  });

  it('uploader globs match the whole id (* any run, ? one character; nothing else is special)', () => {
    expect(routePolicy(set, { key: 'uploads/dating-eu/1.jpg', uploader: 'dating-eu' }).policy.name).toBe('permissive');
    expect(routePolicy(set, { key: 'uploads/x/1.jpg', uploader: 'old-dating-eu' }).policy.name).toBe('photos');
    expect(routePolicy(set, { key: 'uploads/x/1.jpg' }).policy.name).toBe('photos');
    const dots = parsePolicySet('routes: [{ uploader: "a.b?", policy: strict }]\ndefault: standard\n');
    expect(routePolicy(dots, { key: 'k', uploader: 'a.bc' }).policy.name).toBe('strict');
    expect(routePolicy(dots, { key: 'k', uploader: 'axbc' }).policy.name).toBe('standard');
  });

  it('the first matching route wins', () => {
    const ordered = parsePolicySet('routes:\n  - { uploader: "kid*", policy: permissive }\n  - { prefix: uploads/kids/, policy: strict }\ndefault: standard\n');
    expect(routePolicy(ordered, { key: 'uploads/kids/1.jpg', uploader: 'kids' }).policy.name).toBe('permissive');
  });
});

describe('the live policy cache', () => {
  function harness(initial: StoredPolicy | Error) {
    let now = 0;
    let answer: StoredPolicy | Error = initial;
    let reads = 0;
    const fallbacks: string[] = [];
    const live = new LivePolicy({
      read: async () => {
        reads += 1;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      parse: (value) => parsePolicySet(value),
      maxAgeMs: 60_000,
      now: () => now,
      onFallback: (reason) => fallbacks.push(reason),
    });
    return {
      live,
      fallbacks,
      reads: () => reads,
      set: (next: StoredPolicy | Error) => (answer = next),
      advance: (ms: number) => (now += ms),
    };
  }

  it('reads at most once per maxAge, and a change is in force after it', async () => {
    const h = harness({ value: 'standard', version: 1 });
    expect((await h.live.current()).set.defaultPolicy).toBe('standard');
    h.set({ value: 'strict', version: 2 });
    h.advance(59_999);
    expect((await h.live.current()).set.defaultPolicy).toBe('standard');
    expect(h.reads()).toBe(1);
    h.advance(1);
    expect(await h.live.current()).toMatchObject({ parameterVersion: 2, set: { defaultPolicy: 'strict' } });
    expect(h.reads()).toBe(2);
  });

  it('one read for many waiting callers', async () => {
    const h = harness({ value: 'standard', version: 1 });
    await Promise.all(Array.from({ length: 10 }, () => h.live.current()));
    expect(h.reads()).toBe(1);
  });

  it('keeps the last good copy when the parameter is unreachable or invalid', async () => {
    const h = harness({ value: 'strict', version: 1 });
    await h.live.current();
    h.set(Object.assign(new Error('connect ECONNREFUSED'), { name: 'TimeoutError' }));
    h.advance(60_000);
    expect((await h.live.current()).set.defaultPolicy).toBe('strict');
    h.set({ value: 'rules: { Violense: { reject: 1 } }', version: 2 });
    h.advance(60_000);
    expect(await h.live.current()).toMatchObject({ parameterVersion: 1, set: { defaultPolicy: 'strict' } });
    expect(h.fallbacks).toEqual(['unreadable', 'invalid']);
  });

  it('fails closed (PolicyUnavailable, retried by the state machine) when there never was a good copy', async () => {
    const unreachable = harness(new Error('connect ECONNREFUSED 127.0.0.1:1'));
    const err = await unreachable.live.current().catch((e: Error) => e);
    expect(err).toBeInstanceOf(PolicyUnavailableError);
    expect(err).toMatchObject({ name: 'PolicyUnavailable', message: expect.stringMatching(/cannot be read: connect ECONNREFUSED/) });
    const invalid = harness({ value: 'default: nothing\n', version: 7 });
    await expect(invalid.live.current()).rejects.toMatchObject({ name: 'PolicyUnavailable', message: expect.stringMatching(/version 7\) holds no valid policy/) });
    // The state machine retries it on Detect (with backoff), like ServiceUnavailable; then FAILED + DLQ.
    const detect = JSON.parse(readFileSync(DEFINITION_FILE, 'utf8')).States.Detect as { Retry: { ErrorEquals: string[] }[] };
    expect(detect.Retry.some((r) => r.ErrorEquals.includes('PolicyUnavailable') && r.ErrorEquals.includes('ServiceUnavailable'))).toBe(true);
    // It does not remember the failure: the next call reads again.
    invalid.set({ value: 'standard', version: 8 });
    expect((await invalid.live.current()).parameterVersion).toBe(8);
  });
});
