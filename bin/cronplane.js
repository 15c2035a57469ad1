#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader, so the checkout needs no build step.
import { register } from 'tsx/esm/api';

// The pinned AWS SDK runs on Node 20 and 22; its notice about future releases is not for our users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
await import('../agent/cli.ts');
