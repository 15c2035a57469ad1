/**
 * Live output: while a job runs, its output reaches the execution with each heartbeat (the last 64 KB and
 * the byte count), so the API, the UI and `cronplane logs --follow` show lines before the job ends; the
 * final output is the same as without it.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { printLogs } from '../../agent/logs.ts';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { useTestStack, waitFor } from './support/stack.ts';

const stack = useTestStack({ agents: [{ agentId: 'live-agent' }] });

const COUNT = 'for i in 1 2 3 4 5; do echo $i; sleep 1; done';

type Execution = {
  id: string;
  status: string;
  output: string;
  output_size: number | null;
  finished_at: string;
};

async function get(path: string): Promise<unknown> {
  const res = await stack.api('GET', path);
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
  return res.body;
}

async function createAndRun(name: string, command: string): Promise<void> {
  const created = await stack.api('POST', '/v1/jobs', {
    name,
    schedule: '@manually',
    executor: 'shell',
    executor_config: { command, shell: 'true' },
  });
  expect(created.status).toBe(201);
  expect((await stack.api('POST', `/v1/jobs/${name}/run`)).status).toBe(202);
}

describe('live output', () => {
  it('shows the first lines through the API while the job still runs, and the whole output at the end', async () => {
    await createAndRun('live-count', COUNT);
    const seen = await waitFor(
      async () => {
        const [e] = (await get('/v1/jobs/live-count/executions')) as Execution[];
        return e && e.status === 'running' && e.output.startsWith('1\n') ? e : undefined;
      },
      15_000,
      'the first line while it runs',
    );
    expect(seen.output_size).toBe(Buffer.byteLength(seen.output));
    expect(seen.output).not.toContain('5\n');
    const done = await waitFor(
      async () => {
        const e = (await get(`/v1/jobs/live-count/executions/${seen.id}`)) as Execution;
        return e.status === 'succeeded' ? e : undefined;
      },
      20_000,
      'the run to end',
    );
    expect(done.output).toBe('1\n2\n3\n4\n5\n');
    expect(done.output_size).toBe(10);
  });

  it('`cronplane logs --follow` prints lines as they come, then the status and exit code', async () => {
    await createAndRun('live-follow', COUNT);
    const chunks: Array<{ at: number; text: string }> = [];
    const code = await printLogs(get, 'live-follow', {
      follow: true,
      intervalMs: 250,
      write: (text) => chunks.push({ at: Date.now(), text }),
    });
    expect(code).toBe(0);
    const all = chunks.map((c) => c.text).join('');
    expect(all).toMatch(/^1\n2\n3\n4\n5\n\[cronplane\] live-follow \S+: succeeded \(exit code 0\)\n$/);
    const [e] = (await get('/v1/jobs/live-follow/executions')) as Execution[];
    const first = chunks.find((c) => c.text.includes('1\n'))!;
    expect(first.at, 'the first line came before the job ended').toBeLessThan(Date.parse(e!.finished_at));
    expect(chunks.filter((c) => !c.text.startsWith('[cronplane]')).length).toBeGreaterThan(1);
  });

  it('`npx cronplane logs JOB --follow` streams from the command line, as the package runs it', async () => {
    await createAndRun('live-cli', COUNT);
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'bin/cronplane.js'), '--api', stack.url, 'logs', 'live-cli', '--follow'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const chunks: Array<{ at: number; text: string }> = [];
    child.stdout.on('data', (d: Buffer) => chunks.push({ at: Date.now(), text: d.toString('utf8') }));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, stderr).toBe(0);
    expect(chunks.map((c) => c.text).join('')).toMatch(
      /^1\n2\n3\n4\n5\n\[cronplane\] live-cli \S+: succeeded \(exit code 0\)\n$/,
    );
    const [e] = (await get('/v1/jobs/live-cli/executions')) as Execution[];
    expect(chunks[0]!.at, 'the first line came before the job ended').toBeLessThan(
      Date.parse(e!.finished_at),
    );
  }, 60_000);

  it('ends with the failure and exit status 1 when the run fails', async () => {
    await createAndRun('live-fail', 'echo partial; sleep 1; exit 3');
    const out: string[] = [];
    const code = await printLogs(get, 'live-fail', {
      follow: true,
      intervalMs: 250,
      write: (t) => out.push(t),
    });
    expect(code).toBe(1);
    expect(out.join('')).toMatch(/^partial\n\[cronplane\] live-fail \S+: failed \(exit code 3\)/);
  });
});
