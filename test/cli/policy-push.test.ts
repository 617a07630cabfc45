/**
 * `moderation policy push|show` and `moderation audit --policy`, through the real binary against a
 * local stack found through serve.json (as against a running `moderation serve`): an invalid policy
 * set publishes nothing and the one-line error names the field and value; a dry run publishes
 * nothing; a valid set is published (a new parameter version), shown, and routes the next uploads;
 * decisions can be audited by the routed policy's name.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { Command, CommanderError } from 'commander';
import { registerPolicy } from '../../cli/commands/policy.ts';
import { presetPolicy } from '../../functions/lib/policy.ts';
import { decided, eventually, png, startTestStack, upload, type TestStack } from './helpers.ts';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');

describe('moderation policy push|show (binary, local stack)', () => {
  let t: TestStack;
  const cli = (...args: string[]) => exec(process.execPath, ['bin/moderation.js', ...args, '--home', t.home], { cwd: ROOT });
  const failing = (...args: string[]) => cli(...args).then(
    () => {
      throw new Error(`expected moderation ${args.join(' ')} to fail`);
    },
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
  const live = async () => (await t.target.ssm.send(new GetParameterCommand({ Name: t.target.names.policyParameter! }))).Parameter!;

  const tenants = () => join(t.home, 'tenants.yaml');

  beforeAll(async () => {
    t = await startTestStack();
    writeFileSync(tenants(), 'policies:\n  kids: strict\nroutes:\n  - { prefix: uploads/kids/, policy: kids }\ndefault: standard\n');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the stack starts with the policy it was given, and show says so', async () => {
    expect(await live()).toMatchObject({ Value: 'standard', Version: 1 });
    const { stdout } = await cli('policy', 'show', '--json');
    expect(JSON.parse(stdout)).toMatchObject({ parameter: '/moderation/policy', parameterVersion: 1, policySet: { kind: 'policy', default: 'standard', routes: [] } });
  });

  it('an invalid policy set publishes nothing; the one-line error names the field and the value', async () => {
    const file = join(t.home, 'typo.yaml');
    writeFileSync(file, 'policies:\n  kids: stirct\nroutes:\n  - { prefix: uploads/kids/, policy: kids }\ndefault: standard\n');
    const failed = await failing('policy', 'push', file);
    expect(failed.code).toBe(1);
    expect(failed.stderr.trim().split('\n')).toHaveLength(1);
    expect(failed.stderr).toMatch(/policies\.kids: unknown preset "stirct" \(did you mean "strict"\?/);
    expect(failed.stderr).not.toMatch(/\n\s+at /);
    expect(await live()).toMatchObject({ Value: 'standard', Version: 1 });
  });

  it('a set too large for a standard parameter publishes nothing, and says how large it is', async () => {
    const rules = Object.fromEntries(['Explicit', 'Violence', 'Hate Symbols', 'Gambling', 'Alcohol', 'Rude Gestures', 'Visually Disturbing'].map((c) => [c, { reject: 90, review: 60 }]));
    const policies = Object.fromEntries(Array.from({ length: 14 }, (_, i) => [`tenant-${i}`, { rules }]));
    const file = join(t.home, 'large.json');
    writeFileSync(file, JSON.stringify({ policies, routes: Object.keys(policies).map((name) => ({ prefix: `uploads/${name}/`, policy: name })), default: 'standard' }));
    const failed = await failing('policy', 'push', file);
    expect(failed.stderr).toMatch(/the policy set is \d+ bytes as compact JSON; a standard SSM parameter holds at most 4096/);
    expect((await live()).Version).toBe(1);
  });

  it('--dry-run validates and shows, and publishes nothing', async () => {
    const { stdout } = await cli('policy', 'push', tenants(), '--dry-run');
    expect(stdout).toMatch(/^dry run: would publish policy set sha256:[0-9a-f]{16} to \/moderation\/policy .*nothing published/);
    expect(stdout).toMatch(/1: key prefix "uploads\/kids\/"\s+kids\s+sha256:/);
    expect((await live()).Version).toBe(1);
  });

  it('push publishes a new version; the next uploads are routed by it and recorded with the routed name; audit --policy finds them', async () => {
    const { stdout } = await cli('policy', 'push', tenants(), '--json');
    const pushed = JSON.parse(stdout);
    expect(pushed).toMatchObject({
      parameter: '/moderation/policy',
      parameterVersion: 2,
      published: true,
      dryRun: false,
      policySet: { kind: 'set', default: 'standard', routes: [{ prefix: 'uploads/kids/', policy: 'kids', policyVersion: presetPolicy('strict').version }] },
    });
    expect(await live()).toMatchObject({ Version: 2 });

    const { stdout: shown } = await cli('policy', 'show');
    expect(shown).toMatch(/^live: policy set sha256:[0-9a-f]{16} in \/moderation\/policy, parameter version 2/);
    expect(shown).toMatch(/default \(no route matches\)\s+standard/);

    // The stack's cache is 1 s: poll with new uploads until one is judged by the pushed set.
    let n = 0;
    const kids = await eventually(async () => {
      const key = `uploads/kids/borderline-${++n}.png`;
      await upload(t.target, key, await png(900 + n));
      const record = (await decided(t.target, [key])).get(key)!;
      return record.policyName === 'kids' ? record : undefined;
    }, 20_000);
    // (The byImage index projects the name, not the version: test/local/live-policy.test.ts reads the whole record.)
    expect(kids).toMatchObject({ status: 'REJECTED', policyName: 'kids' });
    const other = 'uploads/bob/borderline-1.png';
    await upload(t.target, other, await png(990));
    expect((await decided(t.target, [other])).get(other)).toMatchObject({ status: 'REVIEW', policyName: 'standard' });

    const { stdout: audited } = await cli('audit', '--policy', 'kids', '--json');
    const items = JSON.parse(audited).items as Array<{ key: string; policyName: string }>;
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((item) => item.policyName === 'kids' && item.key.startsWith('uploads/kids/'))).toBe(true);
    const { stdout: standard } = await cli('audit', '--policy', 'standard', '--status', 'REVIEW', '--json');
    expect((JSON.parse(standard).items as Array<{ key: string }>).map((i) => i.key)).toContain(other);
  });

  it('pushing what is already live publishes nothing', async () => {
    const { stdout } = await cli('policy', 'push', tenants());
    expect(stdout).toMatch(/^already live: \/moderation\/policy version 2 holds this policy set sha256:[0-9a-f]{16}; nothing published/);
    expect((await live()).Version).toBe(2);
  });

  it('show --history lists the published versions, newest first', async () => {
    const { stdout } = await cli('policy', 'show', '--history', '--json');
    const shown = JSON.parse(stdout);
    expect(shown.history.map((v: { parameterVersion: number }) => v.parameterVersion)).toEqual([2, 1]);
  });
});

describe('moderation policy push|show: the surface', () => {
  async function help(...path: string[]): Promise<string> {
    const out: string[] = [];
    const program = new Command('moderation').exitOverride().configureOutput({ writeOut: (text) => out.push(text), writeErr: (text) => out.push(text) });
    registerPolicy(program);
    const error = await program.parseAsync(['node', 'moderation', ...path, '--help']).catch((e: unknown) => e);
    expect((error as CommanderError).code).toBe('commander.helpDisplayed');
    return out.join('');
  }

  it('push --help: the target flags, --dry-run, --json, and what a policy set looks like', async () => {
    const out = await help('policy', 'push');
    for (const flag of ['--stack <name>', '--home <dir>', '--dry-run', '--json']) expect(out).toContain(flag);
    expect(out).toMatch(/policies:[\s\S]*routes:[\s\S]*default:/);
  });

  it('show --help: the target flags, --history, --json', async () => {
    const out = await help('policy', 'show');
    for (const flag of ['--stack <name>', '--home <dir>', '--history [n]', '--json']) expect(out).toContain(flag);
  });
});
