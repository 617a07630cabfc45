/**
 * `moderation policy validate FILE` (a policy or a policy set) and `moderation policy what-if FILE`:
 * check a policy, and see what it would have changed on recent decisions (functions/lib/what-if.ts)
 * before anyone deploys it.
 * `policy push` and `policy show` (the live policy) are in cli/live-policy.ts.
 */
import type { Command } from 'commander';
import type { Policy } from '../../functions/lib/policy.ts';
import { refuseAnalysesNotEnabled } from '../../functions/lib/analysis-policy.ts';
import { whatIf, type WhatIfReport } from '../../functions/lib/what-if.ts';
import { resolvePolicySet, routePolicy } from '../../functions/lib/policy-set.ts';
import type { Decision } from '../../functions/lib/types.ts';
import { describeSet, policySetSummary, registerLivePolicy } from '../live-policy.ts';
import { addTargetOptions, parseInteger, parseWhen, plural, withTarget, type TargetFlags } from '../flags.ts';
import { renderTable, escapeControl, type Row } from '../output.ts';
import { decisionStoreOf } from '../stores.ts';

interface WhatIfFlags extends TargetFlags {
  since?: string;
  max?: string;
  sample?: string;
  json?: boolean;
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('check a moderation policy, see what it would change, publish it live (push) and see what is live (show)');

