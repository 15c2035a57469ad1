/**
 * Planning one job (`planJob`, `launchFireTimes`) and backfill against the real emulators: executions are
 * conditional puts in DynamoDB Local, launches go to the moto SQS default queue. The context runs on a
 * fake clock far from real time, and the stack's own tick is hourly, so only the tests plan.
 */
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  PurgeQueueInProgress,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Context, createContext } from '../../shared/context.ts';
import type { LaunchMessage } from '../../shared/dispatch/dispatch.ts';
import { NotFoundError, PausedError, ValidationError } from '../../shared/errors.ts';
import { groupIdFor } from '../../shared/executions/execution.ts';
import { firstFireAtOrAfter, validateJob } from '../../shared/jobs/job.ts';
import type { JobRecord } from '../../shared/ports.ts';
import { backfillJob, MAX_BACKFILL_FIRES } from '../../shared/scheduler/backfill.ts';
import { launchFireTimes, MAX_FIRES_PER_PASS, planJob, planJobs } from '../../shared/scheduler/plan.ts';
import { startTestStack } from './support/stack.ts';

type Stack = Awaited<ReturnType<typeof startTestStack>>;

const MIN = 60_000;
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
/** The tick's window end with the default period and margin. */
const windowEnd = (now: number) => now + 75_000;

let stack: Stack;
let ctx: Context;
let clockNow = 0;
let clockSeq = 0;
const createdJobs: string[] = [];

beforeAll(async () => {
  // The moto this suite starts inherits our environment: this lets `emptyQueue` purge at any time.
  const strictPurge = process.env.MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR;
  process.env.MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR = 'false';
  try {
    // No agents, no worker, and a tick only every hour: nothing but the tests plans or consumes launches.
    stack = await startTestStack({ agents: [], tickIntervalMs: 3_600_000, worker: false });
  } finally {
    if (strictPurge === undefined) delete process.env.MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR;
    else process.env.MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR = strictPurge;
  }
  ctx = createContext(stack.env, () => clockNow);
});
afterAll(async () => {
  await stack?.stop();
});
afterEach(async () => {
  // Jobs left behind would be planned by a later tick.
  for (const name of createdJobs.splice(0)) await ctx.jobs.delete(name);
  await emptyQueue();
});

/** A fake "now" a week away from every other test's (and years away from real time). */
function freshClock(): number {
  clockNow = Date.parse('2031-01-01T00:00:00Z') + clockSeq++ * 7 * DAY;
  return clockNow;
}

/** Stores a job (version 1) as the write path would, next fire time at or after `now`. */
async function putJob(input: Record<string, unknown>, now: number): Promise<JobRecord> {
  const def = validateJob({ executor_config: { command: 'true' }, ...input });
  createdJobs.push(def.name);
  return ctx.jobs.putDefinition(def, firstFireAtOrAfter(def, now), null, now);
}

/** Stores a new version of the job's definition (an edit). */
async function editJob(job: JobRecord, now: number): Promise<JobRecord> {
  return ctx.jobs.putDefinition(job.def, job.nextRunAt, job.version, now);
}

async function currentJob(name: string): Promise<JobRecord> {
  const job = await ctx.jobs.get(name);
  expect(job).not.toBeNull();
  return job!;
}

async function executionsOf(name: string) {
  const all = await ctx.executions.listForJob(name, { newestFirst: false });
  return all.sort((a, b) => a.scheduledAt - b.scheduledAt);
}

/**
 * The launch messages of one job now visible in the default queue (received and hidden for 10 minutes).
 * Messages are sent with SQS delays from the fake clock: fire times in the fake past arrive at once,
 * future ones only after their delay. moto reads WaitTimeSeconds 0 as the queue default (20 s), so 1 s.
 */
async function sentFor(name: string): Promise<LaunchMessage[]> {
  const out: LaunchMessage[] = [];
  for (;;) {
    const res = await ctx.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: ctx.config.defaultQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: 600,
      }),
    );
    const messages = res.Messages ?? [];
    if (messages.length === 0) return out;
    for (const m of messages) {
      const body = JSON.parse(m.Body ?? '{}') as LaunchMessage;
      if (body.jobName === name) out.push(body);
    }
  }
}

