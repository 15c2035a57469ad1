/**
 * The packaged agent and the CLI as a user runs them: the single-file bundle joins the stack as a host
 * agent, and `cronplane jobs apply / executions / members / pause` drive the API.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { lambdaNode } from '../support/node22.ts';
import { startTestStack, waitFor } from './support/stack.ts';

const run = promisify(execFile);
type Stack = Awaited<ReturnType<typeof startTestStack>>;
let stack: Stack;
let agent: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'cronplane-cli-'));
const bundle = join(dir, 'cronplane-agent.mjs');

const cli = (...args: string[]) =>
  run('node', [join(REPO_ROOT, 'bin', 'cronplane.js'), '--api', stack.url, ...args], { cwd: REPO_ROOT });

beforeAll(async () => {
  stack = await startTestStack({ agents: [] });
  await run('node', [join(REPO_ROOT, 'scripts', 'bundle-agent.mjs'), bundle], { cwd: REPO_ROOT });
});
afterAll(async () => {
  agent?.kill('SIGKILL');
  await stack?.stop();
});

/** The bundled agent as a host runs it: only Node and the file; configuration from the environment. */
function spawnBundle(node: string, name: string, tag: string): ChildProcess {
  return spawn(node, [bundle, 'agent', '--name', name, '--tag', tag], {
    cwd: dir,
    env: {
      ...process.env,
      ...stack.env,
      CRONPLANE_AGENT_POLL_WAIT_S: '1',
      CRONPLANE_AGENT_REGISTRY_REFRESH_MS: '1000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe('packaged agent and CLI', () => {
  it('runs jobs on an agent started from the single-file bundle, driven by the CLI', async () => {
    // A host has only Node and the bundle; configuration comes from the environment.
    agent = spawnBundle('node', 'bundled-1', 'role=batch');
    let agentOutput = '';
    agent.stdout?.on('data', (d) => {
      agentOutput += String(d);
    });
    await waitFor(
      async () =>
        JSON.parse((await cli('members')).stdout).some(
          (m: { Name: string; statusText: string }) => m.Name === 'bundled-1' && m.statusText === 'alive',
        ),
      20_000,
      'the bundled agent to join',
    );
    const file = join(dir, 'job.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'from-cli',
        schedule: '@every 1s',
        tags: { role: 'batch' },
        executor: 'shell',
        executor_config: { command: 'echo via-bundle' },
      }),
    );
    const applied = JSON.parse((await cli('jobs', 'apply', '-f', file)).stdout);
    expect(applied.name).toBe('from-cli');
    const executions = await waitFor(
      async () => {
        const list = JSON.parse((await cli('executions', 'from-cli')).stdout) as Array<{
          status: string;
          node_name: string;
          output: string;
        }>;
        const ok = list.filter((e) => e.status === 'succeeded');
        return ok.length >= 2 ? ok : null;
      },
      20_000,
      'two successful executions on the bundled agent',
    );
    for (const e of executions) expect(e).toMatchObject({ node_name: 'bundled-1', output: 'via-bundle\n' });
    // Start-up and idling ran without V8's optimizing compiler (agent/v8-tier.ts); work turned it on, once.
    expect(agentOutput.match(/first launch: V8 optimizing compiler on/g)).toHaveLength(1);

    // The SSM SDK is not code in the bundle's main part but an embedded bundle compiled on first use
    // (scripts/bundle-agent.mjs): a `{{ssm:...}}` secret exercises that path on the bundled agent.
    await stack.ctx.clients.ssm.send(
      new PutParameterCommand({
        Name: '/cronplane/cli/secret',
        Value: 'bundled-secret',
        Type: 'SecureString',
        // The SDK retries a put whose answer came late (a loaded machine): the retry finds it stored.
        Overwrite: true,
      }),
    );
    writeFileSync(
      file,
      JSON.stringify({
        name: 'secret-cli',
        schedule: '@manually',
        tags: { role: 'batch' },
        executor: 'shell',
        executor_config: {
          shell: 'true',
          command: 'test "$SECRET" = bundled-secret && echo secret-resolved',
          env: 'SECRET={{ssm:/cronplane/cli/secret}}',
        },
      }),
    );
    await cli('jobs', 'apply', '-f', file);
    await cli('jobs', 'run', 'secret-cli');
    const secretRun = await waitFor(
      async () => {
        const list = JSON.parse((await cli('executions', 'secret-cli')).stdout) as Array<{
          status: string;
          node_name: string;
          output: string;
        }>;
        return list.find((e) => e.status !== 'scheduled' && e.status !== 'running') ?? null;
      },
      30_000,
      'the secret job to finish on the bundled agent',
    );
    expect(secretRun).toMatchObject({
      status: 'succeeded',
      node_name: 'bundled-1',
      output: 'secret-resolved\n',
    });
    expect((await cli('jobs', 'ls')).stdout).toContain('from-cli');
    expect(JSON.parse((await cli('pause')).stdout)).toEqual({ paused: true });
    expect(JSON.parse((await cli('unpause')).stdout)).toEqual({ paused: false });
    await cli('jobs', 'rm', 'from-cli');
    await expect(cli('jobs', 'get', 'from-cli')).rejects.toThrow(/404/);
  }, 180_000);

  it('stops the bundled agent cleanly on SIGTERM and marks it as left', async () => {
    const exited = new Promise<number | null>((resolve) => agent!.once('exit', (code) => resolve(code)));
    agent!.kill('SIGTERM');
    expect(await exited).toBe(0);
    const members = JSON.parse((await cli('members')).stdout) as Array<{ Name: string; statusText: string }>;
    expect(members.find((m) => m.Name === 'bundled-1')?.statusText).toBe('left');
  });

  it('runs the same bundle on Node 22', async () => {
    const node22 = spawnBundle(await lambdaNode(), 'bundled-22', 'role=n22');
    try {
      await waitFor(
        async () =>
          (await stack.api<any[]>('GET', '/v1/members')).body.some(
            (m) => m.Name === 'bundled-22' && m.statusText === 'alive',
          ),
        20_000,
        'the agent on Node 22 to join',
      );
      await stack.api('POST', '/v1/jobs', {
        name: 'on-node22',
        schedule: '@manually',
        tags: { role: 'n22' },
        executor_config: { command: 'echo on-22' },
      });
      expect((await stack.api('POST', '/v1/jobs/on-node22/run')).status).toBe(202);
      const done = await waitFor(
        async () =>
          (await stack.api<any[]>('GET', '/v1/jobs/on-node22/executions')).body.find(
            (e) => e.status !== 'scheduled' && e.status !== 'running',
          ),
        30_000,
        'the run on the Node 22 agent',
      );
      expect(done).toMatchObject({ success: true, node_name: 'bundled-22', output: 'on-22\n' });
    } finally {
      node22.kill('SIGKILL');
    }
  });
});
