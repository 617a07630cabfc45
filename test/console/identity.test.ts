/**
 * Who the console records as the reviewer: the OS user locally, the STS caller identity against a
 * deployed stack, both reduced to the reviewer syntax the history accepts (validateReviewer).
 */
import { describe, expect, it } from 'vitest';
import { localReviewer, reviewerFromArn, reviewerIdentity, sanitiseReviewer } from '../../cli/console/identity.ts';
import { validateReviewer } from '../../cli/human-review.ts';

describe('console reviewer identity', () => {
  it('reduces any name to the reviewer syntax', () => {
    expect(sanitiseReviewer('dana')).toBe('dana');
    expect(sanitiseReviewer('Dana Smith')).toBe('Dana-Smith');
    expect(sanitiseReviewer('CORP\\josé')).toBe('CORP-jose');
    expect(sanitiseReviewer('  ..weird//name..  ')).toBe('weird-name');
    expect(sanitiseReviewer('x'.repeat(100))).toHaveLength(64);
    expect(sanitiseReviewer('')).toBeUndefined();
    expect(sanitiseReviewer('///')).toBeUndefined();
    const local = localReviewer();
    expect(() => validateReviewer(local.reviewer)).not.toThrow();
    expect(local.source).toBe(`OS user ${local.reviewer}`);
  });

  it('names the person behind an STS caller ARN', () => {
    expect(reviewerFromArn('arn:aws:iam::123456789012:user/reviewers/dana')).toBe('dana');
    expect(reviewerFromArn('arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Reviewer_0123456789abcdef/dana@example.com')).toBe('dana@example.com');
    expect(reviewerFromArn('arn:aws:sts::123456789012:assumed-role/ModerationReviewer/i-0abc 1')).toBe('i-0abc-1');
    expect(reviewerFromArn('arn:aws:iam::123456789012:root')).toBe('root@123456789012');
    expect(reviewerFromArn('arn:aws-us-gov:sts::123456789012:federated-user/erin')).toBe('erin');
    expect(() => reviewerFromArn('not an arn')).toThrow(/cannot tell who is reviewing/);
  });

  it('asks STS against a deployed stack, and the OS user otherwise', async () => {
    const calls: unknown[] = [];
    const sts = {
      send: async (command: unknown) => {
        calls.push(command);
        return { Arn: 'arn:aws:sts::123456789012:assumed-role/Reviewer/dana@example.com' };
      },
    };
    expect(await reviewerIdentity({ kind: 'deployed', region: 'eu-west-1' }, sts)).toEqual({
      reviewer: 'dana@example.com',
      source: 'arn:aws:sts::123456789012:assumed-role/Reviewer/dana@example.com',
    });
    expect(calls).toHaveLength(1);
    expect((await reviewerIdentity({ kind: 'serve', region: 'us-east-1' }, sts)).source).toMatch(/^OS user /);
    expect(calls).toHaveLength(1);
    const failing = { send: async () => Promise.reject(new Error('The security token included in the request is expired')) };
    await expect(reviewerIdentity({ kind: 'deployed', region: 'eu-west-1' }, failing)).rejects.toThrow(/STS GetCallerIdentity failed: The security token .* expired\); check your AWS credentials/);
  });
});