/**
 * Empties the default queue (after every test). moto's SQS slows down with every message a queue holds
 * (each send and receive walks all of them), and some tests send a thousand. The moto started for this
 * suite allows a purge at any time; one that enforces AWS's one purge a minute (an external endpoint)
 * is drained instead.
 */
async function emptyQueue(): Promise<void> {
  const QueueUrl = ctx.config.defaultQueueUrl;
  try {
    await ctx.clients.sqs.send(new PurgeQueueCommand({ QueueUrl }));
    return;
  } catch (error) {
    if (!(error instanceof PurgeQueueInProgress)) throw error;
  }
  for (;;) {
    const res = await ctx.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    const messages = res.Messages ?? [];
    if (messages.length === 0) return;
    await ctx.clients.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
}

describe('catch-up after an outage', () => {
  /** A job stored at T0, planned by the caller after `outageMs` of nothing. */
  async function afterOutage(input: Record<string, unknown>, outageMs: number) {
    const t0 = freshClock();
    const job = await putJob(input, t0);
    clockNow = t0 + outageMs;
    return { t0, job, now: clockNow };
  }

  it('counts fire times older than the window as missed and runs only the newest catchup_max of the rest', async () => {
    const { t0, job, now } = await afterOutage(
      { name: 'plan-cu', schedule: '@every 1m', catchup_window: '30m', catchup_max: 5 },
      2 * 60 * MIN,
    );
    const r = await planJob(ctx, job, windowEnd(now), now);
    const all = await executionsOf('plan-cu');
    const minutes = (trigger: string) =>
      all.filter((e) => e.trigger === trigger).map((e) => (e.scheduledAt - t0) / MIN);
    // 90 fire times before the 30-minute window, and 25 of the 30 inside it beyond catchup_max.
    expect(r.missed).toBe(115);
    expect(minutes('catchup')).toEqual([115, 116, 117, 118, 119]);
    expect(minutes('schedule')).toEqual([120, 121]);
    expect(all.every((e) => e.status === 'scheduled' && e.jobVersion === 1)).toBe(true);
    expect(await currentJob('plan-cu')).toMatchObject({ nextRunAt: t0 + 122 * MIN, missedCount: 115 });
    // Every execution was sent: those due arrive at once, the one a minute ahead waits out its SQS delay
    // (this is the suite's first test, so the queue held nothing before).
    const due = all.filter((e) => e.scheduledAt <= now);
    expect(due).toHaveLength(all.length - 1);
    const sent = await sentFor('plan-cu');
    expect(sent.map((m) => m.executionId).sort()).toEqual(due.map((e) => e.executionId).sort());
    const attrs = await ctx.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: ctx.config.defaultQueueUrl,
        AttributeNames: ['ApproximateNumberOfMessagesDelayed'],
      }),
    );
    expect(attrs.Attributes?.ApproximateNumberOfMessagesDelayed).toBe('1');
  });

  it('defaults to a one-hour window and at most ten runs', async () => {
    const { t0, job, now } = await afterOutage(
      { name: 'plan-cu-default', schedule: '@every 1m' },
      2 * 60 * MIN,
    );
    const r = await planJob(ctx, job, windowEnd(now), now);
    const catchup = (await executionsOf('plan-cu-default')).filter((e) => e.trigger === 'catchup');
    expect(r.missed).toBe(110);
    expect(catchup.map((e) => (e.scheduledAt - t0) / MIN)).toEqual([
      110, 111, 112, 113, 114, 115, 116, 117, 118, 119,
    ]);
  });

  it('keeps catchup_max even when the backlog is longer than the missed-count limit', async () => {
    // 4 h of an every-second job inside a 5 h window: 14,399 late fire times, more than `between`
    // returns at once. Only the newest 3 may run (this launched 500 before the bisection fix).
    const { job, now } = await afterOutage(
      { name: 'plan-cu-long', schedule: '@every 1s', catchup_window: '5h', catchup_max: 3 },
      4 * 60 * MIN,
    );
    const r = await planJob(ctx, job, windowEnd(now), now);
    const catchup = (await executionsOf('plan-cu-long')).filter((e) => e.trigger === 'catchup');
    expect(catchup.map((e) => now - e.scheduledAt)).toEqual([4_000, 3_000, 2_000]);
    expect(r.missed).toBeGreaterThanOrEqual(10_000);
  });

  it('launches at most MAX_FIRES_PER_PASS fire times per pass and continues on the next', async () => {
    const { job, now } = await afterOutage(
      { name: 'plan-cu-burst', schedule: '@every 1s', catchup_window: '1h', catchup_max: 1000 },
      30 * MIN,
    );
    const first = await planJob(ctx, job, windowEnd(now), now);
    expect(first.planned).toBe(MAX_FIRES_PER_PASS);
    expect(first.missed).toBe(1_799 - 1_000);
    const all = await executionsOf('plan-cu-burst');
    expect(all).toHaveLength(MAX_FIRES_PER_PASS);
    expect(all.every((e) => e.trigger === 'catchup')).toBe(true);
    // The newest 1000 late fire times start 1001 s before now.
    expect(all[0]!.scheduledAt).toBe(now - 1_001_000);
    const afterFirst = await currentJob('plan-cu-burst');
    expect(afterFirst.nextRunAt).toBe(all.at(-1)!.scheduledAt + 1_000);
    await emptyQueue();

    const second = await planJob(ctx, afterFirst, windowEnd(now), now);
    expect(second.planned).toBe(MAX_FIRES_PER_PASS);
    expect(second.missed).toBe(0);
    const both = await executionsOf('plan-cu-burst');
    expect(both).toHaveLength(2 * MAX_FIRES_PER_PASS);
    expect(new Set(both.map((e) => e.scheduledAt)).size).toBe(2 * MAX_FIRES_PER_PASS);
    expect(both[MAX_FIRES_PER_PASS]!.scheduledAt).toBe(afterFirst.nextRunAt);
  });

  it('plans nothing before starts_at and nothing after expires_at', async () => {
    const t0 = freshClock();
    await putJob(
      {
        name: 'plan-window',
        schedule: '@every 1m',
        starts_at: iso(t0 + 2 * MIN),
        expires_at: iso(t0 + 4 * MIN),
      },
      t0,
    );
    for (let m = 0; m <= 6; m++) {
      clockNow = t0 + m * MIN;
      await planJob(ctx, await currentJob('plan-window'), windowEnd(clockNow), clockNow);
    }
    const all = await executionsOf('plan-window');
    expect(all.map((e) => (e.scheduledAt - t0) / MIN)).toEqual([2, 3, 4]);
    expect((await currentJob('plan-window')).nextRunAt).toBeNull();
  });
});

