/**
 * Sharded planning against the real emulators: jobs spread over due shards, each shard ticked under its
 * own lease and cursor by the coordinator; resharding up and down while time runs; a shard tick that dies
 * holding its lease; and the AWS fan-out path (shard-tick messages through SQS into the tick handler).
 * Every test asserts the same thing at the end: each job has exactly one execution per fire time, with no
 * fire time missing between its first and the last window planned.
 */
import { CreateQueueCommand, type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Context as LambdaContext, SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Context, createContext } from '../../shared/context.ts';
import { leaseName } from '../../shared/control/control-keys.ts';
import { ACTIVE_SHARDS, activeShardOf } from '../../shared/executions/executions-store.ts';
import { upsertJob } from '../../shared/jobs/jobs-service.ts';
import {
  type CoordinatorReport,
  coordinate,
  inProcessFanOut,
  MAX_SHARDS,
  RESHARD_GRACE_MS,
  type ShardFanOut,
} from '../../shared/scheduler/coordinator.ts';
import { runShardTicks, shardToTick, sqsFanOut } from '../../shared/scheduler/shard-ticks.ts';
import { tick } from '../../shared/scheduler/tick.ts';
import { startTestStack, waitFor } from './support/stack.ts';

type Stack = Awaited<ReturnType<typeof startTestStack>>;
let stack: Stack;
let clockNow = 0;
const contexts = new Map<number, Context>();
const EVERY_MS = 10_000;
const ROUND_MS = 5_000;

/** A context as a function deployed with CRONPLANE_DUE_SHARDS = `shards` sees it, on the test's clock. */
function withShards(shards: number): Context {
  let ctx = contexts.get(shards);
  if (!ctx) {
    ctx = createContext({ ...stack.env, CRONPLANE_DUE_SHARDS: String(shards) }, () => clockNow);
    contexts.set(shards, ctx);
  }
  return ctx;
}

beforeAll(async () => {
  // No agents and no timer-driven ticks: the tests drive the coordinator themselves.
  stack = await startTestStack({ agents: [], tickIntervalMs: 3_600_000 });
});
afterAll(async () => {
  await stack?.stop();
});
beforeEach(async () => {
  // Fake time only moves forward (cursors never do), and each test starts past every lease and grace.
  clockNow = Math.max(clockNow, Date.parse('2031-01-01T00:00:00Z')) + 86_400_000;
});
afterEach(async () => {
  const ctx = withShards(1);
  for (const job of await ctx.jobs.list()) await ctx.jobs.delete(job.name);
});

async function createJobs(ctx: Context, prefix: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  for (const name of names) {
    await upsertJob(ctx, { name, schedule: '@every 10s', executor_config: { command: 'true' } });
  }
  return names;
}

/** One coordinator round `ROUND_MS` of fake time after the last, as a function with `shards` runs it. */
async function round(shards: number, fanOut?: (ctx: Context) => ShardFanOut) {
  clockNow += ROUND_MS;
  const ctx = withShards(shards);
  return coordinate(ctx, `coordinator-${shards}`, (fanOut ?? ((c) => inProcessFanOut(c, 'shard-tick')))(ctx));
}

/**
 * Each job: one execution per fire time, and the fire times `EVERY_MS` apart with none missing from the
 * first up to `until` (what the rounds planned: every window ends at least `until`).
 */
async function expectEveryFireTimeOnce(names: readonly string[], until: number): Promise<void> {
  const ctx = withShards(1);
  const problems: string[] = [];
  for (const name of names) {
    const times = (await ctx.executions.listForJob(name)).map((e) => e.scheduledAt).sort((a, b) => a - b);
    if (times.length === 0) {
      problems.push(`${name}: no execution`);
      continue;
    }
    if (new Set(times).size !== times.length) problems.push(`${name}: a fire time planned twice`);
    for (let i = 1; i < times.length; i++) {
      const gap = times[i]! - times[i - 1]!;
      if (gap !== EVERY_MS) problems.push(`${name}: ${gap} ms between fire times ${i - 1} and ${i}`);
    }
    const last = times[times.length - 1]!;
    if (last + EVERY_MS < until)
      problems.push(`${name}: nothing planned after ${new Date(last).toISOString()}`);
  }
  expect(problems).toEqual([]);
}

