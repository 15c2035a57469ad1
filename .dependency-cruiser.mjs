/**
 * Import rules between the top folders (README, "Layout and boundaries"), checked by `npm run lint` and
 * `npm test` (`npm run depcruise`):
 *
 *   shared/     the domain and its use cases, and the AWS code behind them: imports no other folder
 *   functions/  the Lambda handlers: import shared/
 *   agent/      the agent and the `cronplane` CLI: import shared/
 *   infra/      the CDK app: imports shared/'s constants only
 *   local/      the local stack (emulators + the handlers + an agent in one process): imports any of them
 *   web/src/    the browser UI: imports nothing outside web/src
 *   test/       imports anything; nothing imports test/
 *
 * Inside shared/, storage sits behind ports: shared/ports.ts (domain types only) is what the use cases
 * import, and only shared/context.ts, which wires a deployable, imports the DynamoDB stores.
 *
 * Type-only imports count (tsPreCompilationDeps): a type import is still a dependency a reader follows.
 * The agent's idle-memory rule (no cron parser, no on-demand package in the agent's static import graph)
 * is in .dependency-cruiser-agent.mjs: it is about what esbuild puts in the bundle, so it ignores type-only
 * and dynamic imports, which this file must not.
 */

/** The modules infra/ may import: constants shared with the code the stack deploys, and nothing else. */
const INFRA_MAY_IMPORT = [
  '^shared/dispatch/dispatch\\.ts$', // canonicalTagSet: the launch queue names
  '^shared/events/finished-event\\.ts$', // EVENT_SOURCE, EVENT_DETAIL_TYPE
  '^shared/executions/execution\\.ts$', // TERMINAL
  '^shared/metrics/metrics\\.ts$', // metric names and dimensions
];

/** The DynamoDB stores behind the ports of shared/ports.ts. */
const STORES = '^shared/(jobs/jobs|executions/executions|control/control|agents/agents)-store\\.ts$';

/** A rule that fails the check: imports from a module whose path matches `from` of one matching `to`. */
const forbid = (name, comment, from, to) => ({ name, severity: 'error', comment, from, to });

export default {
  forbidden: [
    forbid(
      'no-circular',
      'A cycle makes two modules one: move what both need into the module that owns it.',
      {},
      { circular: true },
    ),
    forbid(
      'shared-imports-no-entry-point',
      'shared/ is what the entry points build on; it never imports one of them.',
      { path: '^shared/' },
      { path: '^(functions|agent|local|infra|web|test|scripts|bin)/' },
    ),
    forbid(
      'deployables-import-no-local-or-infra',
      'The Lambda code and the agent ship without local/ and infra/.',
      { path: '^(functions|agent)/' },
      { path: '^(local|infra)/' },
    ),
    forbid(
      'functions-and-agent-apart',
      'The Lambda code and the agent are separate deployables; what both need lives in shared/.',
      { path: '^(functions|agent)/' },
      { path: '^(functions|agent)/', pathNot: '^$1/' },
    ),
    forbid(
      'infra-imports-only-shared-constants',
      `infra/ imports only the constants it shares with the deployed code (${INFRA_MAY_IMPORT.join(', ')}).`,
      { path: '^infra/' },
      { path: '^(shared|functions|agent|local|web|test|scripts|bin)/', pathNot: INFRA_MAY_IMPORT },
    ),
    forbid(
      'web-is-browser-code',
      'web/src is the browser UI, bundled on its own: it imports nothing outside web/src.',
      { path: '^web/src/' },
      { pathNot: '^web/src/' },
    ),
    forbid(
      'nothing-imports-local',
      'local/ is the top of the tree: only local/ itself and the tests import it.',
      { pathNot: '^(local|test)/' },
      { path: '^local/' },
    ),
    forbid(
      'nothing-imports-tests',
      'Test support code stays under test/.',
      { pathNot: '^test/' },
      { path: '^test/' },
    ),
    forbid(
      'stores-behind-ports',
      'Use cases reach storage through the ports (shared/ports.ts) that Context hands out; only the wiring (shared/context.ts) builds the DynamoDB stores.',
      { pathNot: ['^shared/context\\.ts$', '^test/'] },
      { path: STORES },
    ),
    forbid(
      'ports-import-domain-only',
      'shared/ports.ts is what storage implements: it imports domain types only, never an implementation or the AWS code.',
      { path: '^shared/ports\\.ts$' },
      { path: [STORES, '^shared/aws/', '^shared/context\\.ts$'] },
    ),
    forbid(
      'not-to-unresolvable',
      'An import that resolves to nothing (a typo, or a package missing from package.json).',
      {},
      { couldNotResolve: true },
    ),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(web/dist|dist|cdk\\.out|\\.cronplane|\\.venv)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    cache: false,
  },
};
