/**
 * The `Moderation Appeal Request` schema (schemas/moderation-appeal.v1.json) and the parser the appeal
 * intake uses (functions/lib/appeal-request.ts) agree: what one accepts the other accepts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { APPEAL_REQUEST_SCHEMA_FILE, parseAppealRequest } from '../../functions/lib/appeal-request.ts';

const schema = JSON.parse(readFileSync(new URL(`../../${APPEAL_REQUEST_SCHEMA_FILE}`, import.meta.url), 'utf8'));
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
const JOB = '3f2a9c1b'.padEnd(40, '0');

const valid = [
  { schemaVersion: '1', jobId: JOB, message: 'It is a painting in a museum' },
  { schemaVersion: '1', jobId: JOB, message: 'x'.repeat(1000), requestId: 'platform-request-42' },
];
const invalid = [
  {},
  { schemaVersion: '1', jobId: JOB },
  { schemaVersion: '1', message: 'x' },
  { schemaVersion: '2', jobId: JOB, message: 'x' },
  { schemaVersion: '1', jobId: JOB.toUpperCase(), message: 'x' },
  { schemaVersion: '1', jobId: JOB, message: '' },
  { schemaVersion: '1', jobId: JOB, message: '   ' },
  { schemaVersion: '1', jobId: JOB, message: 'x'.repeat(1001) },
  { schemaVersion: '1', jobId: JOB, message: 'x', requestId: '' },
  { schemaVersion: '1', jobId: JOB, message: 'x', extra: true },
  ['a list'],
];

describe('Moderation Appeal Request v1', () => {
  it.each(valid.map((v) => [JSON.stringify(v).slice(0, 60), v]))('accepted by both: %s', (_name, request) => {
    expect(validate(request), JSON.stringify(validate.errors)).toBe(true);
    expect(parseAppealRequest(JSON.stringify(request))).toEqual(request);
  });

  it.each(invalid.map((v) => [JSON.stringify(v).slice(0, 60), v]))('refused by both: %s', (_name, request) => {
    expect(validate(request)).toBe(false);
    expect(() => parseAppealRequest(JSON.stringify(request))).toThrow(expect.objectContaining({ name: 'MalformedMessage' }));
  });
});
