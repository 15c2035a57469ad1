/**
 * Reads asked for together go to DynamoDB as one BatchGetItem (shared/aws/read-batch.ts), against
 * DynamoDB Local: the stores' `getMany`/`isPaused` given one ReadTogether answer what each would alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Context, createContext } from '../../shared/context.ts';
import { upsertJob } from '../../shared/jobs/jobs-service.ts';
import { startTestStack } from './support/stack.ts';

type Stack = Awaited<ReturnType<typeof startTestStack>>;
let stack: Stack;
let ctx: Context;
/** The tables each BatchGetItem sent asked for, in order. */
let batches: string[][] = [];
/** Each BatchGetItem's `ConsistentRead` per table, in order. */
let consistency: Array<Record<string, boolean | undefined>> = [];
let failNext = false;

beforeAll(async () => {
  stack = await startTestStack({ agents: [], tickIntervalMs: 3_600_000 });
  ctx = createContext(stack.env);
  ctx.clients.doc.middlewareStack.add(
    (next, context) => async (args) => {
      if (/^BatchGet(Item)?Command$/.test(context.commandName ?? '')) {
        const input = args.input as {
          RequestItems?: Record<string, { Keys: unknown[]; ConsistentRead?: boolean }>;
        };
        batches.push(Object.keys(input.RequestItems ?? {}).sort());
        consistency.push(
          Object.fromEntries(Object.entries(input.RequestItems ?? {}).map(([t, r]) => [t, r.ConsistentRead])),
        );
        if (failNext) {
          failNext = false;
          throw Object.assign(new Error('injected: the store did not answer'), { name: 'TimeoutError' });
        }
      }
      return next(args);
    },
    { step: 'initialize', name: 'countBatchGets' },
  );
  for (const name of ['rb-a', 'rb-b', 'rb-c']) {
    await upsertJob(ctx, { name, schedule: '@manually', executor_config: { command: 'true' } });
  }
  const now = Date.now();
  for (let i = 0; i < 120; i++) {
    await ctx.executions.createScheduled(
      {
        jobName: 'rb-a',
        executionId: `e${String(i).padStart(3, '0')}`,
        group: `g${i}`,
        slot: 0,
        attempt: 1,
        trigger: 'manual',
        scheduledAt: now + 60_000,
        jobVersion: 1,
        queueUrl: 'q',
      },
      now,
    );
  }
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('ReadTogether', () => {
  it('sends the jobs, the executions and the pause flag asked for in one turn as one request', async () => {
    await ctx.control.setPaused(true, Date.now());
    batches = [];
    const reads = ctx.readTogether();
    const [executions, jobs, paused, again] = await Promise.all([
      ctx.executions.getMany(
        [
          { jobName: 'rb-a', executionId: 'e001' },
          { jobName: 'rb-a', executionId: 'e002' },
          { jobName: 'rb-a', executionId: 'nope' },
          { jobName: 'rb-a', executionId: 'e001' },
        ],
        reads,
      ),
      ctx.jobs.getMany(['rb-a', 'rb-b', 'rb-missing'], reads),
      ctx.control.isPaused(reads),
      // A second ask of the same table answers its own keys only.
      ctx.jobs.getMany(['rb-c', 'rb-b'], reads),
    ]);
    const { tables } = ctx.config;
    expect(batches).toEqual([[tables.control, tables.executions, tables.jobs].sort()]);
    expect([...executions.keys()].sort()).toEqual(['rb-a/e001', 'rb-a/e002']);
    expect(executions.get('rb-a/e001')).toMatchObject({ status: 'scheduled', jobName: 'rb-a' });
    expect([...jobs.keys()].sort()).toEqual(['rb-a', 'rb-b']);
    expect(jobs.get('rb-a')?.def.executor_config).toEqual({ command: 'true' });
    expect([...again.keys()].sort()).toEqual(['rb-b', 'rb-c']);
    expect(paused).toBe(true);
    await ctx.control.setPaused(false, Date.now());
    expect(await ctx.control.isPaused(ctx.readTogether())).toBe(false);
  });

  it("reads consistently unless asked not to (the runner's read before a claim: half the read units)", async () => {
    const { tables } = ctx.config;
    const ask = async (reads: ReturnType<typeof ctx.readTogether>) => {
      consistency = [];
      const [executions, jobs] = await Promise.all([
        ctx.executions.getMany([{ jobName: 'rb-a', executionId: 'e003' }], reads),
        ctx.jobs.getMany(['rb-a'], reads),
      ]);
      expect([...executions.keys(), ...jobs.keys()]).toEqual(['rb-a/e003', 'rb-a']);
      return consistency;
    };
    expect(await ask(ctx.readTogether())).toEqual([{ [tables.executions]: true, [tables.jobs]: true }]);
    expect(await ask(ctx.readTogether({ consistent: false }))).toEqual([
      { [tables.executions]: false, [tables.jobs]: false },
    ]);
  });

  it('reads more than 100 keys in as many requests as it takes, every item answered', async () => {
    batches = [];
    const reads = ctx.readTogether();
    const keys = Array.from({ length: 120 }, (_, i) => ({
      jobName: 'rb-a',
      executionId: `e${String(i).padStart(3, '0')}`,
    }));
    const [executions, jobs] = await Promise.all([
      ctx.executions.getMany(keys, reads),
      ctx.jobs.getMany(['rb-a', 'rb-b', 'rb-c'], reads),
    ]);
    expect(executions.size).toBe(120);
    expect(jobs.size).toBe(3);
    expect(batches).toHaveLength(2);
  });

  it('fails every read of a request that failed, and the next reads go through', async () => {
    failNext = true;
    const reads = ctx.readTogether();
    const results = await Promise.allSettled([
      ctx.jobs.getMany(['rb-a'], reads),
      ctx.control.isPaused(reads),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((await ctx.jobs.getMany(['rb-a'], ctx.readTogether())).size).toBe(1);
  });
});