/** Receives until `n` messages arrived (or 20 s passed). */
async function receiveAll(ctx: Context, queueUrl: string, n: number) {
  const out: Message[] = [];
  const deadline = Date.now() + 20_000;
  while (out.length < n && Date.now() < deadline) {
    const res = await ctx.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    out.push(...(res.Messages ?? []));
  }
  return out;
}

async function shardsHolding(ctx: Context): Promise<number[]> {
  const held: number[] = [];
  for (let s = 0; s < MAX_SHARDS; s++) if (await ctx.jobs.shardHoldsJobs(s)) held.push(s);
  return held;
}

// First, on the real clock: the fake-clock tests after it leave leases and cursors years ahead of it.
describe('the tick function', () => {
  it('the Lambda handler coordinates on a scheduled event and ticks a shard on an SQS event', async () => {
    const queue = await withShards(1).clients.sqs.send(
      new CreateQueueCommand({ QueueName: `t${process.pid}-shard-ticks-handler` }),
    );
    Object.assign(process.env, stack.env, {
      CRONPLANE_DUE_SHARDS: '3',
      CRONPLANE_SHARD_TICK_QUEUE_URL: queue.QueueUrl!,
    });
    const { handler } = await import('../../functions/tick/handler.ts');
    // The handler runs on the real clock.
    const ctx = createContext({ ...stack.env, CRONPLANE_DUE_SHARDS: '3' });
    const names = await createJobs(ctx, 'handler', 30);
    const lambda = { awsRequestId: 'req-1', functionName: 'tick' } as LambdaContext;
    const coordinated = await handler({ source: 'aws.events', 'detail-type': 'Scheduled Event' }, lambda);
    // Shards 1 and 2, and any left over from the other tests' larger counts (coordinator.ts).
    expect(coordinated).toMatchObject({ fanOutError: null, layout: { count: 3 } });
    expect((coordinated as CoordinatorReport).fannedOut.slice(0, 2)).toEqual([1, 2]);
    const fannedOut = (coordinated as CoordinatorReport).fannedOut;
    const received = await receiveAll(ctx, queue.QueueUrl!, fannedOut.length);
    const event = {
      Records: received.map((m) => ({ messageId: m.MessageId, body: m.Body })),
    } as SQSEvent;
    expect(event.Records).toHaveLength(fannedOut.length);
    expect(await handler(event, { ...lambda, awsRequestId: 'req-2' })).toEqual({ batchItemFailures: [] });
    for (const name of names) expect((await ctx.executions.listForJob(name)).length, name).toBeGreaterThan(0);
  });
});

