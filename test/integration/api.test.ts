/**
 * Dkron's /v1 behaviours a client relies on, against the local stack: the executions list (what ran, not
 * what is planned; `_sort`, `_limit`, `X-Total-Count`), clearing executions resets the counters, child jobs
 * and `dependent_jobs`, Dkron's null fields, and `?runoncreate`.
 */
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../functions/api/app.ts';
import { LIST_OUTPUT_BUDGET } from '../../shared/jobs/jobs-service.ts';
import { useTestStack, waitFor } from './support/stack.ts';

const stack = useTestStack();

const shell = (command: string) => ({ executor: 'shell', executor_config: { command } });

async function succeeded(name: string, n: number) {
  return waitFor(
    async () => {
      const list = (await stack.api<any[]>('GET', `/v1/jobs/${name}/executions`)).body;
      return list.filter((e) => e.status === 'succeeded').length >= n ? list : null;
    },
    30_000,
    `${n} successful runs of ${name}`,
  );
}

describe('GET /v1/jobs', () => {
  it('filters (q, metadata, status, disabled), sorts, slices, and counts after filtering', async () => {
    const job = (name: string, extra: Record<string, unknown> = {}) =>
      stack.api('POST', '/v1/jobs', { name, schedule: '@manually', ...shell('true'), ...extra });
    await job('ls-b', { displayname: 'Backup', metadata: { team: 'data' } });
    await job('ls-a', { metadata: { team: 'data' } });
    await job('ls-c', { metadata: { team: 'web' }, disabled: true });
    await stack.api('POST', '/v1/jobs/ls-a/run');
    await waitFor(
      async () => (await stack.api('GET', '/v1/jobs/ls-a')).body.status === 'success',
      30_000,
      'ls-a to succeed',
    );
    const names = async (query: string) => {
      const res = await stack.api<any[]>('GET', `/v1/jobs?${query}`);
      expect(res.status).toBe(200);
      return { names: res.body.map((j) => j.name), total: Number(res.headers.get('x-total-count')) };
    };
    expect(await names('q=ls-&_sort=name&_order=DESC')).toEqual({
      names: ['ls-c', 'ls-b', 'ls-a'],
      total: 3,
    });
    expect((await names('q=backup')).names).toEqual(['ls-b']);
    expect((await names('q=ls-&metadata[team]=data')).names).toEqual(['ls-a', 'ls-b']);
    expect((await names('q=ls-&disabled=true')).names).toEqual(['ls-c']);
    expect((await names('q=ls-&status=success')).names).toEqual(['ls-a']);
    expect((await names('q=ls-&status=untriggered')).names).toEqual(['ls-b', 'ls-c']);
    expect(await names('q=ls-&_start=1&_end=2')).toEqual({ names: ['ls-b'], total: 3 });
    expect((await names('q=ls-&_sort=success_count&_order=DESC')).names[0]).toBe('ls-a');
    await stack.api('POST', '/v1/jobs', {
      name: 'ls-tagged',
      schedule: '@manually',
      tags: { role: 'web:2', dc: 'eu' },
      executor_config: { command: 'true' },
    });
    expect((await names('tags[role]=web')).names).toEqual(['ls-tagged']);
    expect((await names('tags[role]=web&tags[dc]=us')).names).toEqual([]);
    await stack.api('DELETE', '/v1/jobs/ls-tagged');
    const bad = await stack.api('GET', '/v1/jobs?_sort=colour');
    expect(bad).toMatchObject({ status: 400, body: { field: '_sort' } });
  });

  it('PATCH /v1/jobs creates or replaces like POST; a parent with children cannot be deleted (404, as Dkron)', async () => {
    expect(
      (await stack.api('PATCH', '/v1/jobs', { name: 'patched', schedule: '@daily', ...shell('true') }))
        .status,
    ).toBe(201);
    expect((await stack.api('GET', '/v1/jobs/patched')).body.schedule).toBe('@daily');
    await stack.api('POST', '/v1/jobs', { name: 'patched-child', parent_job: 'patched', ...shell('true') });
    const refused = await stack.api('DELETE', '/v1/jobs/patched');
    expect(refused.status).toBe(404);
    expect(refused.body.error).toMatch(/has dependent jobs \(patched-child\)/);
    expect((await stack.api('GET', '/v1/jobs/patched')).status).toBe(200);
  });
});