describe('launchFireTimes', () => {
  it('creates one execution per fire time, derived from it, and nothing on a second call', async () => {
    const t0 = freshClock();
    const job = await putJob({ name: 'plan-lf', schedule: '@every 1m' }, t0);
    const times = [t0 - 2 * MIN, t0 - MIN];
    const ids = times.map((t) => `${groupIdFor(t)}.0.1`);
    const first = await launchFireTimes(ctx, job, times, t0, () => 'backfill');
    expect(first.created).toEqual(ids);
    const second = await launchFireTimes(ctx, job, times, t0, () => 'backfill');
    expect(second).toMatchObject({ created: [], existing: 2, resent: 2 });
    const all = await executionsOf('plan-lf');
    expect(all.map((e) => [e.executionId, e.scheduledAt, e.trigger])).toEqual([
      [ids[0], times[0], 'backfill'],
      [ids[1], times[1], 'backfill'],
    ]);
    // Both calls sent both (the second as the outbox resend of still-scheduled executions).
    const sent = await sentFor('plan-lf');
    expect(sent.map((m) => m.executionId).sort()).toEqual([...ids, ...ids].sort());
  });

  it('does not pull an execution planned for a newer job version back to a stale copy', async () => {
    const t0 = freshClock();
    const v1 = await putJob({ name: 'plan-stale', schedule: '@every 1m' }, t0);
    const v2 = await editJob(v1, t0);
    expect(v2.version).toBe(2);
    await launchFireTimes(ctx, v2, [t0 + MIN], t0, () => 'schedule');
    const again = await launchFireTimes(ctx, v1, [t0 + MIN], t0, () => 'schedule');
    expect(again).toMatchObject({ created: [], existing: 1, resent: 0 });
    const all = await executionsOf('plan-stale');
    expect(all).toHaveLength(1);
    expect(all[0]!.jobVersion).toBe(2);
  });

  it('re-targets a scheduled execution of an older version at the current one', async () => {
    const t0 = freshClock();
    const v1 = await putJob({ name: 'plan-edited', schedule: '@every 1m' }, t0);
    await launchFireTimes(ctx, v1, [t0 + MIN], t0, () => 'schedule');
    const v2 = await editJob(v1, t0);
    const again = await launchFireTimes(ctx, v2, [t0 + MIN], t0, () => 'schedule');
    expect(again).toMatchObject({ created: [], existing: 1, resent: 1 });
    const all = await executionsOf('plan-edited');
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ jobVersion: 2, status: 'scheduled' });
  });
});