describe('sharded planning', () => {
  it('spreads jobs over the shards and ticks each under its own lease and cursor', async () => {
    const ctx = withShards(4);
    const names = await createJobs(ctx, 'spread', 60);
    expect(await shardsHolding(ctx)).toEqual([0, 1, 2, 3]);

    // Another holder has shard 2's lease: the other shards are planned, shard 2 waits for the lease.
    const held = await ctx.control.acquireLease(leaseName(2), 'someone-else', clockNow + ROUND_MS, 30_000);
    expect(held).not.toBeNull();
    const first = await round(4);
    expect(first.layout).toMatchObject({ count: 4, span: 4 });
    expect(first.fannedOut).toEqual([1, 2, 3]);
    const inShard2 = names.filter((n) => ctx.jobs.dueShard(n) === 2);
    expect(inShard2.length).toBeGreaterThan(0);
    for (const name of names) {
      const planned = (await ctx.executions.listForJob(name)).length;
      if (inShard2.includes(name)) expect(planned, name).toBe(0);
      else expect(planned, name).toBeGreaterThan(0);
    }
    const cursors = await Promise.all([0, 1, 2, 3].map((s) => ctx.control.getCursor(s)));
    expect(cursors[2] ?? 0).toBeLessThan(clockNow);
    for (const s of [0, 1, 3]) expect(cursors[s]).toBeGreaterThan(clockNow);

    // The lease runs out: shard 2 is planned from its jobs' next fire times, nothing is lost.
    for (let i = 0; i < 8; i++) await round(4);
    await expectEveryFireTimeOnce(names, clockNow);
  });

  it('loses no fire time while the shard count goes 1 → 4 → 2 → 3 → 1', async () => {
    const names = await createJobs(withShards(1), 'reshard', 40);
    for (let i = 0; i < 3; i++) await round(1);
    // Written under 4 shards: some of these sit in shard 3, above the later counts of 2 and 3.
    names.push(...(await createJobs(withShards(4), 'reshard-four', 20)));
    for (let i = 0; i < 4; i++) await round(4);
    const shrunk = await round(2);
    expect(shrunk.layout).toMatchObject({ count: 2, span: 4 });
    expect(shrunk.fannedOut).toEqual([1, 2, 3]);
    for (let i = 0; i < 3; i++) await round(2);
    for (let i = 0; i < 4; i++) await round(3);
    for (let i = 0; i < 3; i++) await round(1);
    // Shards above the count stay ticked through the grace period, even once empty …
    const draining = await round(1);
    expect(draining.layout.span).toBeGreaterThan(1);
    expect(await shardsHolding(withShards(1))).toEqual([0]);
    await expectEveryFireTimeOnce(names, clockNow);
    // … and are dropped after it. (The jump is an outage for the jobs: catch-up decides about its fire
    // times, see planning.test.ts; here only that planning goes on with the one shard.)
    clockNow += RESHARD_GRACE_MS;
    const settled = await round(1);
    expect(settled.layout).toMatchObject({ count: 1, span: 1 });
    expect(settled.fannedOut).toEqual([]);
    for (const name of names) {
      const times = (await withShards(1).executions.listForJob(name)).map((e) => e.scheduledAt);
      expect(Math.max(...times), name).toBeGreaterThan(clockNow);
    }
  });

  it('plans the window of a shard tick that died holding its lease once the lease runs out, once', async () => {
    const ctx = withShards(4);
    const names = await createJobs(ctx, 'dies', 60);
    // Shard 1's first tick dies after putting and sending its launches, before advancing its jobs, and never
    // lets go of its lease (a killed Lambda does not run its finally).
    let died = 0;
    const dying: Context = {
      ...ctx,
      jobs: Object.assign(Object.create(ctx.jobs), {
        advanceNextRunMany: () => {
          died++;
          return new Promise<never>(() => {});
        },
      }),
      control: Object.assign(Object.create(ctx.control), { releaseLease: async () => {} }),
    };
    const killOne: (c: Context) => ShardFanOut = (c) => async (shards) => {
      void tick(dying, 'doomed', 1);
      await Promise.all(shards.filter((s) => s !== 1).map((s) => tick(c, 'shard-tick', s)));
    };
    await round(4, killOne);
    await waitFor(async () => died > 0, 20_000, 'the doomed tick to reach its advance');
    // Until the lease runs out, shard 1 is left alone while the others go on.
    await round(4);
    expect((await tick(ctx, 'impatient', 1)).leader).toBe(false);
    // Then it is planned again from where its jobs were left.
    for (let i = 0; i < 10; i++) await round(4);
    await expectEveryFireTimeOnce(names, clockNow);
  });

  it('reads the due jobs through an unavailable store: pages sent again, or what was read planned', {
    timeout: 60_000,
  }, async () => {
    const names = await createJobs(withShards(1), 'flaky', 150);
    // A context whose requests fail before they are sent, as when the SDK's own attempts are used up: the
    // due read's index query and its batch reads of the jobs (150 due: two of them), by their number.
    let failQuery = (_n: number) => false;
    let failBatchGet = (_n: number) => false;
    const sent = { query: 0, batchGet: 0, failed: 0 };
    const flaky = createContext({ ...stack.env, CRONPLANE_DUE_SHARDS: '1' }, () => clockNow);
    flaky.clients.doc.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as {
          IndexName?: string;
          RequestItems?: Record<string, { ConsistentRead?: boolean }>;
        };
        const fail =
          (context.commandName === 'QueryCommand' &&
            input.IndexName === 'byDue' &&
            failQuery(++sent.query)) ||
          (/^BatchGet(Item)?Command$/.test(context.commandName ?? '') &&
            input.RequestItems?.[flaky.config.tables.jobs]?.ConsistentRead === false &&
            failBatchGet(++sent.batchGet));
        if (!fail) return next(args);
        sent.failed++;
        throw Object.assign(new Error('injected: the store did not answer'), { name: 'TimeoutError' });
      },
      { step: 'initialize', name: 'failDueRead' },
    );

    // Unavailable a moment (the query once, the second batch read twice): the tick waits and plans all.
    failQuery = (n) => n === 1;
    failBatchGet = (n) => n === 2 || n === 3;
    clockNow += EVERY_MS;
    let report = await tick(flaky, 'flaky', 0);
    expect(sent.failed).toBe(3);
    expect(report.errors).toEqual([]);
    expect(report.jobs).toBe(150);

    // Unavailable for longer than the read's retries: the 100 jobs read are planned, the rest next tick.
    Object.assign(sent, { query: 0, batchGet: 0, failed: 0 });
    failQuery = () => false;
    failBatchGet = (n) => n >= 2;
    clockNow += EVERY_MS;
    report = await tick(flaky, 'flaky', 0);
    expect(sent.failed).toBe(3);
    expect(report.jobs).toBe(100);
    expect(report.errors).toEqual([
      { job: '', error: expect.stringContaining('reading the due jobs: injected: the store did not answer') },
    ]);
    failBatchGet = () => false;
    for (let i = 0; i < 3; i++) await round(1);
    await expectEveryFireTimeOnce(names, clockNow);
  });
});