describe('GET /v1/jobs/{job}/executions', () => {
  it('lists what ran or was due, not launches planned ahead, unless asked with planned=true', async () => {
    expect(
      (await stack.api('POST', '/v1/jobs', { name: 'ticking', schedule: '@every 2s', ...shell('true') }))
        .status,
    ).toBe(201);
    // Planned at once up to the local look-ahead (15 s), so some fire times are still to come.
    const planned = (await stack.api<any[]>('GET', '/v1/jobs/ticking/executions?planned=true')).body;
    const now = Date.now();
    expect(planned.some((e) => e.status === 'scheduled' && Date.parse(e.scheduled_at) > now + 2_000)).toBe(
      true,
    );

    await succeeded('ticking', 2);
    const listed = await stack.api<any[]>('GET', '/v1/jobs/ticking/executions');
    const at = Date.now();
    expect(listed.body.length).toBeGreaterThanOrEqual(2);
    for (const e of listed.body)
      expect(e.status !== 'scheduled' || Date.parse(e.scheduled_at) <= at).toBe(true);
    // Newest first by default.
    const times = listed.body.map((e) => Date.parse(e.scheduled_at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });

  it('sorts by _sort and _order, limits with _limit, and counts all in X-Total-Count', async () => {
    await succeeded('ticking', 3);
    const all = await stack.api<any[]>('GET', '/v1/jobs/ticking/executions');
    const one = await stack.api<any[]>('GET', '/v1/jobs/ticking/executions?_limit=1');
    expect(one.body).toHaveLength(1);
    expect(Number(one.headers.get('x-total-count'))).toBeGreaterThanOrEqual(all.body.length);

    const byStart = await stack.api<any[]>('GET', '/v1/jobs/ticking/executions?_sort=started_at&_order=ASC');
    const started = byStart.body.map((e) => Date.parse(e.started_at));
    expect(started).toEqual([...started].sort((a, b) => a - b));

    const bad = await stack.api('GET', '/v1/jobs/ticking/executions?_sort=colour');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ field: '_sort' });
    await stack.api('DELETE', '/v1/jobs/ticking');
  });
});

describe('a list of large outputs', () => {
  it('shares an output budget between the executions, so the answer fits a Lambda response', async () => {
    await stack.api('POST', '/v1/jobs', {
      name: 'big',
      schedule: '@manually',
      executor: 'shell',
      executor_config: { shell: 'true', command: "head -c 300000 /dev/zero | tr '\\0' x" },
    });
    const runs = Math.ceil(LIST_OUTPUT_BUDGET / 250_000) + 1;
    for (let i = 0; i < runs; i++) expect((await stack.api('POST', '/v1/jobs/big/run')).status).toBe(202);
    const list = await waitFor(
      async () => {
        const body = (await stack.api<any[]>('GET', '/v1/jobs/big/executions')).body;
        return body.filter((e) => e.status === 'succeeded').length === runs ? body : null;
      },
      60_000,
      `${runs} runs of big`,
    );
    const share = Math.floor(LIST_OUTPUT_BUDGET / runs);
    for (const e of list) expect(e).toMatchObject({ output_truncated: true, output: 'x'.repeat(share) });
    // One execution alone comes with all the output it kept.
    const one = await stack.api('GET', `/v1/jobs/big/executions/${list[0].id}`);
    expect(one.body.output.length).toBeGreaterThan(share);
  });
});

describe('DELETE /v1/jobs/{job}/executions', () => {
  it('removes the executions and resets the counters, as Dkron does', async () => {
    await stack.api('POST', '/v1/jobs', { name: 'cleared', schedule: '@manually', ...shell('true') });
    await stack.api('POST', '/v1/jobs/cleared/run');
    await waitFor(
      async () => (await stack.api('GET', '/v1/jobs/cleared')).body.success_count === 1,
      30_000,
      'the run to be counted',
    );
    expect((await stack.api('DELETE', '/v1/jobs/cleared/executions')).status).toBe(200);
    expect((await stack.api('GET', '/v1/jobs/cleared')).body).toMatchObject({
      success_count: 0,
      error_count: 0,
      status: '',
    });
    expect((await stack.api('GET', '/v1/jobs/cleared/executions?planned=true')).body).toEqual([]);
  });
});

