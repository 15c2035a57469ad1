/**
 * Queue discovery without delay: the first launch of a job whose tag set is new starts within a moment,
 * not at the agents' next registry scan. The agents here scan the registry every 10 minutes, so only the
 * queue-created hint (shared/dispatch/dispatch.ts, QueueHint) can make them poll the new queue in time.
 * Several agents share the default queue: the hint is passed on until the one it concerns has seen it.
 */
import { describe, expect, it } from 'vitest';
import { useTestStack, waitFor } from './support/stack.ts';

const NEVER = 600_000;
const stack = useTestStack({
  agents: [
    { agentId: 'plain-1', registryRefreshMs: NEVER },
    { agentId: 'plain-2', registryRefreshMs: NEVER },
    { agentId: 'web-1', tags: { role: 'web', dc: 'eu' }, registryRefreshMs: NEVER },
    { agentId: 'db-1', tags: { role: 'db' }, registryRefreshMs: NEVER },
  ],
});

type Execution = { status: string; node_name: string; started_at: string; scheduled_at: string };

async function firstStart(job: string): Promise<Execution> {
  let found: Execution | undefined;
  await waitFor(
    async () => {
      const res = await stack.api('GET', `/v1/jobs/${job}/executions`);
      found = (res.body as Execution[]).find((e) => e.status === 'succeeded');
      return found !== undefined;
    },
    20_000,
    `a finished run of ${job}`,
  );
  return found!;
}

describe('a job whose tag set is new', () => {
  it('runs now within a moment of being created, on the agent its tags name', async () => {
    const created = await stack.api('POST', '/v1/jobs', {
      name: 'new-tags-run-now',
      schedule: '@manually',
      tags: { role: 'web' },
      executor_config: { command: 'echo hi' },
    });
    expect(created.status).toBe(201);
    const asked = Date.now();
    expect((await stack.api('POST', '/v1/jobs/new-tags-run-now/run')).status).toBe(202);
    const run = await firstStart('new-tags-run-now');
    const lateMs = Date.parse(run.started_at) - asked;
    console.log(`new tag set, run-now: started ${lateMs} ms after the request`);
    expect(run.node_name).toBe('web-1');
    expect(lateMs).toBeLessThan(5_000); // the registry scan would take 10 minutes
  });

  it('starts at its first fire time when that comes a few seconds after it is written', async () => {
    const fireAt = new Date(Math.ceil((Date.now() + 4_000) / 1000) * 1000);
    const created = await stack.api('POST', '/v1/jobs', {
      name: 'new-tags-at',
      schedule: `@at ${fireAt.toISOString()}`,
      tags: { role: 'db' },
      executor_config: { command: 'echo at' },
    });
    expect(created.status).toBe(201);
    const run = await firstStart('new-tags-at');
    const lateMs = Date.parse(run.started_at) - fireAt.getTime();
    console.log(`new tag set, first fire time: started ${lateMs} ms after it`);
    expect(run.node_name).toBe('db-1');
    expect(lateMs).toBeLessThan(3_000);
  });
});
