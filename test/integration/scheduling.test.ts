/**
 * Reliable scheduling against the real emulators: catch-up after an outage, pause, the job's active
 * window, disabled/toggle, edits after planning, the preview API and `next` in the job's time zone,
 * backfill, and `~` schedules.
 *
 * The tests drive a fake clock. Job writes go through a second HTTP server that runs the very same API
 * handler over a context with that clock (the stack's own server uses the real clock), and the tick is
 * called with it. The fake clock only moves forward and always beyond the tick cursor: a write plans
 * [now, cursor) at once, so a cursor far ahead of "now" would plan hours of fire times.
 */
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.ts';
import { createApiHandler } from '../../functions/api/app.ts';
import { startHttpServer } from '../../local/http-server.ts';
import { type Context, createContext } from '../../shared/context.ts';
import { groupIdFor } from '../../shared/executions/execution.ts';
import { MAX_FIRES_PER_PASS } from '../../shared/scheduler/plan.ts';
import { tick } from '../../shared/scheduler/tick.ts';
import { type Api, api, startTestStack, waitFor } from './support/stack.ts';

type Stack = Awaited<ReturnType<typeof startTestStack>>;
let stack: Stack;
let ctx: Context;
let clockNow = Date.parse('2031-01-01T00:00:00Z');
/** The API over the fake clock. */
let fake: Api;
let closeFake: () => Promise<void>;
let day = 0;

const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

beforeAll(async () => {
  // No agents and no timer-driven ticks: the tests drive the scheduler and start agents themselves.
  // The windows below are worked out for a 7 s look-ahead (5 s period + 2 s margin).
  stack = await startTestStack({
    agents: [],
    tickIntervalMs: 3_600_000,
    settings: { CRONPLANE_TICK_PERIOD_MS: '5000', CRONPLANE_TICK_MARGIN_MS: '2000' },
  });
  ctx = createContext(stack.env, () => clockNow);
  const server = await startHttpServer({ handler: createApiHandler(ctx), port: 0 });
  fake = api(server.url);
  closeFake = server.close;
});
afterAll(async () => {
  await closeFake?.();
  await stack?.stop();
});
afterEach(async () => {
  await ctx.control.setPaused(false, clockNow);
  // Jobs left behind would be caught up by a later test's tick days of fake time later.
  for (const job of await ctx.jobs.list()) await ctx.jobs.delete(job.name);
});

/** Moves the fake clock forward (never back: see the file comment). */
function setClock(t: number): number {
  expect(t).toBeGreaterThanOrEqual(clockNow);
  clockNow = t;
  return t;
}

/** A fresh fake day for a test: a UTC midnight at least a day after the previous test's clock. */
function newDay(): number {
  day++;
  return setClock((Math.floor(clockNow / 86_400_000) + 2) * 86_400_000);
}

async function createJob(job: Record<string, unknown>) {
  const res = await fake('POST', '/v1/jobs', { executor_config: { command: `echo ${job.name}` }, ...job });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function tickAt(t: number) {
  setClock(t);
  const report = await tick(ctx, 'scheduling-test');
  expect(report.errors).toEqual([]);
  return report;
}

async function executions(name: string) {
  return (await ctx.executions.listForJob(name, { newestFirst: false })).map((e) => ({
    at: e.scheduledAt,
    id: e.executionId,
    trigger: e.trigger,
    status: e.status,
    reason: e.reason,
    output: e.output,
  }));
}

/** Hides (for 10 minutes) whatever earlier tests left in the default queue. */
async function drainQueue(): Promise<void> {
  for (;;) {
    // moto reads WaitTimeSeconds 0 as "the queue's default" (20 s), so wait 1 s per call.
    const res = await ctx.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: ctx.config.defaultQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: 600,
      }),
    );
    if ((res.Messages ?? []).length === 0) return;
  }
}

/** Runs an agent (on the fake clock) until `done` holds. */
async function withAgent(done: () => Promise<boolean>, what: string): Promise<void> {
  const agent = new Agent(ctx, { agentId: `sched-agent-${day}`, pollWaitSeconds: 1, concurrency: 8 });
  await agent.start();
  try {
    await waitFor(done, 30_000, what);
  } finally {
    await agent.stop(2_000);
  }
}

