/**
 * Dkron's clients, unchanged, against the local stack: pydkron 0.2.4 and the `dkron` package's CLI (PyPI,
 * installed into .venv by scripts/ensure-deps.sh) through every operation they offer; Dkron's own API test
 * assertions replayed as its Go tests send them (no Accept header); and the requests Dkron's web UI
 * (react-admin with ra-data-json-server) makes for its job list, job page, executions, Run and Toggle.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { useTestStack, waitFor } from './support/stack.ts';

const run = promisify(execFile);
const stack = useTestStack();
const hostPort = () => new URL(stack.url).host;
const PYTHON = join(REPO_ROOT, '.venv/bin/python');

/** A request as Go's net/http sends it: no Accept header. */
function goRequest(method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, stack.url);
    const req = request(
      url,
      {
        method,
        headers: body ? { 'Content-Type': 'encoding/json', 'Content-Length': Buffer.byteLength(body) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('pydkron 0.2.4', () => {
  it('works through every operation it offers', async () => {
    const { stdout } = await run(PYTHON, [join(REPO_ROOT, 'test/integration/dkron_clients.py'), hostPort()], {
      timeout: 90_000,
    });
    const r = JSON.parse(stdout);
    expect(r.status.ok).toEqual(expect.arrayContaining(['agent']));
    // The README's old-format job: stored, and run as the shell job it was written as.
    expect(r.save_job.ok).toEqual({
      name: 'pyd-job',
      executor: 'shell',
      executor_config: { command: 'echo from-pydkron', shell: 'true' },
    });
    expect(r.create_job.ok).toBe('pyd-child');
    expect(r.jobs.ok).toEqual(['pyd-child', 'pyd-job']);
    expect(r.get_job.ok).toEqual({ name: 'pyd-job', schedule: '@every 1h', id: 'pyd-job' });
    expect(r.get_job_missing.raised).toBe('DkronJobNotFound');
    expect(r.run_job.ok).toBe('pyd-job');
    // GET /v1/jobs/pyd-job/executions/ (trailing slash), as pydkron calls it.
    expect(r.executions.ok).toMatchObject({ output: 'from-pydkron\n', group_is_int: true });
    expect(r.executions_missing.raised).toBe('DkronJobNotFound');
    expect([r.toggle.ok, r.toggle_back.ok]).toEqual([true, false]);
    // Refused, and pydkron says so: it takes every status but 404 for a success.
    expect(r.delete_parent_with_child.raised).toBe('DkronJobNotFound');
    expect(r.delete_child.ok).toBe('pyd-child');
    expect(r.delete_job.ok).toBe('pyd-job');
    expect(r.delete_missing.raised).toBe('DkronJobNotFound');
    expect(r.save_invalid.raised).toBe('DkronClientException');
    expect((await stack.api('GET', '/v1/jobs/pyd-job')).status).toBe(404);
  });
});

describe('the dkron package CLI (dkron-cli 0.0.5)', () => {
  const cli = async (...args: string[]) => {
    const out = await run(join(REPO_ROOT, '.venv/bin/dkron-cli'), ['--hosts', stack.url, ...args], {
      timeout: 30_000,
    });
    return out.stdout.trim();
  };

  it('gets status, leader and members, applies, gets, runs, exports and deletes jobs, reads executions', async () => {
    expect(JSON.parse(await cli('get', 'status')).agent.name).toBe('cronplane');
    await waitFor(async () => (await stack.api('GET', '/v1/leader')).status === 200, 20_000, 'a first tick');
    expect(JSON.parse(await cli('get', 'leader'))).toMatchObject({ Status: 1, statusText: 'alive' });
    expect(JSON.parse(await cli('get', 'members')).length).toBeGreaterThanOrEqual(1);
    const dir = await mkdtemp(join(tmpdir(), 'dkron-cli-'));
    try {
      // The package's apply_job example: the old format, a top-level command.
      const file = join(dir, 'job.json');
      await writeFile(
        file,
        JSON.stringify({ name: 'cli-job', schedule: '@every 1h', command: 'echo from-cli' }),
      );
      expect(await cli('apply', 'job', file)).toBe(`Processed: ${file}`);
      expect(JSON.parse(await cli('get', 'jobs')).map((j: { name: string }) => j.name)).toContain('cli-job');
      expect(JSON.parse(await cli('get', 'job', 'cli-job'))).toMatchObject({
        name: 'cli-job',
        id: 'cli-job',
      });
      await cli('run', 'cli-job');
      const runs = await waitFor(
        async () => {
          const list = JSON.parse(await cli('get', 'executions', 'cli-job')) as Array<{
            output: string;
            success: boolean;
          }>;
          return list.some((e) => e.success) ? list : null;
        },
        30_000,
        'the run',
      );
      expect(runs.find((e) => e.success)?.output).toBe('from-cli\n');
      await cli('export', dir);
      expect(JSON.parse(await readFile(join(dir, 'cli-job.json'), 'utf8'))).toMatchObject({
        name: 'cli-job',
      });
      await cli('delete', 'job', 'cli-job');
      expect((await stack.api('GET', '/v1/jobs/cli-job')).status).toBe(404);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("Dkron's API tests, replayed as Go sends them", () => {
  const post = (job: Record<string, unknown>) => goRequest('POST', '/v1/jobs', JSON.stringify(job));
  const shell = { executor: 'shell', executor_config: { command: 'date' } };

  it('creates and then overwrites a job (201 both times)', async () => {
    const a = await post({
      name: 'test_job',
      schedule: '@every 1m',
      ...shell,
      owner: 'mec',
      owner_email: 'foo@bar.com',
      disabled: true,
    });
    expect(a.status).toBe(201);
    const b = await post({
      name: 'test_job',
      schedule: '@every 1m',
      executor: 'shell',
      executor_config: { command: 'test' },
      disabled: false,
    });
    expect(b.status).toBe(201);
    const job = JSON.parse(b.text);
    expect(job).toMatchObject({ name: 'test_job', disabled: false, executor_config: { command: 'test' } });
  });

  it("answers a job that is its own parent with 400 and Dkron's text", async () => {
    const r = await post({
      name: 'test_job2',
      schedule: '@every 1m',
      command: 'date',
      parent_job: 'test_job2',
    });
    expect(r.status).toBe(400);
    expect(r.text).toContain('the job can not have itself as parent');
  });

  it("answers a missing parent with 404 and exactly Dkron's text, storing nothing", async () => {
    const r = await post({
      name: 'orphan_job',
      schedule: '@every 1m',
      command: 'date',
      parent_job: 'parent_test_job',
    });
    expect(r.status).toBe(404);
    expect(r.text).toBe('specified parent job not found');
    expect(`${JSON.stringify('specified parent job not found')}\n`).toContain(r.text);
    expect((await goRequest('GET', '/v1/jobs/orphan_job')).status).toBe(404);
  });

  it("validates names (Dkron's rule: lowercase letters of any script), schedules, concurrency and time zones", async () => {
    expect((await post({ name: 'BAD JOB NAME!', schedule: '@every 1m', ...shell })).status).toBe(400);
    const unicode = 'abcdefghijklmnopqrstuvwxyz0123456789-_ßñëäïüøüáéíóýćàèìòùâêîôûæšłç';
    const created = await post({ name: unicode, schedule: '@every 1m', ...shell, disabled: true });
    expect(created.status, created.text).toBe(201);
    const back = await stack.api('GET', `/v1/jobs/${encodeURIComponent(unicode)}`);
    expect(back.body.name).toBe(unicode);
    expect((await post({ name: '', parent_job: 'test_job', schedule: '@every 1m', ...shell })).status).toBe(
      400,
    );
    expect((await post({ name: 'testjob', schedule: '@at badtime', ...shell })).status).toBe(400);
    expect(
      (await post({ name: 'testjob', schedule: '@every 1m', ...shell, concurrency: 'badvalue' })).status,
    ).toBe(400);
    const tz = await post({ name: 'testjob', schedule: '@every 1m', ...shell, timezone: 'notatimezone' });
    expect(tz.status).toBe(400);
    expect(tz.text).toMatch(/^Job contains invalid value: timezone: /);
    expect((await goRequest('GET', '/v1/jobs/notajob')).status).toBe(404);
  });

  it('answers JSON errors, with field and rule, to clients that accept JSON', async () => {
    const r = await stack.api('POST', '/v1/jobs', {
      name: 'orphan_job',
      schedule: '@every 1m',
      command: 'date',
      parent_job: 'nope',
    });
    expect(r).toMatchObject({
      status: 404,
      body: { error: 'specified parent job not found', field: 'parent_job' },
    });
  });

  it('restores a backup with no "fail" in the answer; a job whose http url is not a URL yet is taken, as Dkron does', async () => {
    const data = new FormData();
    const jobs = [
      {
        name: 'rs_http',
        schedule: '@every 1h',
        executor: 'http',
        executor_config: { method: 'GET', url: '{{ url }}' },
      },
      { name: 'rs_shell', schedule: '@every 1h', ...shell },
    ];
    data.append('file', new Blob([JSON.stringify(jobs)]), 'testBackupJobs.json');
    const res = await fetch(`${stack.url}/v1/restore`, { method: 'POST', body: data });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    expect(text).not.toContain('fail');
    expect((await stack.api('GET', '/v1/jobs/rs_http')).body.executor_config.url).toBe('{{ url }}');
  });
});

describe("the requests Dkron's web UI makes", () => {
  it('lists, shows, runs and toggles jobs by id, and reads executions and members', async () => {
    await stack.api('POST', '/v1/jobs', {
      name: 'ui_job',
      schedule: '@every 1h',
      executor: 'shell',
      executor_config: { command: 'echo ui' },
    });
    const list = await fetch(`${stack.url}/v1/jobs?_sort=id&_order=ASC&_start=0&_end=10`);
    expect(list.status).toBe(200);
    expect(Number(list.headers.get('x-total-count'))).toBeGreaterThanOrEqual(1);
    const jobs = (await list.json()) as Array<{ id: string; name: string }>;
    expect(jobs.length).toBeLessThanOrEqual(10);
    for (const j of jobs) expect(j.id).toBe(j.name);
    expect(jobs.map((j) => j.id)).toEqual([...jobs.map((j) => j.id)].sort());
    const job = await stack.api('GET', '/v1/jobs/ui_job');
    expect(job.body.id).toBe('ui_job');
    expect((await stack.api('POST', `/v1/jobs/${job.body.id}/run`)).status).toBe(202);
    const execs = await waitFor(
      async () => {
        const r = await fetch(
          `${stack.url}/v1/jobs/ui_job/executions?_sort=id&_order=DESC&_start=0&_end=10&output_size_limit=200`,
        );
        const body = (await r.json()) as Array<{
          id: string;
          output: string;
          group: number;
          success: boolean;
        }>;
        return r.headers.get('x-total-count') && body.some((e) => e.success) ? body : null;
      },
      30_000,
      'the run through the UI',
    );
    expect(execs[0]).toMatchObject({ output: 'ui\n' });
    expect(Number.isInteger(execs[0]!.group)).toBe(true);
    expect((await stack.api('POST', '/v1/jobs/ui_job/toggle')).body).toMatchObject({
      id: 'ui_job',
      disabled: true,
    });
    const members = await stack.api('GET', '/v1/members');
    expect(members.body[0]).toMatchObject({
      id: expect.any(String),
      Port: expect.any(Number),
      Status: 1,
      statusText: 'alive',
    });
    expect((await stack.api('GET', '/v1/isleader')).body).toBe('I am a follower');
  });
});