describe('child jobs', () => {
  it('never run on a schedule of their own, and the parent lists them in dependent_jobs from the start', async () => {
    await stack.api('POST', '/v1/jobs', { name: 'parent-a', schedule: '@manually', ...shell('true') });
    await stack.api('POST', '/v1/jobs', { name: 'parent-b', schedule: '@manually', ...shell('true') });
    const child = await stack.api('POST', '/v1/jobs', {
      name: 'child',
      schedule: '@every 1s',
      parent_job: 'parent-a',
      ...shell('true'),
    });
    expect(child.status).toBe(201);
    expect(child.body.next).toBeNull();
    expect((await stack.api('GET', '/v1/jobs/parent-a')).body.dependent_jobs).toEqual(['child']);

    // Moved to another parent: the old one lets go of it.
    await stack.api('POST', '/v1/jobs', {
      name: 'child',
      schedule: '@every 1s',
      parent_job: 'parent-b',
      ...shell('true'),
    });
    expect((await stack.api('GET', '/v1/jobs/parent-a')).body.dependent_jobs).toBeNull();
    expect((await stack.api('GET', '/v1/jobs/parent-b')).body.dependent_jobs).toEqual(['child']);

    await new Promise((r) => setTimeout(r, 3_000));
    expect((await stack.api('GET', '/v1/jobs/child/executions?planned=true')).body).toEqual([]);

    // It runs after its parent's success.
    await stack.api('POST', '/v1/jobs/parent-b/run');
    await succeeded('child', 1);

    await stack.api('DELETE', '/v1/jobs/child');
    expect((await stack.api('GET', '/v1/jobs/parent-b')).body.dependent_jobs).toBeNull();
  });

  it('refuses a parent that would make a cycle, and changes nothing', async () => {
    await stack.api('POST', '/v1/jobs', { name: 'cyc-a', schedule: '@manually', ...shell('true') });
    await stack.api('POST', '/v1/jobs', { name: 'cyc-b', parent_job: 'cyc-a', ...shell('true') });
    await stack.api('POST', '/v1/jobs', { name: 'cyc-c', parent_job: 'cyc-b', ...shell('true') });
    const res = await stack.api('POST', '/v1/jobs', { name: 'cyc-a', parent_job: 'cyc-c', ...shell('true') });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      field: 'parent_job',
      rule: 'would make a cycle (cyc-a → cyc-c → cyc-b → cyc-a)',
    });
    expect((await stack.api('GET', '/v1/jobs/cyc-a')).body).toMatchObject({
      parent_job: '',
      schedule: '@manually',
    });
  });
});

describe('job JSON as Dkron writes it', () => {
  it('takes null for a field as its default', async () => {
    const res = await stack.api('POST', '/v1/jobs', {
      name: 'from-dkron',
      displayname: null,
      schedule: '@manually',
      timezone: '',
      tags: null,
      metadata: null,
      processors: null,
      dependent_jobs: null,
      parent_job: '',
      retries: null,
      starts_at: null,
      next: '0001-01-01T00:00:00Z',
      ...shell('true'),
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: 'from-dkron',
      displayname: '',
      tags: {},
      metadata: {},
      retries: 0,
    });
  });
});

describe('Location behind API Gateway', () => {
  it('carries the stage (or base path) the client called through', async () => {
    const handler = createApiHandler(stack.ctx);
    const event = (requestContext: Record<string, unknown>) => ({
      httpMethod: 'POST',
      path: '/v1/jobs',
      resource: '/{proxy+}',
      headers: {},
      multiValueHeaders: {},
      queryStringParameters: null,
      multiValueQueryStringParameters: null,
      pathParameters: { proxy: 'v1/jobs' },
      stageVariables: null,
      body: JSON.stringify({ name: 'located', schedule: '@manually', ...shell('true') }),
      isBase64Encoded: false,
      requestContext,
    });
    const call = async (rc: Record<string, unknown>) =>
      (await handler(event(rc) as never, { awsRequestId: 'test' } as never)).headers?.Location;
    expect(await call({ stage: 'prod', path: '/prod/v1/jobs' })).toBe('/prod/v1/jobs/located');
    expect(await call({ stage: 'prod', path: '/cron/v1/jobs' })).toBe('/cron/v1/jobs/located');
    expect(await call({})).toBe('/v1/jobs/located');
  });
});

describe('?runoncreate', () => {
  it('runs the job once when set, not when false, and refuses a value that is neither before writing', async () => {
    const off = await stack.api('POST', '/v1/jobs?runoncreate=false', {
      name: 'roc-off',
      schedule: '@manually',
      ...shell('true'),
    });
    expect(off.status).toBe(201);
    expect(off.headers.get('x-cronplane-group')).toBeNull();

    const on = await stack.api('POST', '/v1/jobs?runoncreate', {
      name: 'roc-on',
      schedule: '@manually',
      ...shell('true'),
    });
    expect(on.headers.get('x-cronplane-group')).toMatch(/\S/);
    const [run] = await succeeded('roc-on', 1);
    expect(run).toMatchObject({ trigger: 'manual' });
    expect((await stack.api('GET', '/v1/jobs/roc-off/executions?planned=true')).body).toEqual([]);

    const bad = await stack.api('POST', '/v1/jobs?runoncreate=maybe', {
      name: 'roc-bad',
      schedule: '@manually',
      ...shell('true'),
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ field: 'runoncreate' });
    expect((await stack.api('GET', '/v1/jobs/roc-bad')).status).toBe(404);
  });
});
