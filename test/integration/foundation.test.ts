/**
 * The walking skeleton end to end, as a new user tries it: API → DynamoDB → tick → SQS → agent → result,
 * against DynamoDB Local and moto server.
 */
import { describe, expect, it } from 'vitest';
import { useTestStack, waitFor } from './support/stack.ts';

const stack = useTestStack();

describe('foundation', () => {
  it('answers health and status', async () => {
    expect((await stack.api('GET', '/health')).body).toMatchObject({ status: 'healthy', down: [] });
    expect((await stack.api('GET', '/v1')).status).toBe(200);
  });

  it('runs an @every 2s shell job every two seconds and stores its output', async () => {
    // Plain `curl -d` sends no JSON content type; the API must take it anyway.
    const created = await stack.api('POST', '/v1/jobs', {
      name: 'hello',
      schedule: '@every 2s',
      executor: 'shell',
      executor_config: { command: 'echo hello' },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/v1/jobs/hello');
    expect(created.body).toMatchObject({ name: 'hello', schedule: '@every 2s', success_count: 0 });
    expect(created.body.next).toMatch(/Z$/);

    const done = await waitFor(
      async () => {
        const res = await stack.api<any[]>('GET', '/v1/jobs/hello/executions?_order=ASC');
        const ok = res.body.filter((e) => e.status === 'succeeded');
        return ok.length >= 3 ? ok : null;
      },
      // A new user sees them within 10 s; the suite runs beside other suites on two cores, so allow more.
      20_000,
      'three successful executions',
    );
    for (const e of done) {
      expect(e).toMatchObject({
        job_name: 'hello',
        success: true,
        output: 'hello\n',
        exit_code: 0,
        trigger: 'schedule',
      });
      expect(Date.parse(e.finished_at)).toBeGreaterThanOrEqual(Date.parse(e.started_at));
      expect(e.node_name).not.toBe('');
      // Launched at its fire time (never before it), not a look-ahead window later.
      expect(Date.parse(e.started_at)).toBeGreaterThanOrEqual(Date.parse(e.scheduled_at));
      expect(Date.parse(e.started_at) - Date.parse(e.scheduled_at)).toBeLessThan(3_000);
    }
    const times = done.map((e) => Date.parse(e.scheduled_at));
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(2_000);
    await stack.api('DELETE', '/v1/jobs/hello');
  });

  it.each([
    [{ name: 'Bad Name', schedule: '@every 1s', executor_config: { command: 'true' } }, 'name'],
    [{ name: 'bad-schedule', schedule: '61 * * * * *', executor_config: { command: 'true' } }, 'schedule'],
    [
      { name: 'bad-tz', schedule: '@daily', timezone: 'Nowhere/Land', executor_config: { command: 'true' } },
      'timezone',
    ],
  ])('rejects %j with a 400 naming %s, and stores nothing', async (job, field) => {
    const res = await stack.api('POST', '/v1/jobs', job);
    expect(res.status).toBe(400);
    expect(res.body.field).toBe(field);
    expect(res.body.error).toContain(field);
    expect((await stack.api('GET', '/v1/jobs')).body.map((j: { name: string }) => j.name)).not.toContain(
      job.name,
    );
  });

  it('answers 400 for a body that is not JSON, 404 for unknown jobs and routes', async () => {
    expect((await stack.api('POST', '/v1/jobs', '{not json')).status).toBe(400);
    expect((await stack.api('GET', '/v1/jobs/nope')).status).toBe(404);
    expect((await stack.api('GET', '/v1/jobs/nope/executions')).status).toBe(404);
    expect((await stack.api('GET', '/v2/whatever')).status).toBe(404);
  });

  it('lists, reads and deletes jobs with their executions', async () => {
    await stack.api('POST', '/v1/jobs', {
      name: 'listed',
      schedule: '@manually',
      executor_config: { command: 'true' },
    });
    const list = await stack.api('GET', '/v1/jobs');
    expect(list.headers.get('x-total-count')).toBe(String(list.body.length));
    expect((await stack.api('GET', '/v1/jobs/listed')).body.next).toBeNull();
    expect((await stack.api('DELETE', '/v1/jobs/listed')).status).toBe(200);
    expect((await stack.api('GET', '/v1/jobs/listed')).status).toBe(404);
  });

  it('records the agent as a member and the tick as the leader', async () => {
    const members = await stack.api('GET', '/v1/members');
    expect(members.body[0]).toMatchObject({ Status: 1, statusText: 'alive' });
    expect((await stack.api('GET', '/v1/leader')).body.Name).toMatch(/^local-ticker@/);
  });

  // Last: it takes the stack's only agent out of the cluster.
  it('asks an agent to leave through POST /v1/leave; it stops and shows as left', async () => {
    const name = stack.agents[0]!.agentId;
    expect((await stack.api('POST', '/v1/leave?name=nobody')).status).toBe(404);
    expect((await stack.api('POST', '/v1/leave', {})).status).toBe(400);
    const res = await stack.api('POST', `/v1/leave?name=${encodeURIComponent(name)}`);
    expect(res.body).toEqual({ name, leave_requested: true });
    await waitFor(
      async () => {
        const members = await stack.api<Array<{ Name: string; statusText: string }>>('GET', '/v1/members');
        return members.body.find((m) => m.Name === name)?.statusText === 'left';
      },
      20_000,
      'the agent to leave',
    );
  });
});
