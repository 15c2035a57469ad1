/**
 * Fault tests for the tick against the real emulators: overlapping ticks, the lease, a tick that dies
 * after each of its steps (injected on the calls the tick really makes, and asserted to have fired), and
 * duplicate SQS deliveries (counted as real runs: the job appends to a file). Each asserts exactly one
 * execution, and one run, per fire time.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.ts';
import { createApiHandler } from '../../functions/api/app.ts';
import { startHttpServer } from '../../local/http-server.ts';
import { type Context, createContext } from '../../shared/context.ts';
import { controlKeys } from '../../shared/control/control-keys.ts';
import {
  Dispatcher,
  stagingLeadSeconds,
  WORKER_PHASE_BUDGET_MS,
  WORKER_PHASE_TOLERANCE_MS,
  workerLeadMs,
} from '../../shared/dispatch/dispatch.ts';
import { laterVisibilitySeconds, processLaunches } from '../../shared/executions/runner.ts';
import { validateJob } from '../../shared/jobs/job.ts';
import { upsertJob } from '../../shared/jobs/jobs-service.ts';
import type { JobRecord } from '../../shared/ports.ts';
import { planJob, planJobs } from '../../shared/scheduler/plan.ts';
import { tick } from '../../shared/scheduler/tick.ts';
import { api, startTestStack, waitFor } from './support/stack.ts';

type Stack = Awaited<ReturnType<typeof startTestStack>>;
let stack: Stack;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let clockNow = 0;
let ctx: Context;

beforeAll(async () => {
  // No agents and no timer-driven ticks: the tests drive the scheduler themselves.
  stack = await startTestStack({ agents: [], tickIntervalMs: 3_600_000 });
  ctx = createContext(stack.env, () => clockNow);
});
afterAll(async () => {
  await stack?.stop();
});
afterEach(async () => {
  // Jobs left behind would be caught up by the next test's tick an hour of fake time later.
  for (const job of await ctx.jobs.list()) await ctx.jobs.delete(job.name);
});
beforeEach(async () => {
  // Hide what earlier tests left in the queue (moto allows one PurgeQueue a minute).
  await drainQueue();
  // Fake time only moves forward: the tick's cursor never does, and it must stay behind "now".
  clockNow = Math.max(clockNow, Date.parse('2030-01-01T00:00:00Z')) + 86_400_000;
});

/**
 * Receives (and hides for 10 minutes) what is in the default queue. Messages are sent with real SQS
 * delays, so with `atLeast` it keeps polling until that many arrived or `timeoutMs` passed.
 */
async function drainQueue(
  atLeast = 0,
  jobName?: string,
  timeoutMs = 20_000,
): Promise<Array<{ jobName: string; executionId: string }>> {
  const out: Array<{ jobName: string; executionId: string }> = [];
  const deadline = Date.now() + timeoutMs;
  // moto reads WaitTimeSeconds 0 as "the queue's default" (20 s), so wait 1 s per call.
  for (;;) {
    const res = await ctx.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: ctx.config.defaultQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: 600,
      }),
    );
    const msgs = res.Messages ?? [];
    for (const m of msgs) out.push(JSON.parse(m.Body!));
    const counted = jobName ? out.filter((m) => m.jobName === jobName).length : out.length;
    if ((msgs.length === 0 && counted >= atLeast) || Date.now() > deadline) return out;
  }
}

async function createJob(name: string, schedule = '@every 1s') {
  const { job } = await upsertJob(ctx, { name, schedule, executor_config: { command: 'echo run' } });
  return job;
}

/**
 * The real context with one step of the tick failing, on the bulk calls the tick makes (planJobs puts
 * through createScheduledMany and advances through advanceNextRunMany). `fired` counts the faults that
 * were really injected: a test whose fault never fires proves nothing.
 */
function withFault(
  base: Context,
  fault: { sendFails?: boolean; advanceFails?: boolean },
): Context & { fired: () => number } {
  let fired = 0;
  const dispatch = Object.create(base.dispatch) as Context['dispatch'];
  const jobs = Object.create(base.jobs) as Context['jobs'];
  if (fault.sendFails)
    dispatch.send = async () => {
      fired++;
      throw new Error('crash: between put and send');
    };
  if (fault.advanceFails)
    jobs.advanceNextRunMany = async () => {
      fired++;
      throw new Error('crash: after send');
    };
  return { ...base, dispatch, jobs, fired: () => fired };
}

describe('lease', () => {
  it('lets exactly one of many concurrent ticks lead, and a new holder take over after expiry', async () => {
    await ctx.control.releaseLease('scheduler', { owner: 'nobody', token: 0, expiresAtMs: 0 });
    const owners = Array.from({ length: 8 }, (_, i) => `owner-${i}`);
    const grabs = await Promise.all(
      owners.map((o) => ctx.control.acquireLease('fault-lease', o, clockNow, 30_000)),
    );
    const winners = grabs.filter((g) => g !== null);
    expect(winners).toHaveLength(1);
    const first = winners[0]!;
    // Held: others are refused, the holder renews.
    expect(await ctx.control.acquireLease('fault-lease', 'intruder', clockNow + 1_000, 30_000)).toBeNull();
    expect(
      (await ctx.control.acquireLease('fault-lease', first.owner, clockNow + 1_000, 30_000))?.token,
    ).toBe(first.token + 1);
    // Expired: a new holder gets a higher fencing token, and the old holder's cursor write is refused.
    const next = await ctx.control.acquireLease('fault-lease', 'successor', clockNow + 60_000, 30_000);
    expect(next?.token).toBeGreaterThan(first.token + 1);
    expect(await ctx.control.advanceCursor(99, clockNow + 10, next!.token)).toBe(true);
    expect(await ctx.control.advanceCursor(99, clockNow + 20, first.token)).toBe(false);
  });
});