describe('backfill', () => {
  /** A job created an hour before `now`; the clock stands at `now`. */
  async function backfillJobAt(name: string, input: (now: number) => Record<string, unknown> = () => ({})) {
    const now = freshClock();
    await putJob({ name, schedule: '@every 1m', ...input(now) }, now - 60 * MIN);
    return now;
  }

  async function fieldOf(p: Promise<unknown>): Promise<string> {
    const error = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).field;
  }

  it('launches every fire time in [from, to) with trigger backfill and ids derived from the fire time', async () => {
    const now = await backfillJobAt('bf-range');
    const r = await backfillJob(ctx, 'bf-range', { from: iso(now - 10 * MIN), to: iso(now - 7 * MIN) });
    const times = [now - 10 * MIN, now - 9 * MIN, now - 8 * MIN];
    const ids = times.map((t) => `${groupIdFor(t)}.0.1`);
    expect(r).toEqual({ job: 'bf-range', launched: 3, existing: 0, failed: 0, executions: ids });
    const all = await executionsOf('bf-range');
    expect(all.map((e) => [e.executionId, e.scheduledAt, e.trigger, e.status])).toEqual(
      times.map((t, i) => [ids[i], t, 'backfill', 'scheduled']),
    );
    // Past fire times are sent without delay.
    const sent = await sentFor('bf-range');
    expect(sent.map((m) => m.scheduledAt).sort((a, b) => a - b)).toEqual(times);
  });

  it('is idempotent: a second backfill over the same range creates nothing', async () => {
    const now = await backfillJobAt('bf-again');
    const range = { from: iso(now - 10 * MIN), to: iso(now) };
    const first = await backfillJob(ctx, 'bf-again', range);
    expect(first.launched).toBe(10);
    const again = await backfillJob(ctx, 'bf-again', range);
    expect(again).toMatchObject({ launched: 0, existing: 10, executions: [] });
    expect(await executionsOf('bf-again')).toHaveLength(10);
  });

  it('launches only fire times inside [starts_at, expires_at]', async () => {
    const now = await backfillJobAt('bf-window', (at) => ({
      starts_at: iso(at - 8 * MIN),
      expires_at: iso(at - 6 * MIN),
    }));
    const r = await backfillJob(ctx, 'bf-window', { from: iso(now - 20 * MIN), to: iso(now) });
    expect(r.launched).toBe(3);
    expect((await executionsOf('bf-window')).map((e) => e.scheduledAt)).toEqual([
      now - 8 * MIN,
      now - 7 * MIN,
      now - 6 * MIN,
    ]);
  });

  it(`accepts ${MAX_BACKFILL_FIRES} fire times and refuses one more, naming to`, async () => {
    const now = await backfillJobAt('bf-limit', () => ({ schedule: '@every 1s' }));
    const from = now - 2 * 3_600_000;
    const ok = await backfillJob(ctx, 'bf-limit', {
      from: iso(from),
      to: iso(from + MAX_BACKFILL_FIRES * 1_000),
    });
    expect(ok.launched).toBe(MAX_BACKFILL_FIRES);
    expect(await fieldOf(backfillJob(ctx, 'bf-limit', { from: iso(from), to: iso(from + 1_001_000) }))).toBe(
      'to',
    );
    expect(await executionsOf('bf-limit')).toHaveLength(MAX_BACKFILL_FIRES);
  });

  it('refuses bad ranges with a 400 that names the field', async () => {
    const now = await backfillJobAt('bf-bad');
    const bf = (input: Record<string, unknown>) => fieldOf(backfillJob(ctx, 'bf-bad', input));
    expect(await bf({ to: iso(now) })).toBe('from');
    expect(await bf({ from: 'yesterday', to: iso(now) })).toBe('from');
    expect(await bf({ from: iso(now - MIN) })).toBe('to');
    expect(await bf({ from: iso(now - MIN), to: 42 })).toBe('to');
    expect(await bf({ from: iso(now - MIN), to: iso(now - MIN) })).toBe('to');
    expect(await bf({ from: iso(now - MIN), to: iso(now + MIN) })).toBe('to');
    expect(await bf({ from: iso(now - 31 * DAY), to: iso(now - MIN) })).toBe('from');
    expect(await executionsOf('bf-bad')).toHaveLength(0);
  });

  it('refuses jobs without fire times, unknown jobs and a paused scheduler', async () => {
    const now = await backfillJobAt('bf-manual', () => ({ schedule: '@manually' }));
    await putJob({ name: 'bf-paused', schedule: '@every 1m' }, now - 60 * MIN);
    const range = { from: iso(now - 10 * MIN), to: iso(now) };
    expect(await fieldOf(backfillJob(ctx, 'bf-manual', range))).toBe('schedule');
    await expect(backfillJob(ctx, 'bf-nope', range)).rejects.toBeInstanceOf(NotFoundError);
    await ctx.control.setPaused(true, now);
    try {
      await expect(backfillJob(ctx, 'bf-paused', range)).rejects.toBeInstanceOf(PausedError);
    } finally {
      await ctx.control.setPaused(false, now);
    }
    expect(await executionsOf('bf-manual')).toHaveLength(0);
    expect(await executionsOf('bf-paused')).toHaveLength(0);
  });
});