describe('the index of active executions', () => {
  it('spreads them over its partitions by job name and lists them all', async () => {
    const ctx = withShards(1);
    const names = await createJobs(ctx, 'active', 40);
    await round(1);
    expect(new Set(names.map(activeShardOf)).size).toBe(ACTIVE_SHARDS);
    const planned = new Set<string>();
    for (const name of names) {
      for (const e of await ctx.executions.listForJob(name)) planned.add(`${name}/${e.executionId}`);
    }
    expect(planned.size).toBeGreaterThanOrEqual(names.length);
    const ours = async () =>
      new Set(
        (await ctx.executions.listActive())
          .filter((e) => e.jobName.startsWith('active-'))
          .map((e) => `${e.jobName}/${e.executionId}`),
      );
    // Planned executions are not in it; runs enter it (here: claims from a redelivered message).
    expect(await ours()).toEqual(new Set());
    for (const name of names) {
      for (const e of await ctx.executions.listForJob(name)) {
        const claim = await ctx.executions.claim(e, { agentId: 'a', nodeName: 'a' }, Date.now(), {
          index: true,
        });
        expect(claim.claimed).toBe(true);
      }
    }
    expect(await ours()).toEqual(planned);
  });
});

describe('fan-out through SQS into the tick function', () => {
  it('ticks shard 0 in the coordinator and every other shard from its message, dropping stale ones', async () => {
    const queue = await withShards(1).clients.sqs.send(
      new CreateQueueCommand({ QueueName: `t${process.pid}-shard-ticks` }),
    );
    const queueUrl = queue.QueueUrl!;
    const ctx = withShards(4);
    const names = await createJobs(ctx, 'fan', 40);
    const report = await round(4, (c) => sqsFanOut(c, queueUrl));
    expect(report.fanOutError).toBeNull();
    const bodies = (await receiveAll(ctx, queueUrl, 3)).map((m) => m.Body!);
    expect(bodies.map((b) => shardToTick(b, clockNow, ctx.config.tickPeriodMs)).sort()).toEqual([1, 2, 3]);
    // The event source mapping hands each message to the tick function; a repeat and junk do no harm.
    const outcomes = await runShardTicks(ctx, 'shard-tick', [
      ...bodies,
      bodies[0]!,
      'not json',
      '{"shardTick":99}',
    ]);
    const shards = outcomes.map((o) => o.shard);
    expect(shards.slice(0, 3).sort()).toEqual([1, 2, 3]);
    expect(shards.slice(3)).toEqual([shards[0], null, null]);
    expect(outcomes.slice(0, 4).every((o) => o.report?.leader)).toBe(true);
    for (const name of names) expect((await ctx.executions.listForJob(name)).length, name).toBeGreaterThan(0);
    // A message older than one tick period is dropped: the next round covers its shard.
    expect(
      shardToTick(bodies[0]!, clockNow + ctx.config.tickPeriodMs + 1, ctx.config.tickPeriodMs),
    ).toBeNull();
    await expectEveryFireTimeOnce(names, clockNow);
  });
});