describe("a shard's round on its lease item", () => {
  /** The Control-table requests of `fn`, as `<Command> <pk>`, seen on a context of their own. */
  async function controlRequests(fn: (c: Context) => Promise<unknown>): Promise<string[]> {
    const seen: string[] = [];
    const c = createContext(stack.env, () => clockNow);
    c.clients.doc.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: string; Key?: { pk?: string | { S?: string } } };
        if (input.TableName === c.config.tables.control && input.Key) {
          const pk = typeof input.Key.pk === 'string' ? input.Key.pk : input.Key.pk?.S;
          seen.push(`${(context.commandName ?? '').replace(/(Item)?Command$/, '')} ${pk}`);
        }
        return next(args);
      },
      { step: 'initialize', name: 'controlRequests' },
    );
    await fn(c);
    return seen;
  }

  it('takes the cursor with the lease and ends the round in one write: an idle round writes twice', async () => {
    const shard = 41;
    const first = await tick(ctx, 'round-a', shard);
    expect(first.leader).toBe(true);
    clockNow += 1_000;
    let second: Awaited<ReturnType<typeof tick>> | undefined;
    const requests = await controlRequests(async (c) => {
      second = await tick(c, 'round-b', shard);
    });
    // The window goes on where the last round left the cursor, read from the lease's own answer.
    expect(second?.windowStart).toBe(first.windowEnd);
    expect(requests.filter((r) => r.endsWith(`#${shard}`) || r.endsWith(`-${shard}`))).toEqual([
      `Update lease#scheduler-${shard}`,
      `Update lease#scheduler-${shard}`,
    ]);
    // Released with the cursor moved: a newcomer takes the lease at once and sees where it stands.
    const next = await ctx.control.acquireLease(`scheduler-${shard}`, 'newcomer', clockNow, 30_000);
    expect(next?.cursorAt).toBe(second?.windowEnd);
  });

  it('lets a holder whose lease was taken over neither move the cursor nor release the new lease', async () => {
    const name = 'scheduler-42';
    const old = await ctx.control.acquireLease(name, 'old', clockNow, 30_000);
    expect(await ctx.control.endRound(name, old!, clockNow + 10_000)).toBe(true);
    const stale = await ctx.control.acquireLease(name, 'stale', clockNow + 1_000, 30_000);
    const successor = await ctx.control.acquireLease(name, 'successor', clockNow + 40_000, 30_000);
    expect(successor?.cursorAt).toBe(clockNow + 10_000);
    expect(await ctx.control.endRound(name, stale!, clockNow + 90_000)).toBe(false);
    expect(await ctx.control.getCursor(42)).toBe(clockNow + 10_000);
    expect(await ctx.control.getLease(name)).toMatchObject({ owner: 'successor', token: successor!.token });
    expect(await ctx.control.acquireLease(name, 'intruder', clockNow + 41_000, 30_000)).toBeNull();
    // The holder's own end moves it, never backwards.
    expect(await ctx.control.endRound(name, successor!, clockNow + 5_000)).toBe(false);
    expect(await ctx.control.getCursor(42)).toBe(clockNow + 10_000);
    const again = await ctx.control.acquireLease(name, 'successor', clockNow + 42_000, 30_000);
    expect(await ctx.control.endRound(name, again!, clockNow + 70_000)).toBe(true);
    expect(await ctx.control.getCursor(42)).toBe(clockNow + 70_000);
    expect((await ctx.control.getLease(name))?.expiresAtMs).toBe(0);
  });

  it('starts from a cursor kept in its own item before it moved onto the lease, and moves it there', async () => {
    const shard = 43;
    const before = clockNow - 5_000;
    await ctx.clients.doc.send(
      new PutCommand({
        TableName: ctx.config.tables.control,
        Item: { ...controlKeys.cursor(shard), at: before },
      }),
    );
    const round = await tick(ctx, 'upgraded', shard);
    expect(round.windowStart).toBe(before);
    clockNow += 1_000;
    const requests = await controlRequests(async (c) => {
      expect((await tick(c, 'upgraded', shard)).windowStart).toBe(round.windowEnd);
    });
    expect(requests).not.toContain(`Get cursor#${shard}`);
  });
});

