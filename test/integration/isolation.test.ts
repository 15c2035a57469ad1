/**
 * No job can stop the others: a job the planner cannot plan (a poison definition stored before the limits
 * existed, or written around the API) is isolated — the canary beside it keeps launching on time, the cursor
 * moves on, and the poison job carries the reason — and a fan-out count cannot turn one fire time into more
 * executions than there are live matching agents.
 */
import { describe, expect, it } from 'vitest';
import { validateJob } from '../../shared/jobs/job.ts';
import { useTestStack, waitFor } from './support/stack.ts';

const stack = useTestStack({
  tickIntervalMs: 1000,
  settings: { CRONPLANE_TICK_PERIOD_MS: '2000', CRONPLANE_TICK_MARGIN_MS: '1000' },
  agents: [{ agentId: 'iso-web', tags: { role: 'web' } }],
});

interface ApiExecution {
  id: string;
  group: string;
  status: string;
  scheduled_at: string;
  started_at: string | null;
  reason: string | null;
}

const shell = (command: string) => ({ executor: 'shell', executor_config: { command } });

async function executions(job: string): Promise<ApiExecution[]> {
  const res = await stack.api<ApiExecution[]>('GET', `/v1/jobs/${job}/executions`);
  return res.status === 200 ? res.body : [];
}

describe('a job the planner cannot plan', () => {
  it('is isolated: the canary beside it launches on time, the cursor moves, the job says why', async () => {
    // Stored as an old Cronplane would have taken it: a 3 KB tag value, whose queue-registry key the store
    // refuses (over DynamoDB's 2,048-byte key limit) every time the job is planned.
    const poisonInput = {
      name: 'iso-poison',
      schedule: '@every 1s',
      tags: { role: 'w'.repeat(3000) },
      ...shell('true'),
    };
    expect(() => validateJob(poisonInput)).toThrow(/tags/); // the API refuses it now
    const poison = validateJob({ ...poisonInput, tags: { role: 'web' } });
    const now = Date.now();
    await stack.ctx.jobs.putDefinition({ ...poison, tags: poisonInput.tags }, now + 1000, null, now);

    const created = await stack.api('POST', '/v1/jobs', {
      name: 'iso-canary',
      schedule: '@every 1s',
      ...shell('true'),
    });
    expect(created.status).toBe(201);
    const since = Date.now();
    const cursorBefore = (await stack.ctx.control.getCursor(0)) ?? 0;

    const ran = await waitFor(
      async () => {
        const done = (await executions('iso-canary')).filter(
          // Past anything the write path planned when the canary was created (its window ends at the
          // tick's cursor, at most period + margin ahead): only the tick plans these.
          (e) => e.status === 'succeeded' && Date.parse(e.scheduled_at) > since + 5000,
        );
        return done.length >= 4 ? done : null;
      },
      30_000,
      'four canary runs after the poison job was stored',
    );
    for (const e of ran) {
      // Not a precision figure (the bench has those): late by seconds would mean the tick stalled.
      expect(Date.parse(e.started_at!) - Date.parse(e.scheduled_at), e.id).toBeLessThan(3000);
    }
    const job = await waitFor(
      async () => {
        const body = (await stack.api('GET', '/v1/jobs/iso-poison')).body;
        return body.plan_error ? body : null;
      },
      10_000,
      'plan_error on the poison job',
    );
    expect(job.plan_error).toMatch(/could not be planned/);
    expect(job.plan_error_at).toEqual(expect.any(String));
    expect(await executions('iso-poison')).toEqual([]);
    expect((await stack.ctx.control.getCursor(0)) ?? 0).toBeGreaterThan(cursorBefore);

    // Fixed through the API, it plans again and its plan error goes.
    const fixed = await stack.api('PUT', '/v1/jobs/iso-poison', { ...poisonInput, tags: { role: 'web' } });
    expect(fixed.status).toBe(201);
    await waitFor(
      async () => (await executions('iso-poison')).some((e) => e.status === 'succeeded'),
      20_000,
      'the fixed job to run',
    );
    await waitFor(
      async () => (await stack.api('GET', '/v1/jobs/iso-poison')).body.plan_error === null,
      10_000,
      'its plan error cleared',
    );
    await stack.api('DELETE', '/v1/jobs/iso-poison');
    await stack.api('DELETE', '/v1/jobs/iso-canary');
  });
});

describe('fan-out counts', () => {
  it('never plan more slots than there are live matching agents', async () => {
    const res = await stack.api('POST', '/v1/jobs', {
      name: 'iso-wide',
      schedule: '@every 1s',
      tags: { role: 'web:1000' },
      ...shell('true'),
    });
    expect(res.status).toBe(201);
    const groups = await waitFor(
      async () => {
        const all = await executions('iso-wide');
        const byGroup = new Map<string, ApiExecution[]>();
        for (const e of all) byGroup.set(e.group, [...(byGroup.get(e.group) ?? []), e]);
        const done = [...byGroup.values()].filter((g) => g.every((e) => e.status === 'succeeded'));
        return done.length >= 3 ? [...byGroup.values()] : null;
      },
      20_000,
      'three launches of iso-wide',
    );
    for (const g of groups) expect(g, g[0]?.group).toHaveLength(1);
    await stack.api('DELETE', '/v1/jobs/iso-wide');
  });

  it('run now with no live match makes one failed execution, not one per counted slot', async () => {
    await stack.api('POST', '/v1/jobs', {
      name: 'iso-none',
      schedule: '@manually',
      tags: { role: 'nobody:1000' },
      ...shell('true'),
    });
    const run = await stack.api('POST', '/v1/jobs/iso-none/run');
    expect(run.status).toBe(202);
    const list = await executions('iso-none');
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ status: 'failed' });
    expect(list[0]!.reason).toMatch(/no live agent/);
  });

  it('refuses a count above the limit, naming the tag', async () => {
    const res = await stack.api('POST', '/v1/jobs', {
      name: 'iso-huge',
      schedule: '@every 1s',
      tags: { role: 'web:10000000' },
      ...shell('true'),
    });
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('tags.role');
    expect(res.body.rule).toMatch(/between 1 and 1000/);
    expect((await stack.api('GET', '/v1/jobs/iso-huge')).status).toBe(404);
  });
});