describe('planning a burst of due jobs in bulk (planJobs)', () => {
  it('puts, sends and advances 230 jobs in bulk; a second pass creates nothing and answers per job', async () => {
    const now = freshClock();
    const fireAt = now + 30_000;
    const names = Array.from({ length: 230 }, (_, i) => `plan-bulk-${i}`);
    const jobs = await Promise.all(
      names.map((name) => putJob({ name, schedule: `@at ${iso(fireAt)}` }, now)),
    );
    // One of them was already planned for this fire time (an overlapping planner got there first) and
    // its execution has run: the bulk put must answer it from the transaction's reasons, not rewrite it.
    const first = await launchFireTimes(ctx, jobs[7]!, [fireAt], now, () => 'schedule');
    expect(first.created).toHaveLength(1);
    const ran = (await executionsOf('plan-bulk-7'))[0]!;
    await ctx.executions.end(ran, 'scheduled', 'skipped', 'test', now);
    // Another was edited after we read it: its compare-and-set must fail alone.
    await editJob(jobs[100]!, now);

    const results = await planJobs(ctx, jobs, windowEnd(now), now);
    expect(results.filter((r) => r.planned === 1)).toHaveLength(229);
    expect(results[7]).toMatchObject({ planned: 0, resent: 0 });
    expect(results.filter((r) => r.advanced)).toHaveLength(229);
    expect(results[100]!.advanced).toBe(false);
    for (const name of names) {
      const list = await executionsOf(name);
      expect(list, name).toHaveLength(1);
      expect(list[0]!.executionId).toBe(`${groupIdFor(fireAt)}.0.1`);
    }
    expect((await executionsOf('plan-bulk-7'))[0]!.status).toBe('skipped');
    expect((await currentJob('plan-bulk-3')).nextRunAt).toBeNull();
    expect((await currentJob('plan-bulk-100')).nextRunAt).toBe(fireAt);

    // The same window again (a duplicate tick with a stale read): nothing new, every scheduled one is
    // re-sent (the outbox), nothing advanced.
    const again = await planJobs(ctx, jobs, windowEnd(now), now);
    expect(again.every((r) => r.planned === 0 && !r.advanced)).toBe(true);
    expect(again.filter((r) => r.resent === 1)).toHaveLength(229); // all but the skipped one
    for (const name of names) expect(await executionsOf(name), name).toHaveLength(1);
  }, 120_000);
});