describe('catch-up after an outage', () => {
  it('counts fire times older than the window as missed and runs only the newest catchup_max', async () => {
    const t0 = newDay();
    await createJob({ name: 'cu-custom', schedule: '@every 1m', catchup_window: '30m', catchup_max: 5 });
    await createJob({ name: 'cu-default', schedule: '@every 1m' });
    // The scheduler is down for two hours.
    const now = t0 + 120 * MIN;
    const report = await tickAt(now);
    expect(report.missed).toBe(115 + 110);

    const custom = await executions('cu-custom');
    const catchup = custom.filter((e) => e.trigger === 'catchup');
    expect(catchup.map((e) => (e.at - t0) / MIN)).toEqual([115, 116, 117, 118, 119]);
    expect(catchup.every((e) => e.at >= now - 30 * MIN)).toBe(true);
    // The tick's window (period + margin) is 7 s in the test stack: one scheduled fire time ahead.
    expect(custom.filter((e) => e.trigger === 'schedule').map((e) => (e.at - t0) / MIN)).toEqual([120]);
    const job = (await fake('GET', '/v1/jobs/cu-custom')).body;
    // 90 fire times before the 30-minute window, and 25 of the 30 in it beyond catchup_max.
    expect(job.missed_count).toBe(115);
    expect(job.next).toBe(iso(t0 + 121 * MIN));

    // Defaults: a one-hour window, at most ten.
    const defaults = await executions('cu-default');
    expect(defaults.filter((e) => e.trigger === 'catchup').map((e) => (e.at - t0) / MIN)).toEqual([
      110, 111, 112, 113, 114, 115, 116, 117, 118, 119,
    ]);
    expect((await fake('GET', '/v1/jobs/cu-default')).body.missed_count).toBe(110);

    // The API shows the trigger.
    const listed = (await fake('GET', '/v1/jobs/cu-custom/executions?_order=ASC')).body;
    expect(listed[0]).toMatchObject({ trigger: 'catchup', scheduled_at: iso(t0 + 115 * MIN) });
  });
});

describe('pause', () => {
  it('plans nothing and holds the cursor while paused; catch-up handles the gap after unpause', async () => {
    const t0 = newDay();
    await createJob({ name: 'paused-job', schedule: '@every 1m' });
    await tickAt(t0);
    expect(await executions('paused-job')).toHaveLength(1);

    expect((await stack.api('POST', '/v1/pause')).body).toEqual({ paused: true });
    expect((await fake('GET', '/v1/pause')).body).toEqual({ paused: true });
    const cursor = await ctx.control.getCursor(0);
    const report = await tickAt(t0 + 10 * MIN);
    expect(report).toMatchObject({ paused: true, planned: 0, jobs: 0 });
    expect(await ctx.control.getCursor(0)).toBe(cursor);
    expect(await executions('paused-job')).toHaveLength(1);
    const refused = await fake('POST', '/v1/jobs', {
      name: 'while-paused',
      schedule: '@every 1m',
      executor_config: { command: 'true' },
    });
    expect(refused.status).toBe(503);
    expect(await ctx.jobs.get('while-paused')).toBeNull();

    expect((await stack.api('POST', '/v1/unpause')).body).toEqual({ paused: false });
    expect((await fake('GET', '/v1/pause')).body).toEqual({ paused: false });
    await tickAt(t0 + 20 * MIN);
    expect(await ctx.control.getCursor(0)).toBeGreaterThan(cursor!);
    const all = await executions('paused-job');
    // Missed: minutes 1..19; the newest ten run as catch-up, the other nine are counted.
    expect(all.filter((e) => e.trigger === 'catchup').map((e) => (e.at - t0) / MIN)).toEqual([
      10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
    ]);
    expect(all.filter((e) => e.trigger === 'schedule').map((e) => (e.at - t0) / MIN)).toEqual([0, 20]);
    expect((await fake('GET', '/v1/jobs/paused-job')).body.missed_count).toBe(9);
  });
});

