/**
 * `POST /v1/restore` against the local stack: Dkron's multipart upload of a backup file (`curl -F
 * file=@jobs.json`), parents written first, the whole file refused when a job is invalid, 400s naming the
 * field, 503 while paused, and both ways API Gateway hands a multipart body to the function (base64 and
 * text).
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { APIGatewayProxyEvent, Context as LambdaContext } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../functions/api/app.ts';
import { restoreJobs } from '../../shared/jobs/restore.ts';
import { useTestStack } from './support/stack.ts';

const stack = useTestStack();

const run = promisify(execFile);
const curl = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
})();

const shell = (command: string) => ({ executor: 'shell', executor_config: { command } });

/** A multipart/form-data body as curl -F builds it, encoded by the platform's FormData. */
function form(fields: Record<string, string | Blob>): FormData {
  const data = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string') data.append(k, v);
    else data.append(k, v, 'jobs.json');
  }
  return data;
}

const file = (jobs: unknown) =>
  new Blob([typeof jobs === 'string' ? jobs : JSON.stringify(jobs)], { type: 'application/json' });

async function post(body: FormData | string | undefined, headers?: Record<string, string>) {
  const res = await fetch(`${stack.url}/v1/restore`, { method: 'POST', body, headers });
  return { status: res.status, body: (await res.json()) as any };
}

const upload = (jobs: unknown) => post(form({ file: file(jobs) }));