describe('at most one launch per fire time', () => {
  it('holds under many overlapping ticks and write-path planners over one window', async () => {
    const names = ['ov-a', 'ov-b', 'ov-c'];
    for (const n of names) await createJob(n);
    const windowEnd = clockNow + ctx.config.tickPeriodMs + ctx.config.tickMarginMs;
    const ticks = Array.from({ length: 6 }, (_, i) => tick(ctx, `tick-${i}`));
    const planners = names.flatMap((n) =>
      Array.from({ length: 4 }, async () => {
        const job = await ctx.jobs.get(n);
        return planJob(ctx, job!, windowEnd, clockNow);
      }),
    );
    await Promise.all([...ticks, ...planners]);
    await Promise.all(Array.from({ length: 6 }, (_, i) => tick(ctx, `tick-again-${i}`)));
    for (const n of names) {
      const execs = await ctx.executions.listForJob(n, { newestFirst: false });
      const fireTimes = execs.map((e) => e.scheduledAt);
      expect(new Set(fireTimes).size).toBe(fireTimes.length);
      // Every fire time from creation to the end of the planned window is there: none lost.
      const expected = [];
      for (let t = clockNow; t < windowEnd; t += 1_000) expected.push(t);
      expect(fireTimes).toEqual(expected);
    }
  });

  it('re-sends executions that a tick wrote but never sent (crash between put and send)', async () => {
    await createJob('crash-send');
    const faulty = withFault(ctx, { sendFails: true });
    const crashed = await tick(faulty, 'crashing');
    expect(faulty.fired()).toBeGreaterThan(0);
    expect(crashed.errors.length).toBeGreaterThan(0);
    expect((await drainQueue()).filter((m) => m.jobName === 'crash-send')).toHaveLength(0);
    const planned = await ctx.executions.listForJob('crash-send');
    expect(planned.length).toBeGreaterThan(0);

    const recovered = await tick(ctx, 'recovering');
    expect(recovered.errors).toEqual([]);
    const sent = await drainQueue(planned.length, 'crash-send');
    const ids = new Set(sent.filter((m) => m.jobName === 'crash-send').map((m) => m.executionId));
    for (const e of planned) expect(ids.has(e.executionId)).toBe(true);
    expect(await ctx.executions.listForJob('crash-send')).toHaveLength(planned.length);
  });

  it("gives every busy second of its window the longer staging lead, not only the jobs' first one", async () => {
    // 101 jobs `@every 1s`: 101 launches in each second of the window, so each is staged 2 s ahead
    // (stagingLeadSeconds), not only those of the second each job fires first in.
    const names = Array.from({ length: 101 }, (_, i) => `busy-${String(i).padStart(3, '0')}`);
    for (let i = 0; i < names.length; i += 10)
      await Promise.all(names.slice(i, i + 10).map((n) => createJob(n)));
    const leads = new Map<number, Set<number>>();
    const recording = { ...ctx, dispatch: Object.create(ctx.dispatch) as Context['dispatch'] };
    // Recorded, not sent: 1,500 launches appearing in the queue would flood the next tests' agents.
    recording.dispatch.send = async (_url, messages, _now, leadFor) => {
      for (const m of messages) {
        const lead = leadFor?.(m.scheduledAt) ?? 1;
        leads.set(m.scheduledAt, (leads.get(m.scheduledAt) ?? new Set()).add(lead));
      }
    };
    const report = await tick(recording, 'busy');
    expect(report.errors).toEqual([]);
    expect(leads.size).toBeGreaterThan(5);
    for (const [at, set] of leads) expect([at, [...set]]).toEqual([at, [stagingLeadSeconds(101)]]);
    expect(stagingLeadSeconds(101)).toBe(2);
  });

  it('creates no second execution when a tick dies after sending but before advancing the job', async () => {
    await createJob('crash-advance');
    const faulty = withFault(ctx, { advanceFails: true });
    await tick(faulty, 'crashing');
    expect(faulty.fired()).toBeGreaterThan(0);
    const before = await ctx.executions.listForJob('crash-advance');
    expect(before.length).toBeGreaterThan(0);
    await tick(ctx, 'recovering');
    const after = await ctx.executions.listForJob('crash-advance');
    expect(after.map((e) => e.executionId)).toEqual(before.map((e) => e.executionId));
    expect((await ctx.jobs.get('crash-advance'))!.nextRunAt).toBeGreaterThan(clockNow);
  });

  it('runs a message delivered many times exactly once (counting real runs)', async () => {
    const realCtx = createContext(stack.env);
    const now = Date.now();
    // Every run appends a line to this file: the count of real runs, whatever the records say.
    const runs = join(mkdtempSync(join(tmpdir(), 'cronplane-dup-')), 'runs');
    const def = validateJob({
      name: 'dup-delivery',
      schedule: '@every 1s',
      executor_config: { shell: 'true', command: `echo "$CRONPLANE_EXECUTION_ID" >> ${runs}; echo once` },
    });
    const fireAt = Math.ceil((now + 2_000) / 1_000) * 1_000;
    const job = await realCtx.jobs.putDefinition(def, fireAt, null, now);
    await planJob(realCtx, job, fireAt + 1, now);
    const [execution] = await realCtx.executions.listForJob('dup-delivery');
    expect(execution).toBeDefined();
    // SQS is at-least-once: deliver the same launch five more times, at once, to two agents that each
    // take up to 16 messages per receive (so duplicates are claimed concurrently, as in a real burst).
    const message = {
      jobName: 'dup-delivery',
      executionId: execution!.executionId,
      scheduledAt: execution!.scheduledAt,
    };
    await realCtx.dispatch.send(realCtx.config.defaultQueueUrl, Array(5).fill(message), () => now);
    const agents = [0, 1].map(
      (i) => new Agent(realCtx, { agentId: `dup-${i}`, pollWaitSeconds: 1, concurrency: 8 }),
    );
    await Promise.all(agents.map((a) => a.start()));
    try {
      const done = await waitFor(
        async () => {
          const e = await realCtx.executions.get('dup-delivery', execution!.executionId);
          return e?.status === 'succeeded' ? e : null;
        },
        15_000,
        'the execution to succeed',
      );
      expect(done.output).toBe('once\n');
      // Give the duplicates time to be received and dropped (or, were the claim not conditional, run).
      await new Promise((r) => setTimeout(r, 3_000));
      expect(readFileSync(runs, 'utf8').split('\n').filter(Boolean)).toEqual([execution!.executionId]);
      const all = await realCtx.executions.listForJob('dup-delivery');
      expect(all).toHaveLength(1);
      expect(all[0]!.startedAt).toBe(done.startedAt);
    } finally {
      await Promise.all(agents.map((a) => a.stop(1_000)));
    }
  });
});

/**
 * A tick killed after each of its steps, several times over: whatever step it dies after, the ticks
 * that follow end with exactly one execution per fire time of the window, each sent at least once.
 */