describe('active window and disabled', () => {
  it('launches nothing before starts_at or after expires_at', async () => {
    const t0 = newDay();
    const job = await createJob({
      name: 'windowed',
      schedule: '@every 1m',
      starts_at: iso(t0 + 2 * MIN),
      expires_at: iso(t0 + 4 * MIN),
    });
    expect(job.next).toBe(iso(t0 + 2 * MIN));
    for (let m = 0; m <= 6; m++) await tickAt(t0 + m * MIN);
    expect((await executions('windowed')).map((e) => (e.at - t0) / MIN)).toEqual([2, 3, 4]);
    expect((await fake('GET', '/v1/jobs/windowed')).body.next).toBeNull();
  });

  it('launches nothing while disabled, skips what was planned when toggled off, resumes when toggled on', async () => {
    const t0 = newDay();
    const created = await createJob({ name: 'toggled', schedule: '@every 1m', disabled: true });
    expect(created.next).toBeNull();
    await tickAt(t0 + 30_000);
    expect(await executions('toggled')).toEqual([]);

    const on = await fake('POST', '/v1/jobs/toggled/toggle');
    expect(on.body).toMatchObject({ disabled: false, next: iso(t0 + MIN) });
    // A tick plans minute 1 ahead of time; then the job is disabled before it fires.
    await tickAt(t0 + MIN - 5_000);
    expect(await executions('toggled')).toHaveLength(1);
    setClock(t0 + MIN - 3_000);
    const off = await fake('POST', '/v1/jobs/toggled/toggle');
    expect(off.body).toMatchObject({ disabled: true, next: null });
    expect(await executions('toggled')).toEqual([
      expect.objectContaining({ at: t0 + MIN, status: 'skipped', reason: 'job disabled' }),
    ]);
    for (const m of [2, 3]) await tickAt(t0 + m * MIN);
    expect(await executions('toggled')).toHaveLength(1);

    setClock(t0 + 3 * MIN + 30_000);
    expect((await fake('POST', '/v1/jobs/toggled/toggle')).body).toMatchObject({
      disabled: false,
      next: iso(t0 + 4 * MIN),
    });
    await tickAt(t0 + 4 * MIN);
    // Resumed at the next fire time; the disabled minutes are not caught up.
    expect((await executions('toggled')).map((e) => [(e.at - t0) / MIN, e.status, e.trigger])).toEqual([
      [1, 'skipped', 'schedule'],
      [4, 'scheduled', 'schedule'],
    ]);
  });
});

describe('a job edited after planning', () => {
  it('skips planned executions that no longer apply, with the reason, and runs each fire time once', async () => {
    await drainQueue();
    const t0 = newDay();
    const def = { name: 'edited', schedule: '@every 2s', executor_config: { command: 'echo v1' } };
    await createJob(def);
    await tickAt(t0);
    expect((await executions('edited')).map((e) => (e.at - t0) / 1000)).toEqual([0, 2, 4, 6]);

    setClock(t0 + 1_000);
    const put = await fake('PUT', '/v1/jobs/edited', {
      ...def,
      schedule: '@every 3s',
      executor_config: { command: 'echo v2' },
    });
    expect(put.status).toBe(201);
    const after = await executions('edited');
    expect(after.map((e) => [(e.at - t0) / 1000, e.status, e.reason])).toEqual([
      [0, 'skipped', 'job changed after planning'],
      [2, 'skipped', 'job changed after planning'],
      [3, 'scheduled', null],
      [4, 'skipped', 'job changed after planning'],
      // A fire time of both schedules keeps its one execution, now under the new definition.
      [6, 'scheduled', null],
    ]);

    // Every message (old and new, some sent twice) reaches an agent: only the new ones run, once.
    setClock(t0 + 10_000);
    await withAgent(
      async () => (await executions('edited')).filter((e) => e.status === 'succeeded').length === 2,
      'the two current executions to succeed',
    );
    await new Promise((r) => setTimeout(r, 1_500));
    const final = await executions('edited');
    expect(final.map((e) => [(e.at - t0) / 1000, e.status, e.output])).toEqual([
      [0, 'skipped', ''],
      [2, 'skipped', ''],
      [3, 'succeeded', 'v2\n'],
      [4, 'skipped', ''],
      [6, 'succeeded', 'v2\n'],
    ]);
  });
});

