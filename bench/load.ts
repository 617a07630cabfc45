/**
 * `npm run bench:load`: the reliability scenarios (test/reliability/) at full size against the
 * embedded local stack, each in its own process, then one table: objects in, terminal decisions
 * by status, FAILED, in the DLQ, decided twice, lost; the figures and checks of each scenario; the
 * machine it ran on. Exit code 1 if any check failed (lost or decided twice above 0 among them).
 *
 * Usage: npm run bench:load -- [--only throttle,throttle-oversized,duplicates,bad-inputs,bedrock,crash] [--quick] [--json]
 *   --quick  skips the slow Bedrock case (a real 45 s client timeout, four attempts)
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { machine, renderFigures, renderTable, type ScenarioResult } from '../test/reliability/harness.ts';
import { badInputsScenario, bedrockScenario, crashScenario, duplicatesScenario, throttleScenario } from '../test/reliability/scenarios.ts';
import { benchArgs, usageError } from './args.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** The full-size runs. */
const SCENARIOS: Record<string, (quick: boolean) => Promise<ScenarioResult>> = {
  // 10/s: the embedded stack runs every service and handler on one event loop and tops out near
  // 18 executions/s on two cores, so a higher quota would measure this machine, not the quota.
  throttle: () => throttleScenario({ perSecond: 10, burstFactor: 10, objects: 500 }),
  // The same burst with 20 executions in flight, about 3× what the quota needs: the Retry policy
  // still keeps everything out of the DLQ, but more throttles per image and a longer backoff tail
  // cost throughput. That is why the concurrency is sized to the quota.
  'throttle-oversized': () =>
    throttleScenario({ perSecond: 10, burstFactor: 10, objects: 500, pollerConcurrency: 20, batchSize: 1, assertThroughput: false, label: 'throttle 10/s, 20 in flight (oversized)' }),
  duplicates: () => duplicatesScenario({ objects: 300, copies: 3 }),
  'bad-inputs': () => badInputsScenario({ detector: 'nsfwjs' }),
  bedrock: (quick) => bedrockScenario({ includeSlow: !quick, realRetryWaits: true }),
  crash: () => crashScenario({ images: 600, killAt: 0.4 }),
};

const values = benchArgs(import.meta.url, {
  only: { type: 'string' },
  quick: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  // Internal: run one scenario in this process and print its result as JSON.
  scenario: { type: 'string' },
});

if (values.scenario) {
  const run = SCENARIOS[values.scenario];
  if (!run) throw new Error(`unknown scenario ${values.scenario}`);
  const result = await run(values.quick);
  delete result.outcomes;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const names = values.only ? values.only.split(',').map((s) => s.trim()) : Object.keys(SCENARIOS);
for (const name of names) if (!SCENARIOS[name]) usageError(import.meta.url, `unknown scenario "${name}"; one of ${Object.keys(SCENARIOS).join(', ')}`);
const log = (line: string) => process.stderr.write(`${line}\n`);

function runScenario(name: string): Promise<ScenarioResult> {
  return new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--scenario', name, ...(values.quick ? ['--quick'] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as ScenarioResult);
      } catch {
        reject(new Error(`scenario ${name} exited ${code} without a result:\n${stderr}`));
      }
    });
  });
}

const results: ScenarioResult[] = [];
const started = Date.now();
for (const name of names) {
  log(`running ${name}…`);
  const result = await runScenario(name);
  results.push(result);
  log(`  ${name}: ${result.seconds.toFixed(1)} s, ${result.checks.filter((c) => !c.ok).length} failed check(s)`);
}

const host = machine();
const failed = results.flatMap((r) => r.checks.filter((c) => !c.ok).map((c) => `${r.scenario}: ${c.name} (${c.detail})`));
if (values.json) {
  process.stdout.write(`${JSON.stringify({ machine: host, results, failed }, null, 2)}\n`);
} else {
  const out = [
    renderTable(results),
    '',
    ...results.map(renderFigures),
    '',
    `machine: ${host.cpu}, ${host.memory} RAM, ${host.os}, Node ${host.node}; total ${((Date.now() - started) / 1000).toFixed(0)} s`,
    failed.length ? `\n${failed.length} check(s) FAILED:\n  ${failed.join('\n  ')}` : 'all checks passed',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}
process.exit(failed.length ? 1 : 0);
