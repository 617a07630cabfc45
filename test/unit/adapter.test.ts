/**
 * Custom moderation adapters (issue 11, section 4): the policy's `projectVersion` is validated for
 * shape (the error names the field and the value), changes the policy's version (another model is
 * another decision), and the adapter outcome of a detection says when Rekognition answered with the
 * base model (an expired adapter). The local detector echoes a well-formed ProjectVersion, refuses a
 * malformed one as Rekognition does, and leaves it out for an adapter listed as expired.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { adapterOutcome, projectVersionProblem } from '../../functions/lib/adapter.ts';
import { parsePolicy, PolicyError } from '../../functions/lib/policy.ts';
import { adapterAnswer, expiredAdapters, EXPIRED_ADAPTERS_ENV } from '../../local/detector/adapters.ts';

const ADAPTER = 'arn:aws:rekognition:eu-west-1:123456789012:project/dating/version/dating.2026-03-01T09.00.00/1772355600000';
const RULES = 'rules: { Explicit: { reject: 80, review: 50 } }';

function policyError(text: string): PolicyError {
  try {
    parsePolicy(text, 'policy.yaml');
  } catch (err) {
    return err as PolicyError;
  }
  throw new Error('the policy validated');
}

describe('the policy names an adapter', () => {
  it('compiles it, and it changes the version (leaving it out keeps the version a policy had before adapters)', () => {
    const without = parsePolicy(RULES);
    const withAdapter = parsePolicy(`${RULES}\nprojectVersion: ${ADAPTER}`);
    expect(without.projectVersion).toBeUndefined();
    expect(withAdapter.projectVersion).toBe(ADAPTER);
    expect(withAdapter.version).not.toBe(without.version);
    expect(parsePolicy(`${RULES}\nprojectVersion: ${ADAPTER.replace('/1772355600000', '/1772355600001')}`).version).not.toBe(withAdapter.version);
    // JSON, as the construct passes a policy to the functions.
    expect(parsePolicy(JSON.stringify({ rules: { Explicit: { reject: 80 } }, projectVersion: ADAPTER })).projectVersion).toBe(ADAPTER);
  });

  it.each([
    ['not an ARN', 'my-adapter', /projectVersion: must be the ARN of a Rekognition custom moderation adapter \(arn:<partition>:rekognition:<region>:<account>:project\/<project>\/version\/<version>\/<number>\), got "my-adapter"$/],
    ['a number', '42', /projectVersion: must be the ARN .*, got 42$/],
    ['a project, not one of its versions', 'arn:aws:rekognition:eu-west-1:123456789012:project/dating/1772355600000', /got "arn:aws:rekognition:eu-west-1:123456789012:project\/dating\/1772355600000" \(that is a project ARN: name one of its versions\)$/],
    ['another service', 'arn:aws:s3:eu-west-1:123456789012:project/dating/version/v/1', /projectVersion: must be the ARN/],
    ['an account that is not 12 digits', 'arn:aws:rekognition:eu-west-1:1234:project/dating/version/v/1', /projectVersion: must be the ARN/],
  ])('refuses %s, naming the field and the value', (_what, value, message) => {
    const error = policyError(`${RULES}\nprojectVersion: ${value}`);
    expect(error).toBeInstanceOf(PolicyError);
    expect(error.message.startsWith('policy.yaml: projectVersion: ')).toBe(true);
    expect(error.message).toMatch(message);
  });

  it('a misspelt field is suggested', () => {
    expect(policyError(`${RULES}\nprojectVerion: ${ADAPTER}`).message).toMatch(/unknown field "projectVerion" \(did you mean "projectVersion"\?\)/);
  });

  it('projectVersionProblem accepts the documented shape', () => {
    expect(projectVersionProblem(ADAPTER)).toBeUndefined();
    expect(projectVersionProblem(undefined)).toMatch(/got nothing$/);
  });
});

describe('adapterOutcome: what Rekognition answered with', () => {
  it('nothing when the policy names no adapter, or no call was made', () => {
    expect(adapterOutcome(undefined, [undefined])).toBeUndefined();
    expect(adapterOutcome(ADAPTER, [])).toBeUndefined();
  });

  it('the adapter answered every call: not expired', () => {
    expect(adapterOutcome(ADAPTER, [ADAPTER, ADAPTER])).toEqual({ requested: ADAPTER, answered: ADAPTER, expired: false });
  });

  it('a response without ProjectVersion (the base model answered), even for one frame of several: expired', () => {
    expect(adapterOutcome(ADAPTER, [undefined])).toEqual({ requested: ADAPTER, answered: null, expired: true });
    expect(adapterOutcome(ADAPTER, [ADAPTER, undefined])).toEqual({ requested: ADAPTER, answered: ADAPTER, expired: true });
  });
});

describe('the local detector and adapters', () => {
  afterEach(() => {
    delete process.env[EXPIRED_ADAPTERS_ENV];
  });

  it('echoes a well-formed ProjectVersion, answers without one when none was asked for', () => {
    expect(adapterAnswer(ADAPTER, new Set())).toEqual({ ProjectVersion: ADAPTER });
    expect(adapterAnswer(undefined, new Set())).toEqual({});
  });

  it('an adapter listed as expired (option or environment) is answered by the base model: no ProjectVersion', () => {
    expect(adapterAnswer(ADAPTER, expiredAdapters([ADAPTER]))).toEqual({});
    process.env[EXPIRED_ADAPTERS_ENV] = ` other , ${ADAPTER} `;
    expect(expiredAdapters()).toEqual(new Set(['other', ADAPTER]));
    expect(adapterAnswer(ADAPTER, expiredAdapters())).toEqual({});
  });

  it('refuses a malformed ProjectVersion as Rekognition does', () => {
    expect(() => adapterAnswer('my-adapter-please', new Set())).toThrow(expect.objectContaining({ name: 'ValidationException', statusCode: 400 }));
    expect(() => adapterAnswer(7, new Set())).toThrow(expect.objectContaining({ name: 'SerializationException' }));
  });
});