describe('schedule preview and time zones', () => {
  it('previews DST-adjusted fire times and names the bad field', async () => {
    const q = new URLSearchParams({
      schedule: '0 30 2 * * *',
      timezone: 'America/New_York',
      from: '2026-03-07T00:00:00Z',
      count: '3',
    });
    const res = await stack.api('GET', `/v1/schedule/preview?${q}`);
    expect(res.status).toBe(200);
    // 02:30 does not exist on 2026-03-08 (spring forward): it fires at 03:00 EDT.
    expect(res.body).toEqual({
      times: ['2026-03-07T07:30:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z'],
    });
    const bad = async (params: Record<string, string>) => {
      const r = await stack.api('GET', `/v1/schedule/preview?${new URLSearchParams(params)}`);
      expect(r.status).toBe(400);
      return r.body.field as string;
    };
    expect(await bad({ schedule: 'every tuesday' })).toBe('schedule');
    expect(await bad({ timezone: 'America/New_York' })).toBe('schedule');
    expect(await bad({ schedule: '@daily', timezone: 'Mars/Olympus_Mons' })).toBe('timezone');
    for (const count of ['0', '-1', 'x', '1001'])
      expect(await bad({ schedule: '@daily', count })).toBe('count');
    expect(await bad({ schedule: '@daily', from: 'tomorrow' })).toBe('from');
  });

  it('gives each job its `next` in its own time zone', async () => {
    // Winter: London is on GMT, and 2040-03-11 is New York's spring-forward day.
    setClock(Date.parse('2040-03-10T12:00:00Z'));
    const london = await createJob({ name: 'tz-london', schedule: '@daily', timezone: 'Europe/London' });
    expect(london.next).toBe('2040-03-11T00:00:00.000Z');
    const ny = await createJob({ name: 'tz-ny', schedule: '0 30 2 * * *', timezone: 'America/New_York' });
    expect(ny.next).toBe('2040-03-11T07:00:00.000Z');
    const utc = await createJob({ name: 'tz-utc', schedule: '@daily' });
    expect(utc.next).toBe('2040-03-11T00:00:00.000Z');
    // Summer: midnight in London is 23:00Z the day before.
    setClock(Date.parse('2040-07-01T12:00:00Z'));
    const summer = await createJob({ name: 'tz-london', schedule: '@daily', timezone: 'Europe/London' });
    expect(summer.next).toBe('2040-07-01T23:00:00.000Z');
  });
});

