/**
 * A 30 s store stall (issue 10, item 7), on the real emulators: the local stack talks to DynamoDB Local
 * through a TCP proxy (support/stall-proxy.ts) that holds every byte for 30 s. During the stall an API
 * call answers with a 5xx within its timeout instead of hanging; afterwards the agent's heartbeats and
 * pollers recover by themselves, and the tagged job's launches due during and after the stall run on
 * the (live) agent instead of ending `failed: no live agent matches tags`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { upsertJob } from '../../shared/jobs/jobs-service.ts';
import { useTestStack, waitFor } from './support/stack.ts';
import { type StallProxy, startStallProxy } from './support/stall-proxy.ts';

const STALL_MS = 30_000;
const AGENT = 'stall-agent';

let proxy: StallProxy | undefined;
const stack = useTestStack({
  agents: [{ agentId: AGENT, tags: { role: 'stall' } }],
  worker: false,
  dynamodbVia: async (endpoint) => {
    proxy = await startStallProxy(endpoint);
    return proxy.url;
  },
});
afterAll(async () => {
  await proxy?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a 30 s store stall', () => {
  it('answers API calls with a 5xx in time, and the agent and its tagged launches carry on after', {
    timeout: 240_000,
  }, async () => {
    const { ctx } = stack;
    await upsertJob(ctx, {
      name: 'stall-canary',
      schedule: '@every 2s',
      tags: { role: 'stall' },
      executor_config: { command: 'true' },
    });
    await waitFor(
      async () =>
        (await ctx.executions.listForJob('stall-canary')).filter((e) => e.status === 'succeeded').length >= 2,
      30_000,
      'the canary running before the stall',
    );
    expect(proxy!.connections).toBeGreaterThan(0);

    const stallStart = Date.now();
    proxy!.stall({ drop: true });
    // An API call during the stall: it must answer 503 (unavailable, retry) well inside API Gateway's 29 s.
    const began = Date.now();
    const res = await fetch(`${stack.url}/v1/jobs/stall-canary`, { signal: AbortSignal.timeout(60_000) });
    const answeredIn = Date.now() - began;
    expect(res.status).toBe(503);
    expect(answeredIn).toBeLessThan(25_000);
    await sleep(Math.max(0, stallStart + STALL_MS - Date.now()));
    proxy!.resume();
    const stallEnd = Date.now();

    // The agent's heartbeats come back by themselves.
    await waitFor(
      async () => ((await ctx.agents.get(AGENT))?.lastHeartbeatAt ?? 0) > stallEnd,
      30_000,
      'a heartbeat after the stall',
    );
    // Its pollers too: launches due after the stall run on it.
    const after = await waitFor(
      async () => {
        const runs = (await ctx.executions.listForJob('stall-canary')).filter(
          (e) => e.scheduledAt > stallEnd && e.status === 'succeeded',
        );
        return runs.length >= 3 ? runs : null;
      },
      60_000,
      'the canary running after the stall',
    );
    expect(after.every((e) => e.agentId === AGENT)).toBe(true);
    // None of the launches due during or just after the stall was failed for want of a live agent.
    const around = (await ctx.executions.listForJob('stall-canary')).filter(
      (e) => e.scheduledAt >= stallStart - 5_000,
    );
    const noAgent = around.filter((e) => /no live agent/.test(e.reason ?? ''));
    expect(noAgent.map((e) => [e.executionId, e.status, e.reason])).toEqual([]);
    expect((await stack.api('GET', '/v1/jobs/stall-canary')).status).toBe(200);
    const byStatus: Record<string, number> = {};
    for (const e of around) byStatus[e.status] = (byStatus[e.status] ?? 0) + 1;
    console.log(
      `store stall: API answered ${res.status} in ${answeredIn} ms; launches since: ${JSON.stringify(byStatus)}`,
    );
  });
});