describe('a tick killed after each step', () => {
  type Step = 'lease' | 'first-put' | 'send' | 'advance' | 'cursor';
  const steps: Step[] = ['lease', 'first-put', 'send', 'advance', 'cursor'];
  const ROUNDS = 3;

  /**
   * The real context, with the chosen step throwing on the call the tick really makes, and every message
   * that reached SQS recorded. `fired()` says whether the fault was injected (once per crashing tick).
   * `first-put`: of the executions a bulk put writes (createScheduledMany: transactions of up to 100, a
   * crash between two leaves a prefix written), only the first is written, then the tick dies.
   */
  function crashingAfter(step: Step, sent: Set<string>): Context & { fired: () => number } {
    let fired = 0;
    const fire = (message: string) => {
      fired++;
      return new Error(message);
    };
    const dispatch = Object.create(ctx.dispatch) as Context['dispatch'];
    dispatch.send = async (url, messages, clock, leadFor) => {
      await ctx.dispatch.send(url, messages, clock, leadFor);
      for (const m of messages) sent.add(m.executionId);
      if (step === 'send' && fired === 0) throw fire('killed after send');
    };
    const executions = Object.create(ctx.executions) as Context['executions'];
    executions.createScheduledMany = async (list, now) => {
      if (step !== 'first-put' || fired > 0) return ctx.executions.createScheduledMany(list, now);
      await ctx.executions.createScheduledMany(list.slice(0, 1), now);
      throw fire('killed after the first put');
    };
    executions.createScheduled = async (e, now) => {
      const r = await ctx.executions.createScheduled(e, now);
      if (step === 'first-put' && fired === 0) throw fire('killed after the first put');
      return r;
    };
    const jobs = Object.create(ctx.jobs) as Context['jobs'];
    jobs.advanceNextRunMany = async (list) => {
      const r = await ctx.jobs.advanceNextRunMany(list);
      if (step === 'advance' && fired === 0) throw fire('killed after advancing the job');
      return r;
    };
    const control = Object.create(ctx.control) as Context['control'];
    // The round's last write moves the cursor and releases the lease together (endRound).
    control.endRound = async (name, lease, advanceTo) => {
      // Killed right after taking the lease: it is never released and has to expire.
      if (step === 'lease') return false;
      const r = await ctx.control.endRound(name, lease, advanceTo);
      if (step === 'cursor' && advanceTo !== null && fired === 0)
        throw fire('killed after moving the cursor');
      return r;
    };
    if (step === 'lease')
      control.isPaused = async () => Promise.reject(fire('killed after taking the lease'));
    return { ...ctx, dispatch, executions, jobs, control, fired: () => fired };
  }

  for (const step of steps) {
    it(`recovers from a tick killed after ${step}, ${ROUNDS} times`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const name = `kill-${step}-${round}`;
        const created = clockNow;
        await createJob(name);
        const sent = new Set<string>();
        const crashing = crashingAfter(step, sent);
        await tick(crashing, `crashing-${round}`).catch(() => undefined);
        expect(crashing.fired(), `the fault after ${step} was injected`).toBe(1);
        // The next ticks come later, as they would; a crashed lease holder blocks them until it expires.
        clockNow += 1_000;
        let last = await tick(recordingSends(sent), `recovering-${round}`);
        if (!last.leader) {
          clockNow += 31_000;
          last = await tick(recordingSends(sent), `recovering-late-${round}`);
        }
        expect(last.leader).toBe(true);
        expect(last.errors).toEqual([]);
        const execs = await ctx.executions.listForJob(name, { newestFirst: false });
        const fireTimes = execs.map((e) => e.scheduledAt);
        expect(new Set(fireTimes).size).toBe(fireTimes.length);
        const expected: number[] = [];
        // Past fire times beyond catchup_max are counted as missed rather than launched.
        const firstExpected = Math.max(created, clockNow - 1_000 - 9 * 1_000);
        for (let t = created; t < last.windowEnd!; t += 1_000)
          if (t >= firstExpected || fireTimes.includes(t)) expected.push(t);
        expect(fireTimes).toEqual(expected);
        expect(
          execs.filter((e) => !sent.has(e.executionId)).map((e) => `${e.executionId} ${e.status}`),
        ).toEqual([]);
        await ctx.jobs.delete(name);
        clockNow += 3_600_000;
      }
    }, 120_000);
  }

  function recordingSends(sent: Set<string>): Context {
    const dispatch = Object.create(ctx.dispatch) as Context['dispatch'];
    dispatch.send = async (url, messages, clock, leadFor) => {
      await ctx.dispatch.send(url, messages, clock, leadFor);
      for (const m of messages) sent.add(m.executionId);
    };
    return { ...ctx, dispatch };
  }
});