describe('backfill', () => {
  it('launches the fire times of a range once, even when called twice or overlapping the scheduler', async () => {
    await drainQueue();
    const t0 = newDay();
    await createJob({ name: 'bf', schedule: '@every 1m' });
    await tickAt(t0);
    setClock(t0 + 5 * MIN);

    const res = await fake('POST', '/v1/jobs/bf/backfill', {
      from: iso(t0 - 3 * MIN),
      to: iso(t0 + 3 * MIN),
    });
    expect(res.status).toBe(202);
    const fresh = [-3, -2, -1, 1, 2].map((m) => `${groupIdFor(t0 + m * MIN)}.0.1`);
    // Minute 0 was launched by the scheduler already.
    expect(res.body).toEqual({ job: 'bf', launched: 5, existing: 1, failed: 0, executions: fresh });

    // Twice: nothing new (query parameters work too).
    const q = new URLSearchParams({ from: iso(t0 - 3 * MIN), to: iso(t0 + 3 * MIN) });
    const again = await fake('POST', `/v1/jobs/bf/backfill?${q}`);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ launched: 0, existing: 6, executions: [] });

    // The scheduler catches up minutes 1–4: the backfilled 1 and 2 are not launched again.
    await tickAt(t0 + 5 * MIN);
    const all = await executions('bf');
    expect(all.map((e) => [(e.at - t0) / MIN, e.trigger])).toEqual([
      [-3, 'backfill'],
      [-2, 'backfill'],
      [-1, 'backfill'],
      [0, 'schedule'],
      [1, 'backfill'],
      [2, 'backfill'],
      [3, 'catchup'],
      [4, 'catchup'],
      [5, 'schedule'],
    ]);

    // They run now, each once, though several were sent more than once.
    await withAgent(
      async () => (await executions('bf')).every((e) => e.status === 'succeeded'),
      'every execution of bf to succeed',
    );
    await new Promise((r) => setTimeout(r, 1_500));
    const ran = await executions('bf');
    expect(ran).toHaveLength(9);
    expect(ran.every((e) => e.status === 'succeeded' && e.output === 'bf\n')).toBe(true);
  });

  it('refuses bad ranges with a 400 naming the field', async () => {
    const t0 = newDay();
    await createJob({ name: 'bf-bad', schedule: '@every 1s' });
    setClock(t0 + 60 * MIN);
    const field = async (body: unknown, status = 400) => {
      const r = await fake('POST', '/v1/jobs/bf-bad/backfill', body);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      return r.body.field as string;
    };
    expect(await field({ to: iso(t0) })).toBe('from');
    expect(await field({ from: 'last week', to: iso(t0) })).toBe('from');
    expect(await field({ from: iso(t0) })).toBe('to');
    expect(await field({ from: iso(t0), to: iso(t0) })).toBe('to');
    expect(await field({ from: iso(t0 + MIN), to: iso(t0) })).toBe('to');
    expect(await field({ from: iso(t0), to: iso(clockNow + 1_000) })).toBe('to');
    // 1001 fire times of an every-second job.
    expect(await field({ from: iso(t0), to: iso(t0 + 1_001_000) })).toBe('to');
    expect(await field({ from: iso(t0 - 40 * 86_400_000), to: iso(t0) })).toBe('from');
    expect(
      (await fake('POST', '/v1/jobs/missing/backfill', { from: iso(t0), to: iso(t0 + MIN) })).status,
    ).toBe(404);
    expect(await executions('bf-bad')).toEqual([]);
  });
});

describe('hashed (~) schedules', () => {
  it('give the same job name the same stable fire times', async () => {
    const t0 = newDay();
    const schedule = '~ ~ * * * *';
    const first = await createJob({ name: 'hashed-job', schedule });
    await fake('DELETE', '/v1/jobs/hashed-job');
    const again = await createJob({ name: 'hashed-job', schedule });
    expect(again.next).toBe(first.next);
    // Hourly at a minute and second derived from the name.
    const next = Date.parse(first.next);
    expect(next).toBeGreaterThanOrEqual(t0);
    expect(next).toBeLessThan(t0 + 3_600_000);

    const preview = async (job?: string) => {
      const q = new URLSearchParams({ schedule, from: iso(t0), count: '3', ...(job ? { job } : {}) });
      return (await stack.api('GET', `/v1/schedule/preview?${q}`)).body.times as string[];
    };
    const times = await preview('hashed-job');
    expect(times[0]).toBe(first.next);
    expect(times.map((t) => Date.parse(t) - next)).toEqual([0, 3_600_000, 7_200_000]);
    expect(await preview('hashed-job')).toEqual(times);
    // Other names spread elsewhere over the hour (these two differ).
    expect(await preview('another-job')).not.toEqual(times);
  });
});

// Last: it leaves 500 launch messages in the default queue that the agent tests would have to wade through.
describe('catch-up burst bound', () => {
  it(`never launches more than MAX_FIRES_PER_PASS (${MAX_FIRES_PER_PASS}) fire times of a job per pass`, async () => {
    const t0 = newDay();
    await createJob({ name: 'cu-burst', schedule: '@every 1s', catchup_window: '1h', catchup_max: 1000 });
    const report = await tickAt(t0 + 30 * MIN);
    expect(report.planned).toBe(MAX_FIRES_PER_PASS);
    const all = await executions('cu-burst');
    expect(all).toHaveLength(MAX_FIRES_PER_PASS);
    expect(all.every((e) => e.trigger === 'catchup')).toBe(true);
    // The newest 1000 of the 1799 late fire times, the first 500 of them in this pass.
    expect(all[0]!.at).toBe(clockNow - 1_001_000);
    expect((await fake('GET', '/v1/jobs/cu-burst')).body).toMatchObject({
      missed_count: 799,
      next: iso(all.at(-1)!.at + 1_000),
    });
  });
});
