// Builds the agent (and the whole `cronplane` CLI) into one self-contained file for hosts:
//   dist/cronplane-agent.mjs — needs only Node.js 20+ on the host (no npm install).
//
// Memory: V8 parses the whole file at start-up and the parser's memory largely stays in the process
// (glibc keeps the freed heap), so every unused kilobyte in the bundle costs resident memory on every
// host, roughly 15 kB per kB of code. Hence (see README, "idle footprint"):
//   - the rarely used AWS SDK clients are `await import()`ed (shared/aws/clients.ts), so esbuild keeps
//     them in lazily initialised wrappers that are only pre-parsed;
//   - zod is imported as a namespace (`import * as z`) so that esbuild can drop what we never call (its
//     ~40 locales and JSON Schema converters: ~360 kB of the ~450 kB). `import { z } from 'zod'` binds
//     zod's whole namespace object, which esbuild cannot shake; the two forms are the same at run time.
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';

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
  plugins: [zodNamespace],
  // Some dependencies still call require(); give ESM output a require of its own.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __cpRequire } from 'node:module'; const require = __cpRequire(import.meta.url); process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';",
  },
});
console.error(`built ${outfile}`);
