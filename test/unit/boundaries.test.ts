/**
 * The import rules (.dependency-cruiser.mjs, .dependency-cruiser-agent.mjs) fail on what they forbid: a
 * throwaway tree with one forbidden import of each kind is cruised with the project's configs, and every
 * rule must report it. The real tree must report nothing (`npm run boundaries` runs the same checks).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/stack-file.ts';

/** What `npm run depcruise` cruises. */
const REAL_TREE = ['shared', 'functions', 'agent', 'local', 'infra', 'web/src', 'test', 'scripts', 'bin'];
const DEPCRUISE = join(REPO_ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

interface Violation {
  readonly rule: { readonly name: string };
  readonly from: string;
  readonly to: string;
}

/** The violations depcruise reports for `paths` under `cwd` with the project's config `config`. */
async function cruise(cwd: string, config: string, paths: readonly string[]): Promise<string[]> {
  const args = [DEPCRUISE, ...paths, '--config', join(REPO_ROOT, config), '--output-type', 'json'];
  // Exit code = the number of errors; the report is on stdout either way.
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, out) =>
      out ? resolve(out) : reject(error ?? new Error('depcruise printed nothing')),
    ),
  );
  const { violations } = (JSON.parse(stdout) as { summary: { violations: Violation[] } }).summary;
  return violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
}

/** One forbidden import (or more) for each rule. */
const FIXTURE: Readonly<Record<string, string>> = {
  // The agent reaching into local/ (what agent/cli.ts did with the stack file) and the cron parser.
  'agent/cli.ts': "import { x } from '../local/x.ts';\nimport 'cron-parser';\nexport const y = x;\n",
  'agent/tool.ts': 'export const t = 1;\n',
  'local/x.ts': "import { helper } from '../test/helper.ts';\nexport const x = helper;\n",
  'test/helper.ts': 'export const helper = 1;\n',
  // shared/ importing an entry point, which imports the other deployable.
  'shared/uses-handler.ts': "import { h } from '../functions/handler.ts';\nexport const u = h;\n",
  'functions/handler.ts': "import { t } from '../agent/tool.ts';\nexport const h = t;\n",
  // A cycle made of type-only imports (what shared/jobs/job.ts and the executors had).
  'shared/a.ts': "import type { B } from './b.ts';\nexport interface A { b?: B }\n",
  'shared/b.ts': "import type { A } from './a.ts';\nexport interface B { a?: A }\n",
  'shared/typo.ts': "export { n } from './nowhere.ts';\n",
  // A use case reaching past the ports for a DynamoDB store; the ports importing the AWS code.
  'shared/jobs/jobs-store.ts': 'export class JobsStore {}\n',
  'shared/tick.ts': "import type { JobsStore } from './jobs/jobs-store.ts';\nexport type T = JobsStore;\n",
  'shared/aws/clients.ts': 'export interface AwsClients {}\n',
  'shared/ports.ts': "import type { AwsClients } from './aws/clients.ts';\nexport type P = AwsClients;\n",
  // infra/ importing more than shared/'s constants; the browser code importing server code.
  'infra/stack.ts': "import { u } from '../shared/uses-handler.ts';\nexport const s = u;\n",
  'web/src/app.ts': "import type { A } from '../../shared/a.ts';\nexport type W = A;\n",
};

describe('import rules', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'boundaries-'));
    for (const [path, source] of Object.entries(FIXTURE)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), source);
    }
    copyFileSync(join(REPO_ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'));
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('report every forbidden import of a tree that has one of each', async () => {
    const [found, agent] = await Promise.all([
      cruise(dir, '.dependency-cruiser.mjs', [
        'agent',
        'local',
        'shared',
        'functions',
        'infra',
        'web/src',
        'test',
      ]),
      cruise(dir, '.dependency-cruiser-agent.mjs', ['agent/cli.ts']),
    ]);
    expect(found.sort()).toEqual([
      'deployables-import-no-local-or-infra: agent/cli.ts → local/x.ts',
      'functions-and-agent-apart: functions/handler.ts → agent/tool.ts',
      'infra-imports-only-shared-constants: infra/stack.ts → shared/uses-handler.ts',
      'no-circular: shared/a.ts → shared/b.ts',
      'not-to-unresolvable: shared/typo.ts → ./nowhere.ts',
      'nothing-imports-local: agent/cli.ts → local/x.ts',
      'nothing-imports-tests: local/x.ts → test/helper.ts',
      'ports-import-domain-only: shared/ports.ts → shared/aws/clients.ts',
      'shared-imports-no-entry-point: shared/uses-handler.ts → functions/handler.ts',
      'stores-behind-ports: shared/tick.ts → shared/jobs/jobs-store.ts',
      'web-is-browser-code: web/src/app.ts → shared/a.ts',
    ]);
    expect(agent).toEqual([
      expect.stringMatching(/^agent-stays-small: agent\/cli\.ts → (.*\/)?node_modules\/cron-parser\//),
    ]);
  });

  it('find nothing in the real tree', async () => {
    const [all, agent] = await Promise.all([
      cruise(REPO_ROOT, '.dependency-cruiser.mjs', REAL_TREE),
      cruise(REPO_ROOT, '.dependency-cruiser-agent.mjs', ['agent/cli.ts']),
    ]);
    expect([...all, ...agent]).toEqual([]);
  });
});
