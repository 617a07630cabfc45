/**
 * Who is reviewing: recorded as decidedBy `human:<reviewer>` on every decision made in the console.
 * Locally it is the OS user running the console; against a deployed stack it is the AWS identity
 * whose credentials the console uses (STS GetCallerIdentity), so the record names the person the
 * account knows, not a name typed into a form. Either is reduced to the reviewer syntax the history
 * accepts (validateReviewer: 1-64 letters, digits or . _ @ + -).
 */
import { userInfo } from 'node:os';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { validateReviewer } from '../human-review.ts';
import { UsageError } from '../output.ts';
import type { Target } from '../target.ts';

export interface ReviewerIdentity {
  /** As recorded: decidedBy `human:<reviewer>`. */
  reviewer: string;
  /** Where it comes from, for the page header and the start-up line (e.g. "OS user", an ARN). */
  source: string;
}

/** Any text reduced to the reviewer syntax: runs of other characters become '-', at most 64. */
export function sanitiseReviewer(name: string): string | undefined {
  const cleaned = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9._@+-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 64)
    .replace(/[-.]+$/, '');
  return cleaned || undefined;
}

/** The OS user running the console. */
export function localReviewer(): ReviewerIdentity {
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    name = process.env.USER ?? process.env.USERNAME ?? process.env.LOGNAME;
  }
  const reviewer = sanitiseReviewer(name ?? '');
  if (!reviewer) throw new UsageError('cannot tell who is reviewing: the OS user name is empty');
  return { reviewer, source: `OS user ${reviewer}` };
}

/**
 * The reviewer named by an STS caller ARN: an IAM user's name, an assumed role's session name (what
 * IAM Identity Center and most SSO tools set to the person's user name or e-mail), or
 * `root@<account>` for the account's root user.
 */
export function reviewerFromArn(arn: string): string {
  const match = /^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):(.+)$/.exec(arn.trim());
  if (!match) throw new UsageError(`cannot tell who is reviewing from the caller identity "${arn}"`);
  const [, account, resource] = match as unknown as [string, string, string];
  let name: string;
  if (resource === 'root') name = `root@${account}`;
  else if (resource.startsWith('assumed-role/')) name = resource.split('/').slice(2).join('/') || resource.split('/')[1]!;
  else name = resource.split('/').pop()!;
  const reviewer = sanitiseReviewer(name);
  if (!reviewer) throw new UsageError(`cannot tell who is reviewing from the caller identity "${arn}"`);
  validateReviewer(reviewer);
  return reviewer;
}

export interface StsLike {
  send(command: GetCallerIdentityCommand): Promise<{ Arn?: string }>;
}

/** The reviewer for a target: the OS user locally, the STS caller identity against AWS. */
export async function reviewerIdentity(target: Pick<Target, 'kind' | 'region'>, sts?: StsLike): Promise<ReviewerIdentity> {
  if (target.kind !== 'deployed') return localReviewer();
  const client = sts ?? new STSClient({ region: target.region });
  try {
    const { Arn } = await client.send(new GetCallerIdentityCommand({}));
    if (!Arn) throw new UsageError('STS GetCallerIdentity returned no ARN: cannot tell who is reviewing');
    return { reviewer: reviewerFromArn(Arn), source: Arn };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot tell who is reviewing (STS GetCallerIdentity failed: ${(err as Error).message}); check your AWS credentials`, { cause: err });
  } finally {
    if (!sts) (client as STSClient).destroy();
  }
}
