/**
 * The keys-only `byActive` index (issue 16: a claim and every heartbeat no longer rewrite an index copy of
 * the execution). Its readers fetch the items themselves: `GET /v1/busy` the runs whose fire time is at most
 * MAX_HOLD_MS ahead, the tick's lost sweep only the fire times old enough for a silent run — a claim comes
 * at most MAX_HOLD_MS before its fire time, so a run silent past lostAfterMs has its fire time before
 * `now − lostAfterMs + MAX_HOLD_MS`. A run enters it when it is known to live on (its start record, a
 * heartbeat) or at a claim from a message delivered before; a run claimed from its first delivery is found,
 * should its agent die first, through its message (the second test). On the real emulators, with the
 * local stack's ticker sweeping.
 */
import { describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.ts';
import type { Execution } from '../../shared/executions/execution.ts';
import { upsertJob } from '../../shared/jobs/jobs-service.ts';
import { MAX_HOLD_MS } from '../../shared/timing.ts';
import { claimedExecution, plannedExecution } from './support/executions.ts';
import { useTestStack, waitFor } from './support/stack.ts';

const stack = useTestStack({ agents: [], worker: false });
const JOB = 'active-index';

type ApiExecution = { readonly id: string; readonly job_name: string };

/**
 * A planned execution of JOB at `fireAt`; claimed by a pretend agent at `claimAt` (its last beat) if given,
 * indexed at the claim unless `index` is false (a claim from a first delivery).
 */
async function execution(fireAt: number, claimAt?: number, index = true): Promise<Execution> {
  const { ctx } = stack;
  const version = (await ctx.jobs.get(JOB))!.version;
  const planned = plannedExecution(ctx, JOB, fireAt, { trigger: 'manual', jobVersion: version });
  if (claimAt !== undefined) return claimedExecution(ctx, planned, 'ghost', claimAt, { index });
  expect(await ctx.executions.createScheduled(planned, Date.now())).toBeNull();
  return (await ctx.executions.get(JOB, planned.executionId))!;
}

describe('the keys-only byActive index', () => {
  it('busy lists the running executions; the sweep finds a run silent since a claim MAX_HOLD_MS early', async () => {
    const { ctx } = stack;
    await upsertJob(ctx, { name: JOB, schedule: '@manually', executor_config: { command: 'true' } });
    const lostAfter = ctx.config.lostAfterMs;
    const now = Date.now();
    // Claimed as early as an agent may (MAX_HOLD_MS before its fire time) and silent since: past lostAfter
    // by 1 s, with a fire time 14 s younger than lostAfter. A sweep that read fire times older than
    // `now − lostAfter` alone would find it only 14 s later (the wait below is shorter).
    const earlySilent = await execution(now - lostAfter + 14_000, now - lostAfter + 14_000 - MAX_HOLD_MS);
    const longSilent = await execution(now - 3 * lostAfter, now - 3 * lostAfter);
    const alive = await execution(now - 2_000, now - 2_000);
    const held = await execution(now + 10_000, now); // claimed, held until its fire time
    // Neither planned executions nor runs claimed from a first delivery (and not yet a second old) are in it.
    const planned = await execution(now + 60_000);
    const fresh = await execution(now - 500, now - 500, false);
    expect(fresh.indexed).toBe(false);
    expect(held.indexed).toBe(true);

    const ids = (list: readonly { executionId: string }[]) => list.map((e) => e.executionId).sort();
    const silent = new Set(ids([earlySilent, longSilent]));
    /**
     * `listed` holds exactly `expected`, but for a silent run the stack's ticker (sweeping every second,
     * concurrently) has marked lost since it was created: that one may be missing, and then it is lost.
     */
    const expectListed = async (listed: readonly string[], expected: readonly Execution[]) => {
      const missing = ids(expected).filter((id) => !listed.includes(id));
      expect([...listed].sort()).toEqual(ids(expected).filter((id) => !missing.includes(id)));
      for (const id of missing) {
        expect(silent.has(id), `${id} missing`).toBe(true);
        expect((await ctx.executions.get(JOB, id))?.status).toBe('lost');
      }
    };
    const busy = (await stack.api<ApiExecution[]>('GET', '/v1/busy')).body.filter((e) => e.job_name === JOB);
    await expectListed(
      busy.map((e) => e.id),
      [earlySilent, longSilent, alive, held],
    );
    // All the indexed ones are active; a cut leaves out the later fire times.
    const active = (await ctx.executions.listActive()).filter((e) => e.jobName === JOB);
    await expectListed(ids(active), [earlySilent, longSilent, alive, held]);
    const before = (await ctx.executions.listActive({ scheduledBefore: now })).filter(
      (e) => e.jobName === JOB,
    );
    await expectListed(ids(before), [earlySilent, longSilent, alive]);

    // The stack's ticker sweeps every second.
    await waitFor(
      async () => {
        const [a, b] = await Promise.all([
          ctx.executions.get(JOB, earlySilent.executionId),
          ctx.executions.get(JOB, longSilent.executionId),
        ]);
        return a?.status === 'lost' && b?.status === 'lost';
      },
      9_000,
      'both silent runs marked lost by the sweep',
    );
    expect((await ctx.executions.get(JOB, earlySilent.executionId))?.reason).toMatch(
      /^agent ghost stopped heartbeating \d+ s ago$/,
    );
    for (const e of [alive, held])
      expect((await ctx.executions.get(JOB, e.executionId))?.status).toBe('running');
    expect((await ctx.executions.get(JOB, planned.executionId))?.status).toBe('scheduled');
    // An ended run leaves the index: busy no longer lists them.
    const after = (await stack.api<ApiExecution[]>('GET', '/v1/busy')).body.filter((e) => e.job_name === JOB);
    expect(after.map((e) => e.id).sort()).toEqual(ids([alive, held]));
    // A run that beats, or that has run a second (its start record), enters it.
    expect(await ctx.executions.heartbeat(fresh, 'ghost', Date.now())).not.toBeNull();
    expect((await ctx.executions.get(JOB, fresh.executionId))?.indexed).toBe(true);
    const started = await execution(Date.now(), Date.now(), false);
    expect(await ctx.executions.markStarted(started, 'ghost', Date.now())).toBe(true);
    const listed = ids((await ctx.executions.listActive()).filter((e) => e.jobName === JOB));
    expect(listed).toEqual(expect.arrayContaining(ids([fresh, started])));
  });

  it('finds a run claimed from its first delivery, whose agent died before it was indexed, through its message', async () => {
    const { ctx } = stack;
    const name = 'active-index-unlisted';
    await upsertJob(ctx, { name, schedule: '@manually', executor_config: { command: 'true' } });
    const version = (await ctx.jobs.get(name))!.version;
    const queueUrl = ctx.config.defaultQueueUrl;
    const fireAt = Date.now();
    const planned = plannedExecution(ctx, name, fireAt, { trigger: 'manual', jobVersion: version });
    expect(await ctx.executions.createScheduled(planned, Date.now())).toBeNull();
    const launch = { jobName: name, executionId: planned.executionId, scheduledAt: fireAt };
    await ctx.dispatch.send(queueUrl, [launch], Date.now);
    // The ghost agent receives the launch (its message hidden 1 s), claims it, and dies on the spot.
    const [received] = await waitFor(
      async () => {
        const got = await ctx.dispatch.receive(queueUrl, { max: 1, waitSeconds: 1, visibilitySeconds: 1 });
        return got.length > 0 ? got : null;
      },
      10_000,
      'the launch to arrive',
    );
    expect(received!.launch?.executionId).toBe(planned.executionId);
    const e = (await ctx.executions.get(name, planned.executionId))!;
    const claim = await ctx.executions.claim(e, { agentId: 'ghost', nodeName: 'ghost' }, Date.now());
    expect(claim.claimed).toBe(true);
    // Not in the index: neither busy nor the sweep can see it...
    const unlisted = await ctx.executions.listActive();
    expect(unlisted.map((x) => x.executionId)).not.toContain(planned.executionId);
    // ...but its message comes back. Another agent receives it while the run still looks alive (silent
    // for less than lost-after), keeps the message, and marks the run lost when it comes back again.
    const lostAfterMs = 4_000;
    const finder = new Agent(ctx, {
      agentId: 'finder',
      pollWaitSeconds: 1,
      lostAfterMs,
      executionHeartbeatMs: 400,
    });
    await finder.start();
    try {
      const lost = await waitFor(
        async () => {
          const now = await ctx.executions.get(name, planned.executionId);
          return now?.status === 'lost' ? now : null;
        },
        20_000,
        'the run to be found lost through its message',
      );
      expect(lost.reason).toMatch(/^agent ghost stopped heartbeating \d+ s ago$/);
      // Found when silent past the finder's lost-after, not at the first return (1 s after the claim).
      expect(lost.finishedAt! - lost.heartbeatAt!).toBeGreaterThan(lostAfterMs);
    } finally {
      await finder.stop(1_000);
    }
  });
});