/** Launches one agent received together are claimed in one transaction; anything odd falls back. */
describe('claiming a batch of launches together', () => {
  const ran: string[] = [];
  const executor = {
    run: async (_def: unknown, e: { executionId: string; jobName: string }) => {
      ran.push(`${e.jobName}/${e.executionId}`);
      return {
        status: 'succeeded' as const,
        exitCode: 0,
        output: 'ok',
        outputTruncated: false,
        reason: null,
      };
    },
  };
  const me = { agentId: 'batch-agent', nodeName: 'batch-node' };
  const options = {
    executors: { shell: executor },
    heartbeatIntervalMs: 500,
    lostAfterMs: 10_000,
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
  };

  async function plannedLaunches(prefix: string, n: number, fireAt: number, realCtx: Context) {
    const now = Date.now();
    const jobs: JobRecord[] = [];
    for (let i = 0; i < n; i++) {
      const def = validateJob({
        name: `${prefix}-${i}`,
        schedule: `@at ${new Date(fireAt).toISOString()}`,
        executor_config: { command: 'true' },
      });
      jobs.push(await realCtx.jobs.putDefinition(def, fireAt, null, now));
    }
    await planJobs(realCtx, jobs, fireAt + 1, now);
    const launches = [];
    for (const job of jobs) {
      const [e] = await realCtx.executions.listForJob(job.name);
      launches.push({ jobName: job.name, executionId: e!.executionId, scheduledAt: e!.scheduledAt });
    }
    return launches;
  }

  it('claims them in one transaction before the fire time and starts each at it, once', async () => {
    const realCtx = createContext(stack.env);
    let batches = 0;
    const claimMany = realCtx.executions.claimMany.bind(realCtx.executions);
    realCtx.executions.claimMany = async (...args) => {
      batches++;
      return claimMany(...args);
    };
    const fireAt = Math.ceil((Date.now() + 2_000) / 1_000) * 1_000;
    const launches = await plannedLaunches('batch-ok', 6, fireAt, realCtx);
    ran.length = 0;
    const verdicts = await Promise.all(
      processLaunches(
        realCtx,
        launches,
        me,
        launches.map(() => options),
      ),
    );
    expect(verdicts).toEqual(launches.map(() => 'done'));
    expect(batches).toBe(1);
    expect(ran.sort()).toEqual(launches.map((l) => `${l.jobName}/${l.executionId}`).sort());
    for (const l of launches) {
      const e = await realCtx.executions.get(l.jobName, l.executionId);
      expect(e).toMatchObject({ status: 'succeeded', agentId: me.agentId });
      expect(e!.claimedAt!).toBeLessThan(l.scheduledAt);
      expect(e!.startedAt!).toBeGreaterThanOrEqual(l.scheduledAt);
    }
  });

  it('falls back to one by one when one of them is already claimed or delivered twice', async () => {
    const realCtx = createContext(stack.env);
    const fireAt = Math.ceil((Date.now() + 2_000) / 1_000) * 1_000;
    const launches = await plannedLaunches('batch-odd', 4, fireAt, realCtx);
    // Another agent claimed the first one already; the second is delivered twice in the same batch.
    const first = await realCtx.executions.get(launches[0]!.jobName, launches[0]!.executionId);
    const claim = await realCtx.executions.claim(first!, { agentId: 'other', nodeName: 'o' }, Date.now());
    expect(claim.claimed).toBe(true);
    ran.length = 0;
    const batch = [...launches, launches[1]!];
    const verdicts = await Promise.all(
      processLaunches(
        realCtx,
        batch,
        me,
        batch.map(() => options),
      ),
    );
    // The first comes back to be checked again (running elsewhere, not in the lost sweep's index).
    expect(verdicts).toEqual(batch.map((_, i) => (i === 0 ? 'recheck' : 'done')));
    // Each of the other three ran exactly once; the first was left to the agent that claimed it.
    expect(ran.sort()).toEqual(
      launches
        .slice(1)
        .map((l) => `${l.jobName}/${l.executionId}`)
        .sort(),
    );
    const e0 = await realCtx.executions.get(launches[0]!.jobName, launches[0]!.executionId);
    expect(e0).toMatchObject({ status: 'running', agentId: 'other' });
  });
});

describe('agent concurrency', () => {
  it('runs at most `concurrency` executions at once; launches held past their fire time wait for a slot', async () => {
    const realCtx = createContext(stack.env);
    const now = Date.now();
    const fireAt = Math.ceil((now + 3_000) / 1_000) * 1_000;
    const jobs: JobRecord[] = [];
    for (let i = 0; i < 5; i++) {
      const def = validateJob({
        name: `cap-${i}`,
        schedule: `@at ${new Date(fireAt).toISOString()}`,
        executor_config: { shell: 'true', command: 'date +%s%3N; sleep 1; date +%s%3N' },
      });
      jobs.push(await realCtx.jobs.putDefinition(def, fireAt, null, now));
    }
    await planJobs(realCtx, jobs, fireAt + 1, now);
    const agent = new Agent(realCtx, { agentId: 'cap-agent', pollWaitSeconds: 1, concurrency: 2 });
    await agent.start();
    try {
      const runs = await waitFor(
        async () => {
          const all = await Promise.all(jobs.map((j) => realCtx.executions.listForJob(j.name)));
          const done = all.flat().filter((e) => e.status === 'succeeded');
          return done.length === 5 ? done : null;
        },
        30_000,
        'all five to succeed',
      );
      const spans = runs.map((e) => e.output.trim().split('\n').map(Number) as [number, number]);
      // How many were running at each moment one started (pairwise overlaps would count runs that
      // follow each other as concurrent).
      for (const [start] of spans) {
        const running = spans.filter(([s, e]) => s <= start && start < e).length;
        expect(running, JSON.stringify(spans)).toBeLessThanOrEqual(2);
      }
      // Two ran from the fire time; the others waited for a slot (none ran before the fire time).
      expect(Math.min(...spans.map(([s]) => s))).toBeGreaterThanOrEqual(fireAt);
      expect(Math.max(...spans.map(([s]) => s))).toBeGreaterThanOrEqual(fireAt + 2_000);
    } finally {
      await agent.stop(1_000);
    }
  }, 60_000);
});