describe('POST /v1/restore', () => {
  it('creates a parent and its child from a multipart upload, parent first', async () => {
    const res = await upload([
      { name: 'rs-parent', schedule: '@every 1h', displayname: 'Sauvegarde café ☕', ...shell('true') },
      { name: 'rs-child', parent_job: 'rs-parent', ...shell('true') },
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toEqual([
      { index: 0, name: 'rs-parent', result: 'success create rs-parent', status: 201, created: true },
      { index: 1, name: 'rs-child', result: 'success create rs-child', status: 201, created: true },
    ]);

    const parent = await stack.api('GET', '/v1/jobs/rs-parent');
    expect(parent.status).toBe(200);
    // The upload's bytes arrive intact (multi-byte UTF-8 in the file).
    expect(parent.body).toMatchObject({ schedule: '@every 1h', displayname: 'Sauvegarde café ☕' });
    expect(parent.body.dependent_jobs).toEqual(['rs-child']);
    const child = await stack.api('GET', '/v1/jobs/rs-child');
    expect(child.status).toBe(200);
    expect(child.body).toMatchObject({ name: 'rs-child', parent_job: 'rs-parent' });
  });

  it('restores a backup taken with GET /v1/jobs (children listed before their parents) over the jobs', async () => {
    await upload([
      { name: 'rb-z-parent', schedule: '@every 1h', ...shell('true') },
      { name: 'rb-a-child', parent_job: 'rb-z-parent', ...shell('true') },
    ]);
    const backup = (await stack.api<any[]>('GET', '/v1/jobs?q=rb-')).body;
    expect(backup.map((j) => j.name)).toEqual(['rb-a-child', 'rb-z-parent']);
    backup[1].schedule = '@every 2h';

    const res = await upload(backup);
    expect(res.status).toBe(200);
    expect(res.body.map((r: any) => [r.name, r.index, r.created])).toEqual([
      ['rb-z-parent', 1, false],
      ['rb-a-child', 0, false],
    ]);
    expect((await stack.api('GET', '/v1/jobs/rb-z-parent')).body.schedule).toBe('@every 2h');
  });

  it('refuses the whole file when a job is invalid, naming the job, field and rule, and stores nothing', async () => {
    const res = await upload([
      { name: 'ri-good', schedule: '@every 1h', ...shell('true') },
      { name: 'ri-bad', schedule: 'every now and then', ...shell('true') },
      { name: 'ri-good-child', parent_job: 'ri-good', ...shell('true') },
      { name: 'Ri Bad Name', schedule: '@every 1h', ...shell('true') },
    ]);
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('file[1].schedule');
    expect(res.body.error).toMatch(/^file\[1\] \(ri-bad\): schedule: .*nothing was restored$/);
    expect(res.body.results).toEqual([
      expect.objectContaining({
        index: 1,
        name: 'ri-bad',
        result: 'fail create ri-bad',
        status: 400,
        field: 'schedule',
      }),
      expect.objectContaining({ index: 3, name: 'Ri Bad Name', status: 400, field: 'name' }),
    ]);
    for (const r of res.body.results) expect(r.rule).toEqual(expect.any(String));
    for (const name of ['ri-good', 'ri-bad', 'ri-good-child']) {
      expect((await stack.api('GET', `/v1/jobs/${name}`)).status).toBe(404);
    }
  });

  it('refuses a child whose parent is neither in the file nor stored; takes one that is stored', async () => {
    const orphan = await upload([{ name: 'ro-orphan', parent_job: 'ro-nobody', ...shell('true') }]);
    expect(orphan.status).toBe(400);
    expect(orphan.body).toMatchObject({ field: 'file[0].parent_job' });
    expect(orphan.body.results[0]).toMatchObject({ name: 'ro-orphan', field: 'parent_job' });
    expect((await stack.api('GET', '/v1/jobs/ro-orphan')).status).toBe(404);

    expect(
      (await stack.api('POST', '/v1/jobs', { name: 'ro-stored', schedule: '@every 1h', ...shell('true') }))
        .status,
    ).toBe(201);
    const adopted = await upload([{ name: 'ro-child', parent_job: 'ro-stored', ...shell('true') }]);
    expect(adopted.status).toBe(200);
    expect((await stack.api('GET', '/v1/jobs/ro-stored')).body.dependent_jobs).toEqual(['ro-child']);
  });

  it('refuses duplicate names and parent_job cycles', async () => {
    const res = await upload([
      { name: 'rc-a', parent_job: 'rc-b', ...shell('true') },
      { name: 'rc-b', parent_job: 'rc-a', ...shell('true') },
      { name: 'rc-dup', schedule: '@every 1h', ...shell('true') },
      { name: 'rc-dup', schedule: '@every 2h', ...shell('true') },
    ]);
    expect(res.status).toBe(400);
    expect(res.body.results.map((r: any) => [r.index, r.field])).toEqual([
      [0, 'parent_job'],
      [1, 'parent_job'],
      [3, 'name'],
    ]);
  });

  it('answers 400 naming the field for a missing file, a file that is not a JSON array, and a non-array body', async () => {
    const missing = await post(form({ jobs: file([]) }));
    expect(missing.status).toBe(400);
    expect(missing.body.field).toBe('file');

    const notArray = await upload({ name: 'x' });
    expect(notArray).toMatchObject({
      status: 400,
      body: { field: 'file', rule: 'must be a JSON array of jobs' },
    });

    const notJson = await upload('[{');
    expect(notJson.status).toBe(400);
    expect(notJson.body.field).toBe('file');

    const asText = await post(form({ file: '{"name": "x"}' })); // curl -F 'file=<jobs.json': a plain field
    expect(asText).toMatchObject({ status: 400, body: { field: 'file' } });

    const body = await post('{"name": "x"}', { 'Content-Type': 'application/json' });
    expect(body).toMatchObject({ status: 400, body: { field: 'body' } });

    const empty = await post(undefined);
    expect(empty).toMatchObject({ status: 400, body: { field: 'file' } });
  });

  it('takes a JSON array as the body too', async () => {
    const res = await post(JSON.stringify([{ name: 'rj-job', schedule: '@every 1h', ...shell('true') }]), {
      'Content-Type': 'application/json',
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual([expect.objectContaining({ name: 'rj-job', status: 201 })]);
    expect((await stack.api('GET', '/v1/jobs/rj-job')).status).toBe(200);
  });

  it('answers 503 while the scheduler is paused and writes nothing', async () => {
    expect((await stack.api('POST', '/v1/pause')).body).toEqual({ paused: true });
    try {
      const res = await upload([{ name: 'rp-job', schedule: '@every 1h', ...shell('true') }]);
      expect(res.status).toBe(503);
      expect(res.body.error).toMatch(/paused/);
    } finally {
      await stack.api('POST', '/v1/unpause');
    }
    expect((await stack.api('GET', '/v1/jobs/rp-job')).status).toBe(404);
  });

  it.skipIf(!curl)('takes the upload as curl -F file=@jobs.json sends it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'restore-'));
    try {
      const path = join(dir, 'jobs.json');
      await writeFile(path, JSON.stringify([{ name: 'rcurl-job', schedule: '@every 1h', ...shell('true') }]));
      const { stdout } = await run(curl!, ['-sS', '-F', `file=@${path}`, `${stack.url}/v1/restore`]);
      expect(JSON.parse(stdout)).toEqual([
        expect.objectContaining({ name: 'rcurl-job', result: 'success create rcurl-job' }),
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads any boundary RFC 2046 allows: quoted, with _ and . (.NET and Apache HttpClient send such)', async () => {
    const request = new Request('http://127.0.0.1/', {
      method: 'POST',
      body: form({ file: file([{ name: 'rq-job', schedule: '@every 1h', ...shell('true') }]) }),
    });
    const boundary = /boundary=(.+)$/.exec(request.headers.get('content-type')!)![1]!;
    const other = `${boundary}_net.v1`;
    const body = (await request.text()).replaceAll(boundary, other);
    const res = await post(body, { 'Content-Type': `multipart/form-data; boundary="${other}"` });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect((await stack.api('GET', '/v1/jobs/rq-job')).status).toBe(200);
  });

  it('reads the upload whether API Gateway passes it base64-encoded or as text', async () => {
    const handler = createApiHandler(stack.ctx);
    for (const [name, isBase64Encoded] of [
      ['rg-base64', true],
      ['rg-text', false],
    ] as const) {
      // The multipart body exactly as a client sends it, encoded by the platform's Request.
      const request = new Request('http://127.0.0.1/v1/restore', {
        method: 'POST',
        body: form({
          file: file([{ name, schedule: '@every 1h', displayname: 'ünïcode ✓', ...shell('true') }]),
        }),
      });
      const bytes = Buffer.from(await request.arrayBuffer());
      const event = {
        httpMethod: 'POST',
        path: '/v1/restore',
        resource: '/{proxy+}',
        headers: { 'Content-Type': request.headers.get('content-type')! },
        multiValueHeaders: {},
        queryStringParameters: null,
        multiValueQueryStringParameters: null,
        pathParameters: { proxy: 'v1/restore' },
        stageVariables: null,
        body: bytes.toString(isBase64Encoded ? 'base64' : 'utf8'),
        isBase64Encoded,
        requestContext: {},
      } as unknown as APIGatewayProxyEvent;
      const out = await handler(event, { awsRequestId: 'test' } as LambdaContext);
      expect(out.statusCode, out.body).toBe(200);
      expect(JSON.parse(out.body)).toEqual([
        expect.objectContaining({ name, result: `success create ${name}` }),
      ]);
      expect((await stack.api('GET', `/v1/jobs/${name}`)).body.displayname).toBe('ünïcode ✓');
    }
  });

  it('answers 400 to a body cut inside its file part, and the server lives on', async () => {
    const request = new Request('http://127.0.0.1/', {
      method: 'POST',
      body: form({ file: file([{ name: 'rt-cut', schedule: '@every 1h', ...shell('true') }]) }),
    });
    const whole = await request.text();
    const cut = whole.slice(0, whole.indexOf('rt-cut') + 3); // inside the file part, before its boundary
    const res = await post(cut, { 'Content-Type': request.headers.get('content-type')! });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.field).toMatch(/^(file|body)$/);
    expect((await stack.api('GET', '/health')).status).toBe(200);
    expect((await stack.api('GET', '/v1/jobs/rt-cut')).status).toBe(404);
  });

  it('refuses a parent chain deeper than a single write allows (150 jobs), writing nothing', async () => {
    const jobs = Array.from({ length: 150 }, (_, i) =>
      i === 0
        ? { name: 'rch-0', schedule: '@every 1h', ...shell('true') }
        : { name: `rch-${i}`, parent_job: `rch-${i - 1}`, ...shell('true') },
    );
    const res = await upload(jobs);
    expect(res.status).toBe(400);
    expect(res.body.rule).toMatch(/deeper than 100/);
    expect(res.body.field).toBe('file[100].parent_job');
    expect(res.body.results).toHaveLength(50);
    const listed = (await stack.api('GET', '/v1/jobs?q=rch-')).body as unknown[];
    expect(listed).toHaveLength(0);
  });

  it('restores 1,000 jobs (a tree 99 deep and a wide fan) at once, within API Gateway time', async () => {
    const jobs: unknown[] = [{ name: 'rb-root', schedule: '@every 1h', ...shell('true') }];
    for (let i = 1; i < 99; i++)
      jobs.push({ name: `rb-d${i}`, parent_job: i === 1 ? 'rb-root' : `rb-d${i - 1}`, ...shell('true') });
    while (jobs.length < 1000)
      jobs.push({ name: `rb-w${jobs.length}`, schedule: '@every 1h', ...shell('true') });
    const started = Date.now();
    const res = await upload(jobs.reverse());
    const took = Date.now() - started;
    expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
    expect(res.body).toHaveLength(1000);
    const at = (name: string) => (res.body as Array<{ name: string }>).findIndex((r) => r.name === name);
    for (let i = 2; i < 99; i++) expect(at(`rb-d${i - 1}`)).toBeLessThan(at(`rb-d${i}`)); // parents first
    expect(at('rb-root')).toBeLessThan(at('rb-d1'));
    expect(took).toBeLessThan(29_000);
    const d98 = (await stack.api('GET', '/v1/jobs/rb-d98')).body;
    expect(d98.parent_job).toBe('rb-d97');
    expect((await stack.api('GET', '/v1/jobs/rb-d97')).body.dependent_jobs).toEqual(['rb-d98']);
    // The same depth rule as a single write: 99 ancestors are taken, 100 are one too many.
    const last = await stack.api('POST', '/v1/jobs', {
      name: 'rb-d99',
      parent_job: 'rb-d98',
      ...shell('true'),
    });
    expect(last.status).toBe(201);
    const deeper = await stack.api('POST', '/v1/jobs', {
      name: 'rb-d100',
      parent_job: 'rb-d99',
      ...shell('true'),
    });
    expect(deeper.status).toBe(400);
    expect(deeper.body.field).toBe('parent_job');
  });

  it('refuses more than 1,000 jobs in one file, writing nothing', async () => {
    const jobs = Array.from({ length: 1001 }, (_, i) => ({
      name: `rmax-${i}`,
      schedule: '@every 1h',
      ...shell('true'),
    }));
    const res = await upload(jobs);
    expect(res.status).toBe(400);
    expect(res.body.rule).toMatch(/at most 1000 jobs/);
    expect((await stack.api('GET', '/v1/jobs?q=rmax-')).body).toHaveLength(0);
  });

  it('puts back what it wrote when a write fails midway: nothing of the file stays', async () => {
    await stack.api('POST', '/v1/jobs', {
      name: 'ru-kept',
      schedule: '@every 1h',
      displayname: 'before',
      ...shell('true'),
    });
    const before = (await stack.api('GET', '/v1/jobs/ru-kept')).body;
    let puts = 0;
    let fired = false;
    const jobsStore = stack.ctx.jobs;
    const faulty = new Proxy(jobsStore, {
      get(target, key) {
        const value = Reflect.get(target, key, target);
        if (key !== 'putDefinition') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: Parameters<typeof jobsStore.putDefinition>) => {
          if (++puts === 30) {
            fired = true;
            throw new Error('store failed on the 30th write');
          }
          return jobsStore.putDefinition(...args);
        };
      },
    });
    const ctx = { ...stack.ctx, jobs: faulty } as typeof stack.ctx;
    const jobs = [
      { name: 'ru-kept', schedule: '@every 1h', displayname: 'after', ...shell('true') },
      ...Array.from({ length: 59 }, (_, i) => ({
        name: `ru-new-${i}`,
        schedule: '@every 1h',
        ...shell('true'),
      })),
    ];
    const outcome = await restoreJobs(ctx, jobs);
    expect(fired).toBe(true);
    expect(outcome.rejected).toBe(false);
    expect(outcome.rejected === false && outcome.failed?.name).toMatch(/^ru-/);
    expect((await stack.api('GET', '/v1/jobs?q=ru-new-')).body).toHaveLength(0);
    const after = (await stack.api('GET', '/v1/jobs/ru-kept')).body;
    expect(after.displayname).toBe(before.displayname);
  });
});
