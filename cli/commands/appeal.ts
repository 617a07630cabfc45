/**
 * `moderation appeal <jobId> --message "..."`: an uploader's appeal of a rejection, filed by the
 * platform on their behalf. The appeal is a record of kind `appeal` in the job's history (status
 * REVIEW), which puts the image back in the review queue with the message; a reviewer decides it
 * with `moderation review approve|reject` or in the console (approve restores it from quarantine).
 * See cli/human-review.ts (fileAppeal) and docs/console.md, "Appeals".
 */
import type { Command } from 'commander';
import { checkJobIdSyntax, fileAppeal, resolveJobId, type AppealResult } from '../human-review.ts';
import { addTargetOptions, withTarget, type TargetFlags } from '../flags.ts';
import { escapeLines, UsageError } from '../output.ts';

interface AppealFlags extends TargetFlags {
  message?: string;
  json?: boolean;
}

export function registerAppeal(program: Command): void {
  addTargetOptions(
    program
      .command('appeal')
      .description('appeal a rejection: put a REJECTED image back in the review queue with the uploader\'s message')
      .argument('<jobId>', 'job id of the rejected image (or a unique prefix of one)')
      .option('--message <text>', "the uploader's message: why the image should not be rejected (required; at most 1,000 characters)")
      .option('--json', 'print the appeal record and the rejection it contests as JSON'),
  )
    .addHelpText(
      'after',
      `
Examples:
  moderation appeal 3f2a9c1b --message "It is a painting in a museum, not a photo"
  moderation review list --kind appeal
  moderation review approve 3f2a9c1b --reason "art"      # grants it: restored from quarantine, tagged APPROVED
  moderation review reject 3f2a9c1b --reason "explicit"  # denies it: stays in quarantine

Only an image whose latest decision is REJECTED can be appealed, and one appeal at a time: filing the
same message again writes nothing. The image stays in quarantine until a reviewer decides; the
decision is a human record that supersedes the rejection and names the appeal (appealOf).`,
    )
    .action(async (jobText: string, flags: AppealFlags) => {
      await appealCommand(jobText, flags);
    });
}

async function appealCommand(jobText: string, flags: AppealFlags): Promise<void> {
  if (flags.message === undefined) throw new UsageError('appeal needs --message "<why the image should not be rejected>"');
  checkJobIdSyntax(jobText);
  await withTarget(flags, async (target) => {
    const jobId = await resolveJobId(target, jobText, { statuses: ['REJECTED'], what: 'rejected image' });
    const result = await fileAppeal(target, jobId, { message: flags.message! });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ record: result.record, contested: result.contested, alreadyFiled: result.alreadyFiled }, null, 2)}\n`);
      return;
    }
    process.stdout.write(escapeLines(describeAppeal(result)));
  });
}

function describeAppeal({ record, contested, alreadyFiled }: AppealResult): string {
  return [
    alreadyFiled ? `This appeal was already filed at ${record.decidedAt}; nothing new was written.` : `Appeal filed at ${record.decidedAt}`,
    `  job         ${record.jobId}`,
    `  object      s3://${record.bucket}/${record.key}`,
    `  contests    REJECTED by ${contested.decidedBy} at ${contested.decidedAt}${contested.reason ? `: ${contested.reason}` : ''}`,
    `  message     ${record.reason ?? ''}`,
    `  record      ${record.pk}|${record.sk}`,
    '',
    'The image waits in the review queue (moderation review list --kind appeal, or the console); it stays in quarantine until a reviewer decides.',
    '',
  ].join('\n');
}