describe('agent hand-offs', () => {
  it('passes on a launch it has no slot for while its fire time is far enough away, then keeps it', async () => {
    // One agent with one slot and two launches on one second: the second is handed on through the
    // queue (here it can only come back to the same agent) several times, never within 1 s of its fire
    // time, and then waits for the slot.
    const realCtx = createContext(stack.env);
    const now = Date.now();
    const fireAt = Math.ceil((now + 5_000) / 1_000) * 1_000;
    const jobs: JobRecord[] = [];
    for (let i = 0; i < 2; i++) {
      const def = validateJob({
        name: `handoff-${i}`,
        schedule: `@at ${new Date(fireAt).toISOString()}`,
        executor_config: { command: 'true' },
      });
      jobs.push(await realCtx.jobs.putDefinition(def, fireAt, null, now));
    }
    // Planned and sent as if 2.5 s before the fire time (the clock the delays are counted from too), so
    // the launches become visible ~4 s ahead of it (the real tick's delay would leave them ~1–2 s, too
    // close to the 1 s limit for a steady test).
    await planJobs({ ...realCtx, clock: () => fireAt - 2_500 }, jobs, fireAt + 1, fireAt - 2_500);
    const passes: number[] = [];
    const agent = new Agent(realCtx, {
      agentId: 'handoff-agent',
      pollWaitSeconds: 1,
      concurrency: 1,
      log: (l) => {
        // Only this test's launches (the queue may still hold other tests' far-future ones).
        if (l.msg === 'launch passed on' && String(l.job).startsWith('handoff-')) passes.push(Date.now());
      },
    });
    await agent.start();
    try {
      await waitFor(
        async () => {
          const all = await Promise.all(jobs.map((j) => realCtx.executions.listForJob(j.name)));
          return all.every((list) => list.some((e) => e.status === 'succeeded')) ? true : null;
        },
        30_000,
        'both launches to run',
      );
      expect(passes.length).toBeGreaterThan(3);
      expect(passes.length).toBeLessThanOrEqual(8);
      for (const t of passes) expect(fireAt - t).toBeGreaterThanOrEqual(900); // 1 s, less clock reads' skew
    } finally {
      await agent.stop(1_000);
    }
  }, 60_000);
});

type MiddlewareStack = { add: (mw: unknown, options: Record<string, unknown>) => void };

describe('agent errors', () => {
  it('delivers a launch again at once when its processing fails with an error, not after the visibility timeout', async () => {
    const realCtx = createContext(stack.env);
    // The agent's first read of the launch fails (as a DynamoDB request that failed past the SDK's
    // retries would); everything else goes to DynamoDB Local as usual.
    let failed = 0;
    (realCtx.clients.dynamodb.middlewareStack as unknown as MiddlewareStack).add(
      (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: unknown) => {
          if (/^(Batch)?Get(Item)?Command$/.test(context.commandName ?? '') && failed++ === 0) {
            throw new Error('injected: DynamoDB unavailable');
          }
          return next(args);
        },
      { step: 'initialize', name: 'fail-first-read' },
    );
    const now = Date.now();
    const fireAt = Math.ceil((now + 3_000) / 1_000) * 1_000;
    const def = validateJob({
      name: 'read-fails-once',
      schedule: `@at ${new Date(fireAt).toISOString()}`,
      executor_config: { command: 'true' },
    });
    const job = await realCtx.jobs.putDefinition(def, fireAt, null, now);
    await planJobs(realCtx, [job], fireAt + 1, now);
    const lines: Array<Record<string, unknown>> = [];
    const agent = new Agent(realCtx, {
      agentId: 'error-agent',
      pollWaitSeconds: 1,
      visibilityTimeoutSeconds: 60,
      log: (l) => lines.push(l),
    });
    await agent.start();
    try {
      const run = await waitFor(
        async () =>
          (await realCtx.executions.listForJob(job.name)).find((e) => e.status === 'succeeded') ?? null,
        20_000,
        'the launch to run after its failed first attempt',
      );
      expect(failed).toBeGreaterThan(1);
      expect(lines.some((l) => l.msg === 'launch failed; delivering it again')).toBe(true);
      expect(run.startedAt! - fireAt).toBeLessThan(10_000);
    } finally {
      await agent.stop(1_000);
    }
  }, 60_000);

  it('writes the result of a run that ended when its first result write fails, never a failure to retry', async () => {
    const realCtx = createContext(stack.env);
    // The first write of a result fails (past the SDK's retries); the job itself had run to its end.
    let failedWrites = 0;
    (realCtx.clients.dynamodb.middlewareStack as unknown as MiddlewareStack).add(
      (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: unknown) => {
          const expression =
            (args as { input?: { UpdateExpression?: string } }).input?.UpdateExpression ?? '';
          if (
            context.commandName === 'UpdateItemCommand' &&
            expression.includes('finishedAt = :now, exitCode')
          ) {
            if (failedWrites++ === 0) throw new Error('injected: DynamoDB unavailable');
          }
          return next(args);
        },
      { step: 'initialize', name: 'fail-first-result' },
    );
    const dir = mkdtempSync(join(tmpdir(), 'result-write-'));
    const now = Date.now();
    const fireAt = Math.ceil((now + 3_000) / 1_000) * 1_000;
    const def = validateJob({
      name: 'result-write-fails-once',
      schedule: `@at ${new Date(fireAt).toISOString()}`,
      retries: 1,
      retry_backoff: '0s',
      executor_config: { shell: 'true', command: `echo ran >> ${dir}/runs` },
    });
    const job = await realCtx.jobs.putDefinition(def, fireAt, null, now);
    await planJobs(realCtx, [job], fireAt + 1, now);
    const agent = new Agent(realCtx, { agentId: 'result-agent', pollWaitSeconds: 1 });
    await agent.start();
    try {
      const ended = await waitFor(
        async () =>
          (await realCtx.executions.listForJob(job.name)).find((e) => e.finishedAt !== null) ?? null,
        20_000,
        'the run to be recorded',
      );
      await new Promise((r) => setTimeout(r, 3_000)); // time for a retry, were one launched
      expect(failedWrites).toBeGreaterThan(1);
      expect(ended).toMatchObject({ status: 'succeeded', attempt: 1 });
      expect((await realCtx.executions.listForJob(job.name)).map((e) => e.attempt)).toEqual([1]);
      expect(readFileSync(join(dir, 'runs'), 'utf8')).toBe('ran\n');
    } finally {
      await agent.stop(1_000);
    }
  }, 60_000);
});

