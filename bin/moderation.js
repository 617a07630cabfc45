#!/usr/bin/env node
// The `moderation` command. The project is TypeScript run as is (no build step): tsx's loader is
// registered here so `npx moderation` works from a fresh clone.
import { register } from 'tsx/esm/api';

// The SDK's Node 20 notice is for its maintainers' 2027 plans, not for the user of this command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
await import('../local/polyfills.ts');
await import('../cli/main.ts');
