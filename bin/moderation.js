#!/usr/bin/env node
// The `moderation` command. The project is TypeScript run as is (no build step): tsx's loader is
// registered here so `npx moderation` works from a fresh clone.
import { register } from 'tsx/esm/api';

// The SDK's Node 20 notice is for its maintainers' 2027 plans, not for the user of this command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// The embedded pipeline's handlers run in this process: their INFO logs and EMF metrics would mix
// with the command's own output. Errors still reach stderr; set POWERTOOLS_LOG_LEVEL=INFO to see all.
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
register();
await import('../local/polyfills.ts');
await import('../cli/main.ts');