describe('a launch far ahead', () => {
  it('is hidden until near its fire time: SQS counts the 12-hour limit from the receive', async () => {
    const realCtx = createContext(stack.env);
    const { QueueUrl } = await realCtx.clients.sqs.send(
      new CreateQueueCommand({ QueueName: `far-ahead-${Date.now()}` }),
    );
    const launch = { jobName: 'far', executionId: 'x', scheduledAt: Date.now() + 3 * 86_400_000 };
    // As a tick's message arrives at the longest delay SQS allows, still days ahead of its fire time.
    await realCtx.clients.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify(launch) }));
    const [m] = await realCtx.dispatch.receive(QueueUrl!, { max: 1, waitSeconds: 5, visibilitySeconds: 30 });
    expect(m?.launch?.executionId).toBe('x');
    await new Promise((r) => setTimeout(r, 1_100)); // a moment after the receive, as an agent answers
    // The emulator enforces the limit: twelve hours from now is refused...
    await expect(realCtx.dispatch.hide(QueueUrl!, m!.receiptHandle, 43_200)).rejects.toThrow(
      /VisibilityTimeout/,
    );
    // ...and what a `later` answer asks for is taken (it was 43,200: the agent retried it every second).
    await realCtx.dispatch.hide(QueueUrl!, m!.receiptHandle, laterVisibilitySeconds(launch, Date.now()));
    expect(
      await realCtx.dispatch.receive(QueueUrl!, { max: 1, waitSeconds: 1, visibilitySeconds: 30 }),
    ).toEqual([]);
  });
});

