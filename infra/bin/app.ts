/**
 * The CDK app (cdk.json: `npx tsx infra/bin/app.ts`). Settings come from CDK context (infra/context.ts);
 * the account and Region from the CLI's environment (none are needed to synthesize).
 *
 * cdk-nag's AwsSolutions checks run on every synth and deploy: an unacknowledged finding stops it.
 * `-c nag=false` skips them (not for CI).
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { settingsFromContext, type ContextKey } from '../context.ts';
import { ModerationStack } from '../moderation-stack.ts';

const app = new App();
const { stackName, ...stackProps } = settingsFromContext((key: ContextKey) => app.node.tryGetContext(key));

new ModerationStack(app, stackName, {
  ...stackProps,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});

if (String(app.node.tryGetContext('nag') ?? 'true') !== 'false') {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

app.synth();
