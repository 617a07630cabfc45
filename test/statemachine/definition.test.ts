import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import validator from 'asl-validator';
import { DEFINITION_PATH, renderDefinition, DefinitionSubstitutionError } from '../../local/workflow.ts';

const text = readFileSync(DEFINITION_PATH, 'utf8');
const definition = JSON.parse(text);

describe('statemachine/moderation.asl.json', () => {
  it('is a valid Amazon States Language definition', () => {
    const { isValid, errorsText } = validator(definition);
    expect(errorsText(), errorsText()).toBe('');
    expect(isValid).toBe(true);
  });

  it('uses JSONPath, not JSONata (the local runner does not support JSONata)', () => {
    expect(definition.QueryLanguage ?? 'JSONPath').toBe('JSONPath');
    expect(text).not.toMatch(/\{%/);
  });

  it('retries every Task with backoff and jitter, and catches every Task except the fail path', () => {
    const tasks = Object.entries(definition.States).filter(([, s]) => (s as { Type: string }).Type === 'Task');
    expect(tasks.map(([name]) => name).sort()).toEqual(['Apply', 'Detect', 'Record', 'RecordFailure', 'Review']);
    for (const [name, state] of tasks as [string, { Retry: { ErrorEquals: string[]; BackoffRate: number; JitterStrategy: string }[]; Catch?: { Next: string }[] }][]) {
      expect(state.Retry.length, name).toBeGreaterThan(0);
      for (const retrier of state.Retry) {
        expect(retrier.BackoffRate, name).toBeGreaterThan(1);
        expect(retrier.JitterStrategy, name).toBe('FULL');
        expect(retrier.ErrorEquals, name).not.toContain('States.ALL');
      }
      if (name === 'RecordFailure') expect(state.Catch).toBeUndefined();
      else if (name === 'Review') expect(state.Catch?.[0]?.Next).toBe('Record');
      else expect(state.Catch?.[0]?.Next).toBe('RecordFailure');
    }
  });

  it('has exactly the placeholders the CDK construct and the local runtime substitute', () => {
    const placeholders = [...new Set([...text.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]))].sort();
    expect(placeholders).toEqual(['ApplyFunctionArn', 'ContextualReview', 'DetectFunctionArn', 'FailFunctionArn', 'RecordFunctionArn', 'ReviewFunctionArn']);
    expect(() => renderDefinition(text, { DetectFunctionArn: 'x' })).toThrow(DefinitionSubstitutionError);
  });
});
