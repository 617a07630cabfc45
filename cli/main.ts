/** The `moderation` command line. */
import { Command, CommanderError } from 'commander';
import { registerRun } from './commands/run.ts';
import { registerServe } from './commands/serve.ts';
import { registerAudit } from './commands/audit.ts';
import { registerReview } from './commands/review.ts';
import { registerDlq } from './commands/dlq.ts';
import { registerReconcile } from './commands/reconcile.ts';
import { registerBackfill } from './commands/backfill.ts';
import { registerPolicy } from './commands/policy.ts';
import { registerCost } from './commands/cost.ts';
import { registerEvents } from './commands/events.ts';
import { registerConsole } from './console/command.ts';
import { registerAppeal } from './commands/appeal.ts';
import { registerQuality } from './commands/quality.ts';
import { ModerationError } from '../functions/lib/errors.ts';

const program = new Command('moderation')
  .description('Moderate uploaded images: Rekognition + policy, optional Bedrock review, an auditable decision history.\nRuns the whole pipeline locally by default; --stack <name> (or $MODERATION_STACK) targets a deployed stack.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerRun(program);
registerServe(program);
registerAudit(program);
registerReview(program);
registerAppeal(program);
registerQuality(program);
registerDlq(program);
registerReconcile(program);
registerBackfill(program);
registerPolicy(program);
registerCost(program);
registerEvents(program);
registerConsole(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here with code 0; usage errors were already printed by commander.
    process.exitCode = err.exitCode === 0 ? 0 : 1;
  } else if (err instanceof ModerationError && err.userFacing) {
    // The user's to fix (a flag, a policy, a directory in use): one line says what and how.
    process.stderr.write(`error: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
    process.exitCode = err.exitCode;
  } else {
    // A bug or an outage: the stack trace is what a maintainer needs.
    process.stderr.write(`error: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  }
}
