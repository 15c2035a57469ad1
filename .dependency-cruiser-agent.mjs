/**
 * The agent's idle-memory rule (scripts/bundle-agent.mjs, README "idle footprint"): what the agent bundle's
 * entry, agent/cli.ts, imports statically never reaches the schedule parser (cron-parser, luxon: only the
 * API and the tick parse schedules) nor a package the bundle loads on demand (scripts/on-demand-packages.mjs).
 * Only what esbuild keeps counts: type-only imports are erased and `await import()` is the on-demand path,
 * so both are left out here (the folder rules and the cycle check in .dependency-cruiser.mjs see them).
 *
 *   depcruise agent/cli.ts --config .dependency-cruiser-agent.mjs
 */
import base from './.dependency-cruiser.mjs';
import { ON_DEMAND_PACKAGES } from './scripts/on-demand-packages.mjs';

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export default {
  forbidden: [
    {
      name: 'agent-stays-small',
      severity: 'error',
      comment:
        'The agent parses every kilobyte of its bundle at start-up and keeps it: import the schedule parser and the on-demand packages only from code the agent does not run, or with await import().',
      from: { path: '^agent/cli\\.ts$' },
      to: {
        path: ['cron-parser', 'luxon', ...ON_DEMAND_PACKAGES].map(
          (p) => `(^|/)node_modules/${escapeRegExp(p)}/`,
        ),
        reachable: true,
      },
    },
  ],
  options: {
    ...base.options,
    tsPreCompilationDeps: false,
    exclude: { ...base.options.exclude, dynamic: true },
  },
};
