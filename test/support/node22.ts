/**
 * The Node.js of Lambda's `nodejs22.x` runtime, to run the deployable bundles on what will run them, and the
 * agent on the Node.js its hosts are as likely to have. Our machines run Node 20; this fetches Node 22 once from the npm registry (the `node-linux-<arch>` package the
 * `node` package installs from) into `.cache/`, which is git-ignored.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../agent/stack-file.ts';

const run = promisify(execFile);
export const LAMBDA_NODE_VERSION = '22.23.3';

export async function lambdaNode(): Promise<string> {
  const dir = join(REPO_ROOT, '.cache', `node-${LAMBDA_NODE_VERSION}`);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) {
    throw new Error(`no Node ${LAMBDA_NODE_VERSION} package for ${process.platform}-${process.arch}`);
  }
  mkdirSync(join(REPO_ROOT, '.cache'), { recursive: true });
  const work = mkdtempSync(join(REPO_ROOT, '.cache', 'node-download-'));
  try {
    const pkg = `node-linux-${process.arch}@${LAMBDA_NODE_VERSION}`;
    const { stdout } = await run('npm', ['pack', pkg, '--silent', '--pack-destination', work], { cwd: work });
    await run('tar', ['-xzf', join(work, stdout.trim().split('\n').at(-1)!), '-C', work]);
    // Another process may have finished first: its copy is as good as ours.
    if (!existsSync(bin)) renameSync(join(work, 'package'), dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}