describe("the worker's queue", () => {
  it('gets the batching window more of lead, and a lone launch a second more for a cold start', async () => {
    const worker = ctx.config.workerQueueUrl;
    expect(worker).toBeTruthy();
    const delays = new Map<string, number[]>();
    const spy = 'spy-worker-lead';
    ctx.clients.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageBatchCommand') {
          const input = args.input as { QueueUrl: string; Entries: Array<{ DelaySeconds: number }> };
          delays.set(input.QueueUrl, [
            ...(delays.get(input.QueueUrl) ?? []),
            ...input.Entries.map((e) => e.DelaySeconds),
          ]);
        }
        return next(args);
      },
      { step: 'initialize', name: spy },
    );
    const fireAt = Math.floor(clockNow / 1_000) * 1_000 + 10_000;
    const launch = (name: string, at = fireAt) => ({
      jobName: name,
      executionId: `${at}.0.1`,
      scheduledAt: at,
    });
    try {
      await ctx.dispatch.send(ctx.config.defaultQueueUrl, [launch('lead-default')], () => fireAt - 10_000);
      await ctx.dispatch.send(
        worker!,
        [launch('lead-worker'), launch('lead-worker-2', fireAt + 2_000)],
        () => fireAt - 10_000,
      );
    } finally {
      ctx.clients.sqs.middlewareStack.remove(spy);
    }
    // Visible 1 s early on an agents' queue (9 s of delay from 10 s ahead). On the worker's: the first
    // launch of the send 2.3 s early (window, start margin, a second for a cold start: 7 s of delay), the
    // next, 2 s after it, 1.3 s early (12 s ahead: 10 s of delay).
    expect(delays.get(ctx.config.defaultQueueUrl)).toEqual([9]);
    expect(delays.get(worker!)).toEqual([7, 10]);
    await drainQueue(1, 'lead-default');
  });

  it('is sent at the phase of the second that makes a launch visible no more than the tolerance early', async () => {
    // A worker queue of its own: the stack's local worker polls the stack's.
    const created = await ctx.clients.sqs.send(
      new CreateQueueCommand({ QueueName: `${ctx.config.queuePrefix}phase-worker` }),
    );
    const worker = created.QueueUrl!;
    const real = createContext({ ...stack.env, CRONPLANE_WORKER_QUEUE_URL: worker });
    const fireAt = Math.ceil(Date.now() / 1_000) * 1_000 + 5_000;
    const visibleBy = fireAt - workerLeadMs(1, false); // alone in its send: a cold start's margin
    // Start sending at the worst phase: sent at once, the launch would be visible ~0.9 s before its lead.
    while ((visibleBy - Date.now()) % 1_000 < 880 || (visibleBy - Date.now()) % 1_000 > 920) await sleep(5);
    const startedAt = Date.now();
    const launch = { jobName: 'phase-worker', executionId: `${fireAt}.0.1`, scheduledAt: fireAt };
    await real.dispatch.send(worker, [launch], real.clock);
    const sentAfter = Date.now() - startedAt;
    let arrivedAt = 0;
    while (arrivedAt === 0 && Date.now() < fireAt + 2_000) {
      const got = await real.clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: worker,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 600,
        }),
      );
      if ((got.Messages ?? []).some((m) => m.Body?.includes('phase-worker'))) arrivedAt = Date.now();
    }
    // It waited for the phase (~0.65 s), then became visible within the tolerance before its lead (the
    // emulator answers a waiting poll within ~100 ms of a message's due time: moto-server.test.ts).
    expect(sentAfter).toBeGreaterThan(500);
    expect(visibleBy - arrivedAt).toBeLessThanOrEqual(WORKER_PHASE_TOLERANCE_MS);
    expect(arrivedAt - visibleBy).toBeLessThan(150);
  });

  it("shares one wait among concurrent sends, and waits at most the budget a minute (a tick's chunks)", async () => {
    const created = await ctx.clients.sqs.send(
      new CreateQueueCommand({ QueueName: `${ctx.config.queuePrefix}phase-budget` }),
    );
    const worker = created.QueueUrl!;
    const now = clockNow + 300; // 400 ms off the phase: each send would wait 160 ms
    const base = createContext({ ...stack.env, CRONPLANE_WORKER_QUEUE_URL: worker }, () => now);
    const waits: number[] = [];
    const dispatcher = new Dispatcher(base.clients, base.config, async (ms) => {
      waits.push(ms);
      await sleep(20);
    });
    const launch = (i: number) => {
      const at = clockNow + 10_000 + i * 1_000;
      return { jobName: `budget-${i}`, executionId: `${at}.0.1`, scheduledAt: at };
    };
    // Ten sends at once (a tick's chunks and shards in one process): one wait.
    await Promise.all(Array.from({ length: 10 }, (_, i) => dispatcher.send(worker, [launch(i)], () => now)));
    expect(waits).toEqual([160]);
    // One after another: they wait until the minute's budget is spent, then go out as they can.
    for (let i = 10; i < 50; i++) await dispatcher.send(worker, [launch(i)], () => now);
    expect(waits.length).toBe(Math.floor(WORKER_PHASE_BUDGET_MS / 160));
    expect(waits.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(WORKER_PHASE_BUDGET_MS);
  });

  it('is sent at once by the API (a client waits on it): only the planner waits for the phase', async () => {
    const created = await ctx.clients.sqs.send(
      new CreateQueueCommand({ QueueName: `${ctx.config.queuePrefix}phase-api` }),
    );
    const worker = created.QueueUrl!;
    // A frozen clock 300 ms into a second: a launch on a whole second is 400 ms off its phase.
    const now = clockNow + 300;
    const base = createContext({ ...stack.env, CRONPLANE_WORKER_QUEUE_URL: worker }, () => now);
    // A tick's window, which the API plans a new job's launches up to.
    expect((await tick(base, 'phase-api')).leader).toBe(true);
    const waits: number[] = [];
    const spied: Context = {
      ...base,
      dispatch: new Dispatcher(base.clients, base.config, async (ms) => {
        waits.push(ms);
      }),
    };
    const fireAt = now - 300 + 10_000;
    await spied.dispatch.send(
      worker,
      [{ jobName: 'phase-tick', executionId: `${fireAt}.0.1`, scheduledAt: fireAt }],
      spied.clock,
    );
    expect(waits).toHaveLength(1);
    waits.length = 0;
    // Through the API: a new http job's first minute is planned and sent, without a wait.
    const server = await startHttpServer({ handler: createApiHandler(spied), port: 0 });
    try {
      const res = await api(server.url)('POST', '/v1/jobs', {
        name: 'phase-api',
        schedule: '@every 1s',
        executor: 'http',
        executor_config: { method: 'GET', url: 'http://127.0.0.1:9/' },
      });
      expect(res.status).toBe(201);
    } finally {
      await server.close();
    }
    const attrs = await ctx.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: worker,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesDelayed'],
      }),
    );
    const sent =
      Number(attrs.Attributes?.ApproximateNumberOfMessages) +
      Number(attrs.Attributes?.ApproximateNumberOfMessagesDelayed);
    expect(sent).toBeGreaterThan(10);
    expect(waits).toEqual([]);
  });
});

describe('a launch planned before a slow write', () => {
  it('is delayed from when it is sent, not from when it was planned', async () => {
    await createJob('slow-put');
    // The tick's puts take three seconds (a burst on a busy table): its launches are sent 3 s after "now".
    const executions = Object.create(ctx.executions) as Context['executions'];
    executions.createScheduledMany = async (list, now) => {
      const out = await ctx.executions.createScheduledMany(list, now);
      clockNow += 3_000;
      return out;
    };
    const plannedAt = clockNow;
    // What SQS is asked for, and the clock when it is asked: each launch becomes visible at sentAt + delay.
    const sent: Array<{ fireAt: number; visibleAt: number }> = [];
    const spy = 'spy-send-delays';
    ctx.clients.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageBatchCommand') {
          const input = args.input as { Entries: Array<{ MessageBody: string; DelaySeconds: number }> };
          for (const e of input.Entries) {
            const { scheduledAt } = JSON.parse(e.MessageBody) as { scheduledAt: number };
            sent.push({ fireAt: scheduledAt, visibleAt: clockNow + e.DelaySeconds * 1_000 });
          }
        }
        return next(args);
      },
      { step: 'initialize', name: spy },
    );
    try {
      const result = await tick({ ...ctx, executions }, 'slow-put');
      expect(result.errors).toEqual([]);
    } finally {
      ctx.clients.sqs.middlewareStack.remove(spy);
    }
    const ahead = sent.filter((s) => s.fireAt >= plannedAt + 5_000);
    expect(ahead.length).toBeGreaterThan(5);
    // Visible at least a second before its fire time (counted from the planning, it was 3 s too late:
    // two seconds after it).
    for (const s of ahead)
      expect(s.fireAt - s.visibleAt, `fire ${s.fireAt - plannedAt}`).toBeGreaterThanOrEqual(1_000);
  });
});
