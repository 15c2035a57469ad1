// Builds the agent (and the whole `cronplane` CLI) into one self-contained file for hosts:
//   dist/cronplane-agent.mjs — needs only Node.js 20+ on the host (no npm install).
//
// Memory: V8 parses the whole file at start-up and what the parser builds largely stays in the process
// (glibc keeps the freed heap), so every unused kilobyte of code in the bundle costs resident memory on
// every host, roughly 15–40 kB per kB. Hence (see README, "idle footprint"):
//   - the rarely used AWS SDK clients (S3, SSM, Lambda, EventBridge, DynamoDB Streams; shared/aws/clients.ts
//     imports them with `await import()` on first use) are built into a second, CommonJS bundle that is
//     embedded in this file as a compressed string and compiled only when a job first needs one of them.
//     As code in the file they would be pre-parsed at every start: measured, ~23 MB of the idle agent's
//     RSS. As a string they cost their length once (the scanner builds nothing for a string literal);
//   - agent code imports nothing that pulls in the schedule parser (cron-parser, luxon), which only the
//     API and the tick run (shared/jobs/tags.ts);
//   - zod is imported as a namespace (`import * as z`) so that esbuild can drop what we never call (its
//     ~40 locales and JSON Schema converters: ~360 kB of the ~450 kB). `import { z } from 'zod'` binds
//     zod's whole namespace object, which esbuild cannot shake; the two forms are the same at run time.
import { readFile } from 'node:fs/promises';
import { brotliCompressSync } from 'node:zlib';
import { build } from 'esbuild';
import { ON_DEMAND_PACKAGES } from './on-demand-packages.mjs';

const ZOD_NAMED_IMPORT = /^import \{ z \} from 'zod';$/m;

/** Rewrites `import { z } from 'zod'` in our own sources to the tree-shakable namespace import. */
const zodNamespace = {
  name: 'zod-namespace',
  setup(b) {
    b.onLoad({ filter: /\/(agent|shared|local)\/.*\.ts$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!ZOD_NAMED_IMPORT.test(source)) return undefined;
      return { contents: source.replace(ZOD_NAMED_IMPORT, "import * as z from 'zod';"), loader: 'ts' };
    });
  },
};

const ON_DEMAND_FILENAME = 'cronplane-on-demand.cjs';

/**
 * One CommonJS bundle of all on-demand packages: `module.exports[pkg]` is a getter that initialises that
 * package (and only it) on first read. Returned as brotli-compressed base64 (~1 MB of code → ~250 kB; V8
 * keeps a script's source in memory for as long as the process lives). One bundle rather than one per
 * package: they share the SDK's core, and per-package bundles measured ~2 MB more idle RSS.
 */
async function buildOnDemand() {
  const entry = ON_DEMAND_PACKAGES.map(
    (pkg) =>
      `Object.defineProperty(module.exports, ${JSON.stringify(pkg)}, { enumerable: true, get: () => require(${JSON.stringify(pkg)}) });`,
  ).join('\n');
  const out = await build({
    stdin: { contents: entry, resolveDir: process.cwd(), loader: 'js', sourcefile: 'on-demand.js' },
    bundle: true,
    write: false,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    legalComments: 'none',
  });
  return brotliCompressSync(out.outputFiles[0].contents).toString('base64');
}

/**
 * `await import(pkg)` of an ON_DEMAND_PACKAGES entry (dynamic imports only) resolves to a small module
 * that exports that package from the embedded on-demand bundle, which is decompressed and compiled once,
 * on the first such import (vm.runInThisContext, as Node's CommonJS loader does, so stack traces name
 * ON_DEMAND_FILENAME). Node builtins are all the bundle requires.
 */
function onDemand(compressed) {
  return {
    name: 'on-demand',
    setup(b) {
      const filter = new RegExp(
        `^(${ON_DEMAND_PACKAGES.map((p) => p.replace(/[/.-]/g, '\\$&')).join('|')})$`,
      );
      b.onResolve({ filter }, (args) =>
        args.kind === 'dynamic-import' ? { path: args.path, namespace: 'on-demand' } : undefined,
      );
      b.onResolve({ filter: /^cronplane:on-demand$/ }, (args) => ({
        path: args.path,
        namespace: 'on-demand',
      }));
      b.onLoad({ filter: /.*/, namespace: 'on-demand' }, (args) => ({
        loader: 'js',
        contents:
          args.path === 'cronplane:on-demand'
            ? `
const { createRequire } = require('node:module');
const { runInThisContext } = require('node:vm');
const { brotliDecompressSync } = require('node:zlib');
let packages;
exports.onDemand = function onDemand() {
  if (!packages) {
    const source = brotliDecompressSync(Buffer.from(${JSON.stringify(compressed)}, 'base64')).toString('utf8');
    const module = { exports: {} };
    runInThisContext('(function (exports, require, module) {' + source + '\\n})', {
      filename: ${JSON.stringify(ON_DEMAND_FILENAME)},
    })(module.exports, createRequire(process.execPath), module);
    packages = module.exports;
  }
  return packages;
};`
            : `module.exports = require('cronplane:on-demand').onDemand()[${JSON.stringify(args.path)}];`,
      }));
    },
  };
}

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
  plugins: [zodNamespace, onDemand(await buildOnDemand())],
  // Some dependencies still call require(); give ESM output a require of its own.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __cpRequire } from 'node:module'; const require = __cpRequire(import.meta.url); process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';",
  },
});
console.error(`built ${outfile}`);
