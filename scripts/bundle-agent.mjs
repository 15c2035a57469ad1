// Builds the agent (and the whole `cronplane` CLI) into one self-contained file for hosts:
//   dist/cronplane-agent.mjs — needs only Node.js 20+ on the host (no npm install).
import { build } from 'esbuild';

const outfile = process.argv[2] ?? 'dist/cronplane-agent.mjs';
await build({
  entryPoints: ['agent/cli.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  // Some dependencies still call require(); give ESM output a require of its own.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __cpRequire } from 'node:module'; const require = __cpRequire(import.meta.url); process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';",
  },
});
console.error(`built ${outfile}`);