  policy
    .command('validate')
    .argument('<file|preset>', 'a policy or policy set file (YAML or JSON) or a preset: strict, standard, permissive')
    .description('validate a policy or a policy set: every problem names the field and the value; prints the version and MinConfidence of each policy')
    .option('--json', 'print the compiled policy as JSON')
    .option('--stack <name>', 'also check it against this deployed stack: refused if it needs an analysis (labels, faces, text) the stack does not enable')
    .action(async (spec: string, flags: { json?: boolean; stack?: string }) => {
      // What `policy push` publishes is a policy set; a plain policy or a preset is a set of one.
      const set = resolvePolicySet(spec);
      if (flags.stack !== undefined) {
        await withTarget({ stack: flags.stack }, async (target) => refuseAnalysesNotEnabled(Object.values(set.policies), target.names.analysisEnabled, target.description));
      }
      if (set.kind === 'set') {
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(policySetSummary(set))}\n`);
          return;
        }
        const names = Object.keys(set.policies);
        const lines = [
          `policy set ${set.version} is valid: ${plural(names.length, 'policy', 'policies')}, ${plural(set.routes.length, 'route')} and a default`,
          '',
          ...describeSet(set), // the set's warnings, its policies' included
          '',
          ...names.map((name) => `${escapeControl(name)}: ${plural(Object.keys(set.policies[name]!.rules).length, 'rule')}; analyses: ${describeNeeds(set.policies[name]!)}`),
          '',
        ];
        process.stdout.write(lines.join('\n'));
        return;
      }
      const compiled = set.policies[set.defaultPolicy]!;
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(summaryOf(compiled))}\n`);
        return;
      }
      const lines = [
        `policy "${escapeControl(compiled.name)}" is valid: version ${compiled.version}, MinConfidence ${compiled.minConfidence}, ${plural(Object.keys(compiled.rules).length, 'rule')}; analyses: ${describeNeeds(compiled)}`,
        ...compiled.warnings.map((warning) => `warning: ${escapeControl(warning)}`),
        '',
      ];
      process.stdout.write(lines.join('\n'));
    });

  addTargetOptions(
    policy
      .command('what-if')
      .argument('<file|preset>', 'the candidate policy or policy set (YAML or JSON file) or a preset')
      .description("replay the stored labels of recent decisions through a candidate policy: how many would change status, by category")
      .option('--since <when>', 'decisions from this date or duration ago (default 7d)')
      .option('--max <n>', 'look at most at this many decisions (newest first; default 100000)')
      .option('--sample <n>', 'list this many of the changes (default 20)')
      .option('--json', 'print the report as JSON'),
  )
    .addHelpText(
      'after',
      `
Only the policy's part of each automated decision is compared (APPROVE, REJECT, BORDERLINE → REVIEW):
a borderline image the LLM decided counts as REVIEW. Labels below the MinConfidence in force when an
image was decided were never stored, so a policy with lower thresholds may change more than shown.
A policy set (see \`moderation policy push --help\`) is compared per routed policy: each decision is
replayed through the policy its key or uploader routes to.

Examples:
  moderation policy what-if my-policy.yaml
  moderation policy what-if strict --since 30d --json
  moderation policy what-if my-policy.yaml --stack my-moderation`,
    )
    .action(async (spec: string, flags: WhatIfFlags) => {
      const candidates = resolvePolicySet(spec);
      const since = parseWhen(flags.since ?? '7d', '--since');
      const max = parseInteger(flags.max ?? '100000', '--max', { min: 1 });
      const sample = parseInteger(flags.sample ?? '20', '--sample', { min: 0, max: 1000 });
      await withTarget(flags, async (target) => {
        const records = [];
        for await (const record of decisionStoreOf(target).iterate({ statuses: ['APPROVED', 'REJECTED', 'REVIEW'], since, max })) records.push(record);
        if (candidates.kind === 'set') {
          const byPolicy = new Map<string, Decision[]>();
          for (const record of records) {
            const name = routePolicy(candidates, { key: record.key, uploader: record.uploader }).policy.name;
            byPolicy.set(name, [...(byPolicy.get(name) ?? []), record]);
          }
          const reports = [...byPolicy].map(([name, routed]) => ({ name, report: whatIf(routed, candidates.policies[name]!, { sample }) }));
          const changed = reports.reduce((sum, r) => sum + r.report.changed, 0);
          const examined = reports.reduce((sum, r) => sum + r.report.examined, 0);
          if (flags.json) {
            process.stdout.write(`${JSON.stringify({ since: since.toISOString(), policySet: candidates.version, examined, changed, byPolicy: Object.fromEntries(reports.map((r) => [r.name, r.report])) })}\n`);
            return;
          }
          const lines = [`policy set ${candidates.version}: ${changed} of ${plural(examined, 'automated decision')} since ${since.toISOString()} would change status`, ''];
          for (const { name, report } of reports) lines.push(`routed to "${escapeControl(name)}":`, describe(report, since));
          process.stdout.write(lines.join('\n'));
          return;
        }
        const report = whatIf(records, candidates.policies[candidates.defaultPolicy]!, { sample });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ since: since.toISOString(), ...report })}\n`);
          return;
        }
        process.stdout.write(describe(report, since));
      });
    });

  registerLivePolicy(policy);
}

function summaryOf(policy: Policy) {
  return { name: policy.name, version: policy.version, minConfidence: policy.minConfidence, rules: policy.rules, default: policy.default, animation: policy.animation, formats: policy.formats, analysis: policy.analysis.needs, ...(policy.analysis.objectTags ? { objectTags: policy.analysis.objectTags } : {}), warnings: policy.warnings };
}

/** What the policy runs beside moderation: "labels, text, faces (child safety: only with nudity or swimwear)" or "none". */
function describeNeeds(policy: Policy): string {
  const needs = policy.analysis.needs;
  const parts = [needs.labels ? 'labels' : '', needs.text ? 'text' : '', needs.faces === 'always' ? 'faces' : needs.faces === 'conditional' ? 'faces (child safety: only with nudity or swimwear)' : ''].filter(Boolean);
  const described = parts.length ? parts.join(', ') : 'none';
  // Label tags on the object (functions/lib/tags.ts): why the labels run when no rule needs them.
  const tags = policy.analysis.objectTags;
  return tags ? `${described}; object tags: up to ${plural(tags.labels, 'label')} at ${tags.minConfidence}% or more` : described;
}

function describe(report: WhatIfReport, since: Date): string {
  const lines: string[] = [];
  const share = report.examined ? ` (${((100 * report.changed) / report.examined).toFixed(1)}%)` : '';
  lines.push(
    `policy "${escapeControl(report.policy.name)}" (${report.policy.version}) on ${plural(report.examined, 'automated decision')} since ${since.toISOString()}: ` +
      `${report.changed} would change status${share}`,
  );
  if (report.changed) {
    lines.push('', renderTable(Object.entries(report.transitions).map(([transition, count]) => ({ change: transition, images: count })), ['change', 'images']));
    const rows: Row[] = Object.entries(report.byCategory)
      .sort((a, b) => b[1].changed - a[1].changed)
      .map(([category, c]) => ({ category, changed: c.changed, 'to REJECTED': c.toRejected, 'to REVIEW': c.toReview, 'to APPROVED': c.toApproved }));
    lines.push('', renderTable(rows, ['category', 'changed', 'to REJECTED', 'to REVIEW', 'to APPROVED']));
    if (report.changes.length) {
      lines.push('', renderTable(report.changes.map((c) => ({ key: c.key, change: `${c.from}→${c.to}`, because: c.because })), ['key', 'change', 'because']));
    }
  }
  if (report.llmDecidedBefore) lines.push('', `${report.llmDecidedBefore} of them were decided by the LLM before and would be held for review (or go to the LLM) again`);
  for (const note of report.notes) lines.push(`note: ${note}`);
  lines.push('');
  return lines.join('\n');
}
