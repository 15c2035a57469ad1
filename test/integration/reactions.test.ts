/**
 * Reactions to finished executions against the real emulators: the local stack (API, ticker, one agent,
 * and its stream poller, which feeds the Executions stream of DynamoDB Local to the same function the
 * `events` Lambda runs). Retries, dependent and on-failure chains, ephemeral jobs, retention, the
 * `Execution Finished` event and idempotency under redelivery.
 *
 * The stack's poller is the stream's only consumer, as the event source mapping is on AWS: a second
 * poller here (with another bus) raced it for every finish, and whichever reacted first published the
 * event to its own bus and marked the finish reacted, so the other published nothing.
 */
import { PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventsHandler } from '../../functions/events/handler.ts';
import { createContext } from '../../shared/context.ts';
import { reactToChanges } from '../../shared/events/reactions.ts';
import { trimExecutions } from '../../shared/events/retention.ts';
import { type Execution, executionIdFor, groupIdFor } from '../../shared/executions/execution.ts';
import { refreshDependents, upsertJob } from '../../shared/jobs/jobs-service.ts';
import { claimedExecution, plannedExecution } from './support/executions.ts';
import { startTestStack, waitFor } from './support/stack.ts';

type Stack = Awaited<ReturnType<typeof startTestStack>>;
let stack: Stack;
let eventsQueueUrl: string;

type ApiExecution = {
  id: string;
  status: string;
  attempt: number;
  group: string;
  trigger: string;
  scheduled_at: string;
  started_at: string;
  finished_at: string;
};

beforeAll(async () => {
  // Every finish on the bus (the stack's default, as on AWS, is failures only): the event tests read successes.
  stack = await startTestStack({ settings: { CRONPLANE_PUBLISH_FINISHED: 'all' } });
  const { eventbridge, sqs } = stack.ctx.clients;
  // The bus the stack's reactions publish to: the template's, provisioned with the stack.
  const bus = stack.ctx.config.eventBus;
  if (!bus) throw new Error('the local stack has no event bus (CRONPLANE_EVENT_BUS)');
  eventsQueueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${bus}-test-events` }))).QueueUrl!;
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: eventsQueueUrl, AttributeNames: ['QueueArn'] }),
  );
  await eventbridge.send(
    new PutRuleCommand({
      Name: 'finished',
      EventBusName: bus,
      EventPattern: JSON.stringify({ source: ['cronplane'], 'detail-type': ['Execution Finished'] }),
    }),
  );
  await eventbridge.send(
    new PutTargetsCommand({
      Rule: 'finished',
      EventBusName: bus,
      Targets: [{ Id: 'queue', Arn: attributes.Attributes!.QueueArn! }],
    }),
  );
});

afterAll(async () => {
  await stack?.stop();
});

async function createJob(job: Record<string, unknown>) {
  const res = await stack.api('POST', '/v1/jobs', { schedule: '@manually', ...job });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function executions(name: string): Promise<ApiExecution[]> {
  const res = await stack.api<ApiExecution[]>('GET', `/v1/jobs/${name}/executions?_order=ASC`);
  return res.status === 200 ? res.body : [];
}

async function job(name: string) {
  return (await stack.api('GET', `/v1/jobs/${name}`)).body;
}

/** The stored item, with attributes the API does not show. */
async function rawExecution(jobName: string, executionId: string) {
  const out = await stack.ctx.clients.doc.send(
    new GetCommand({ TableName: stack.ctx.config.tables.executions, Key: { jobName, executionId } }),
  );
  return out.Item;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('retries', () => {
  it('retries a failing job with exponential backoff, on the shared queue, until attempts run out', async () => {
    await createJob({
      name: 'fails',
      executor_config: { command: 'false' },
      retries: 2,
      retry_backoff: '1s',
    });
    expect((await stack.api('POST', '/v1/jobs/fails/run')).status).toBe(202);

    const done = await waitFor(
      async () => {
        const j = await job('fails');
        return j.error_count === 3 ? j : null;
      },
      20_000,
      'three failed attempts counted',
    );
    expect(done).toMatchObject({ status: 'failed', success_count: 0, error_count: 3 });
    expect(done.last_error).toMatch(/Z$/);

    const runs = await executions('fails');
    expect(runs.map((e) => [e.attempt, e.status, e.trigger])).toEqual([
      [1, 'failed', 'manual'],
      [2, 'failed', 'retry'],
      [3, 'failed', 'retry'],
    ]);
    expect(new Set(runs.map((e) => e.group)).size).toBe(1);
    // Attempt n+1 is due backoff·2^(n−1) after attempt n finished: ~1 s, then ~2 s.
    const at = runs.map((e) => Date.parse(e.scheduled_at));
    const finished = runs.map((e) => Date.parse(e.finished_at));
    expect(at[1]! - finished[0]!).toBe(1_000);
    expect(at[2]! - finished[1]!).toBe(2_000);
    // Each retry started at its due time, not before.
    for (const e of runs) expect(Date.parse(e.started_at)).toBeGreaterThanOrEqual(Date.parse(e.scheduled_at));

    await sleep(1_500);
    expect(await executions('fails')).toHaveLength(3);
  });
});

describe('dependent jobs', () => {
  it('runs every child of a parent', async () => {
    await createJob({ name: 'many-parent', executor_config: { command: 'true' } });
    const names = Array.from({ length: 8 }, (_, i) => `many-child-${i}`);
    await Promise.all(
      names.map((name) =>
        createJob({ name, parent_job: 'many-parent', executor_config: { command: 'true' } }),
      ),
    );
    expect((await job('many-parent')).dependent_jobs).toEqual(names);
    expect((await stack.api('POST', '/v1/jobs/many-parent/run')).status).toBe(202);
    for (const name of names) {
      await waitFor(
        async () => (await executions(name)).find((e) => e.status === 'succeeded'),
        20_000,
        `${name} to run`,
      );
    }
  });

  it("keeps both children in the parent's list when their writes' updates of it cross", async () => {
    const { ctx } = stack;
    await upsertJob(ctx, {
      name: 'cross-parent',
      schedule: '@manually',
      executor_config: { command: 'true' },
    });
    const child = (name: string) => ({
      name,
      parent_job: 'cross-parent',
      schedule: '@manually',
      executor_config: { command: 'true' },
    });
    // The first child's write read the jobs before the second existed, and its update of the parent's list
    // is held until the second child's write has set the list: the first then sets a list without it.
    const slow = createContext(stack.env);
    let held: (() => void) | undefined;
    const release = new Promise<void>((r) => {
      held = r;
    });
    let holding = false;
    slow.clients.doc.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { UpdateExpression?: string };
        if (
          /^Update(Item)?Command$/.test(context.commandName ?? '') &&
          input.UpdateExpression?.includes('dependentJobs') &&
          !holding
        ) {
          holding = true;
          await release;
        }
        return next(args);
      },
      { step: 'initialize', name: 'holdTheListUpdate' },
    );
    await upsertJob(ctx, child('cross-a'), { batch: { previous: null } });
    const first = refreshDependents(slow, ['cross-parent']);
    await waitFor(async () => holding, 5_000, 'the first update to be held');
    await upsertJob(ctx, child('cross-b'));
    expect((await job('cross-parent')).dependent_jobs).toEqual(['cross-a', 'cross-b']);
    held!();
    await first;
    expect((await job('cross-parent')).dependent_jobs).toEqual(['cross-a', 'cross-b']);
  });

  it('runs parent → child → grandchild in order after the parent runs', async () => {
    await createJob({ name: 'chain-parent', executor_config: { command: 'echo parent' } });
    await createJob({
      name: 'chain-child',
      parent_job: 'chain-parent',
      executor_config: { command: 'echo child' },
    });
    await createJob({
      name: 'chain-grandchild',
      parent_job: 'chain-child',
      executor_config: { command: 'echo grandchild' },
    });
    expect((await stack.api('POST', '/v1/jobs/chain-parent/run')).status).toBe(202);

    const grandchild = await waitFor(
      async () => {
        const runs = await executions('chain-grandchild');
        return runs.find((e) => e.status === 'succeeded');
      },
      20_000,
      'the grandchild to succeed',
    );
    const [parent] = await executions('chain-parent');
    const [child] = await executions('chain-child');
    expect(parent).toMatchObject({ status: 'succeeded', trigger: 'manual' });
    expect(child).toMatchObject({ status: 'succeeded', trigger: 'dependent' });
    expect(grandchild).toMatchObject({ trigger: 'dependent' });
    expect(Date.parse(child!.started_at)).toBeGreaterThanOrEqual(Date.parse(parent!.finished_at));
    expect(Date.parse(grandchild.started_at)).toBeGreaterThanOrEqual(Date.parse(child!.finished_at));

    await waitFor(async () => (await job('chain-child')).success_count === 1, 5_000, 'the child counted');
    expect(await job('chain-parent')).toMatchObject({
      status: 'success',
      success_count: 1,
      dependent_jobs: ['chain-child'],
    });
    expect(await job('chain-child')).toMatchObject({ dependent_jobs: ['chain-grandchild'] });
    // Each ran exactly once.
    await sleep(1_000);
    expect(await executions('chain-child')).toHaveLength(1);
    expect(await executions('chain-grandchild')).toHaveLength(1);
    expect((await rawExecution('chain-child', child!.id))?.triggeredBy).toMatchObject({
      kind: 'parent_job',
      job: 'chain-parent',
      executionId: parent!.id,
    });
  });

  it('does not run children after a failure, and runs the on_failure_job instead', async () => {
    await createJob({ name: 'fallback', executor_config: { command: 'echo fallback' } });
    await createJob({ name: 'breaks', executor_config: { command: 'false' }, on_failure_job: 'fallback' });
    await createJob({
      name: 'breaks-child',
      parent_job: 'breaks',
      executor_config: { command: 'echo never' },
    });
    expect((await stack.api('POST', '/v1/jobs/breaks/run')).status).toBe(202);

    const fallback = await waitFor(
      async () => (await executions('fallback')).find((e) => e.status === 'succeeded'),
      20_000,
      'the on_failure_job to succeed',
    );
    expect(fallback.trigger).toBe('dependent');
    const [failed] = await executions('breaks');
    expect(failed).toMatchObject({ status: 'failed' });
    expect(Date.parse(fallback.started_at)).toBeGreaterThanOrEqual(Date.parse(failed!.finished_at));
    expect((await rawExecution('fallback', fallback.id))?.triggeredBy).toMatchObject({
      kind: 'on_failure_job',
      job: 'breaks',
      executionId: failed!.id,
    });
    await sleep(1_000);
    expect(await executions('breaks-child')).toHaveLength(0);
    expect(await executions('fallback')).toHaveLength(1);
    expect(await job('breaks')).toMatchObject({ status: 'failed', error_count: 1 });
  });
});

describe('ephemeral jobs', () => {
  it('deletes the job after a successful run and keeps its executions', async () => {
    await createJob({ name: 'once', ephemeral: true, executor_config: { command: 'echo once' } });
    expect((await stack.api('POST', '/v1/jobs/once/run')).status).toBe(202);
    await waitFor(
      async () => (await stack.api('GET', '/v1/jobs/once')).status === 404,
      15_000,
      'the job deleted',
    );
    const kept = await stack.ctx.executions.listForJob('once');
    expect(kept.map((e) => e.status)).toEqual(['succeeded']);
  });

  it('keeps an ephemeral job whose run failed', async () => {
    await createJob({ name: 'once-fails', ephemeral: true, executor_config: { command: 'false' } });
    await stack.api('POST', '/v1/jobs/once-fails/run');
    await waitFor(async () => (await job('once-fails')).error_count === 1, 15_000, 'the failure counted');
    expect((await stack.api('GET', '/v1/jobs/once-fails')).status).toBe(200);
  });
});

/** Writes a finished execution directly (scheduled → failed), as the planner does for a slot nobody can take. */
async function finishedExecution(jobName: string, fireAt: number, slot = 0, attempt = 1): Promise<Execution> {
  const { ctx } = stack;
  const fresh = plannedExecution(ctx, jobName, fireAt, { slot, attempt });
  await ctx.executions.createScheduled(fresh, fireAt);
  await ctx.executions.end(fresh, 'scheduled', 'failed', 'test', fireAt + 10);
  return (await ctx.executions.get(jobName, fresh.executionId))!;
}

describe('retention', () => {
  it('keeps the newest N finished and reacted executions of a job, never a planned one', async () => {
    const { ctx } = stack;
    await upsertJob(ctx, { name: 'history', schedule: '@manually', executor_config: { command: 'true' } });
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    const done: Execution[] = [];
    for (let i = 0; i < 6; i++) done.push(await finishedExecution('history', t0 + i * 1_000));
    // The stack's poller reacts to them (with the default retention, 100): only reacted ones may go.
    await waitFor(
      async () => {
        const marks = await Promise.all(
          done.map((e) => ctx.executions.reactionMarks('history', e.executionId)),
        );
        return marks.every((m) => m?.reactedAt != null);
      },
      20_000,
      'the finishes reacted to',
    );
    // A pending execution older than the cut is never trimmed.
    const pendingGroup = groupIdFor(t0 - 1_000);
    await ctx.executions.createScheduled(
      {
        jobName: 'history',
        executionId: executionIdFor(pendingGroup, 0, 1),
        group: pendingGroup,
        slot: 0,
        attempt: 1,
        trigger: 'schedule',
        scheduledAt: t0 - 1_000,
        jobVersion: 1,
        queueUrl: ctx.config.defaultQueueUrl,
      },
      t0,
    );
    expect(await trimExecutions(ctx, 'history', 4)).toBe(2);
    const left = await ctx.executions.listForJob('history', { newestFirst: false });
    expect(left.map((e) => e.scheduledAt)).toEqual([
      t0 - 1_000,
      t0 + 2_000,
      t0 + 3_000,
      t0 + 4_000,
      t0 + 5_000,
    ]);

    // Through the reaction with a small N: the newest finish is marked reacted first, then the history
    // is trimmed to the two newest reacted ones, itself included.
    // The stack's own poller must not react to it first (it would trim with the default N).
    await stack.streamPoller.pause();
    let result: Awaited<ReturnType<typeof reactToChanges>>;
    try {
      const newest = await finishedExecution('history', t0 + 6_000);
      result = await reactToChanges(
        ctx,
        [{ id: '1', oldImage: { status: 'scheduled' }, newImage: { ...newest } }],
        {
          keepExecutions: 2,
        },
      );
    } finally {
      stack.streamPoller.resume();
    }
    expect(result.failed).toEqual([]);
    const after = await ctx.executions.listForJob('history', { newestFirst: false });
    expect(after.map((e) => e.scheduledAt)).toEqual([t0 - 1_000, t0 + 5_000, t0 + 6_000]);
  });
});

function streamEvent(e: Execution, sequence: string): DynamoDBStreamEvent {
  const image = (x: object) => marshall(x, { removeUndefinedValues: true, convertClassInstanceToMap: true });
  return {
    Records: [
      {
        eventID: sequence,
        eventName: 'MODIFY',
        dynamodb: {
          SequenceNumber: sequence,
          OldImage: image({ ...e, status: 'scheduled' }) as never,
          NewImage: image(e) as never,
        },
      },
    ],
  };
}

describe('idempotency', () => {
  it('counts a finish once however often its stream record is delivered', async () => {
    const { ctx } = stack;
    await upsertJob(ctx, { name: 'dup-record', schedule: '@manually', executor_config: { command: 'true' } });
    const handler = createEventsHandler(() => ctx, {});
    const e = await finishedExecution('dup-record', Date.parse('2030-02-01T00:00:00Z'));
    const event = streamEvent(e, '100');
    // The poller sees the real record too: three deliveries in all.
    expect(await handler(event)).toEqual({ batchItemFailures: [] });
    expect(await handler(event)).toEqual({ batchItemFailures: [] });
    await sleep(1_000);
    expect(await job('dup-record')).toMatchObject({ error_count: 1, success_count: 0, status: 'failed' });
    const marked = (await ctx.executions.reactionMarks('dup-record', e.executionId))!;
    expect(marked.countedAt).not.toBeNull();
    expect(marked.reactedAt).not.toBeNull();
  });

  it('counts a finish once when two consumers react to it at the same time', async () => {
    const { ctx } = stack;
    await upsertJob(ctx, { name: 'dup-race', schedule: '@manually', executor_config: { command: 'true' } });
    await stack.streamPoller.pause();
    try {
      const e = await finishedExecution('dup-race', Date.parse('2030-02-02T00:00:00Z'));
      const other = await finishedExecution('dup-race', Date.parse('2030-02-02T00:01:00Z'));
      const event = streamEvent(e, '110');
      event.Records.push(...streamEvent(other, '111').Records);
      // Both read the marks before either writes: only the conditional last write keeps them apart.
      const results = await Promise.all([1, 2, 3].map(() => createEventsHandler(() => ctx, {})(event)));
      expect(results).toEqual([1, 2, 3].map(() => ({ batchItemFailures: [] })));
      expect(await job('dup-race')).toMatchObject({ error_count: 2, success_count: 0, status: 'failed' });
    } finally {
      stack.streamPoller.resume();
    }
  });

  it('does not count again when a delivery died after counting, and finishes the other reactions', async () => {
    const { ctx } = stack;
    await upsertJob(ctx, {
      name: 'dup-crash',
      schedule: '@manually',
      executor_config: { command: 'true' },
      retries: 1,
      retry_backoff: '10m',
    });
    // The stack's poller waits: racing the crafted write below, it could count between its read of the
    // job and its own write — a concurrency of two versions on one record that one stream mapping never has.
    await stack.streamPoller.pause();
    try {
      const e = await finishedExecution('dup-crash', Date.parse('2030-03-01T00:00:00Z'));
      // A delivery of an earlier version that counted and then crashed (countedAt and the count, no
      // reactedAt): what it counted is not counted again.
      await ctx.clients.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: ctx.config.tables.executions,
                Key: { jobName: e.jobName, executionId: e.executionId },
                UpdateExpression: 'SET countedAt = :now',
                ConditionExpression: 'attribute_not_exists(countedAt)',
                ExpressionAttributeValues: { ':now': Date.now() },
              },
            },
            {
              Update: {
                TableName: ctx.config.tables.jobs,
                Key: { name: e.jobName },
                UpdateExpression: 'ADD errorCount :one SET lastError = :at',
                ExpressionAttributeValues: { ':one': 1, ':at': e.finishedAt },
              },
            },
          ],
        }),
      );
      const again = await createEventsHandler(() => ctx, {})(streamEvent(e, '200'));
      expect(again.batchItemFailures).toEqual([]);
      await sleep(1_000);
      expect(await job('dup-crash')).toMatchObject({ error_count: 1 });
      // The retry was still scheduled (once), due the backoff after the failure.
      const runs = await ctx.executions.listForJob('dup-crash', { newestFirst: false });
      expect(runs.map((r) => [r.attempt, r.trigger, r.status])).toEqual([
        [1, 'schedule', 'failed'],
        [2, 'retry', 'scheduled'],
      ]);
      expect(runs[1]!.scheduledAt).toBe(e.finishedAt! + 600_000);
    } finally {
      stack.streamPoller.resume();
    }
    // The stack's own poller then sees the record: already reacted to, nothing counted again.
    await sleep(1_000);
    expect(await job('dup-crash')).toMatchObject({ error_count: 1 });
  });

  it('does not count again when a delivery died between the count and the marks', async () => {
    const { ctx } = stack;
    await upsertJob(ctx, { name: 'dup-split', schedule: '@manually', executor_config: { command: 'true' } });
    const settling = async () =>
      (
        await ctx.clients.doc.send(
          new GetCommand({
            TableName: ctx.config.tables.jobs,
            Key: { name: 'dup-split' },
            ConsistentRead: true,
          }),
        )
      ).Item?.settling;
    await stack.streamPoller.pause();
    try {
      const e = await finishedExecution('dup-split', Date.parse('2030-03-02T00:00:00Z'));
      // A consumer whose process dies after the job's update: every mark it sends fails before it is sent.
      const dying = createContext(stack.env);
      let marksRefused = 0;
      dying.clients.doc.middlewareStack.add(
        (next, context) => async (args) => {
          const input = args.input as { TableName?: string; UpdateExpression?: string };
          if (
            /^Update(Item)?Command$/.test(context.commandName ?? '') &&
            input.TableName === ctx.config.tables.executions &&
            input.UpdateExpression?.includes('reactedAt')
          ) {
            marksRefused++;
            throw Object.assign(new Error('injected: the consumer died'), { name: 'TimeoutError' });
          }
          return next(args);
        },
        { step: 'initialize', name: 'dieBeforeMarks' },
      );
      const first = await createEventsHandler(() => dying, {})(streamEvent(e, '300'));
      expect(first.batchItemFailures).toEqual([{ itemIdentifier: '300' }]);
      expect(marksRefused).toBe(1);
      expect(await job('dup-split')).toMatchObject({ error_count: 1 });
      expect((await ctx.executions.reactionMarks('dup-split', e.executionId))?.reactedAt).toBeNull();
      expect(await settling()).toEqual([e.executionId]);

      // Delivered again to another consumer (a fresh process: it knows nothing of the first): counted once.
      const again = await createEventsHandler(() => createContext(stack.env), {})(streamEvent(e, '300'));
      expect(again.batchItemFailures).toEqual([]);
      expect(await job('dup-split')).toMatchObject({ error_count: 1, status: 'failed' });
      const marks = (await ctx.executions.reactionMarks('dup-split', e.executionId))!;
      expect(marks.countedAt).not.toBeNull();
      expect(marks.reactedAt).not.toBeNull();

      // The next finish counts, and the first leaves `settling` once its mark is read.
      const next = await finishedExecution('dup-split', Date.parse('2030-03-02T00:01:00Z'));
      const later = await createEventsHandler(() => createContext(stack.env), {})(streamEvent(next, '301'));
      expect(later.batchItemFailures).toEqual([]);
      expect(await job('dup-split')).toMatchObject({ error_count: 2 });
      expect(await settling()).toEqual([next.executionId]);
    } finally {
      stack.streamPoller.resume();
    }
    // The stack's own poller then sees both records: already reacted to, nothing counted again.
    await sleep(1_000);
    expect(await job('dup-split')).toMatchObject({ error_count: 2 });
  });

  it('reports a failed record to Lambda, and reacts in full when it is delivered again', async () => {
    const { ctx } = stack;
    await upsertJob(ctx, {
      name: 'flaky-store',
      schedule: '@manually',
      executor_config: { command: 'true' },
    });
    const e = await finishedExecution('flaky-store', Date.parse('2030-04-01T00:00:00Z'));
    const other = await finishedExecution('flaky-store', Date.parse('2030-04-01T00:01:00Z'));
    const broken = { ...ctx, jobs: Object.create(ctx.jobs) as typeof ctx.jobs };
    broken.jobs.get = async () => Promise.reject(new Error('DynamoDB unavailable'));
    broken.jobs.getMany = async () => Promise.reject(new Error('DynamoDB unavailable'));
    const event = streamEvent(e, '300');
    event.Records.push(...streamEvent(other, '301').Records);
    const failed = await createEventsHandler(() => broken, {})(event);
    // Processing stops at the first failure; Lambda redelivers from there.
    expect(failed).toEqual({ batchItemFailures: [{ itemIdentifier: '300' }] });
    expect(await createEventsHandler(() => ctx, {})(event)).toEqual({ batchItemFailures: [] });
    // Whoever reacted first (this handler or the poller), each finish counted once.
    await sleep(1_000);
    expect(await job('flaky-store')).toMatchObject({ error_count: 2 });
  });
});

describe('event bus configuration', () => {
  it('does not hold up reactions when the configured bus does not exist', async () => {
    const { ctx } = stack;
    await upsertJob(ctx, { name: 'no-bus', schedule: '@manually', executor_config: { command: 'true' } });
    const e = await finishedExecution('no-bus', Date.parse('2030-05-01T00:00:00Z'));
    const result = await createEventsHandler(() => ctx, { eventBusName: 'no-such-bus' })(
      streamEvent(e, '400'),
    );
    expect(result.batchItemFailures).toEqual([]);
    expect((await ctx.executions.reactionMarks('no-bus', e.executionId))?.reactedAt).not.toBeNull();
  });
});

describe('fan-out groups', () => {
  /**
   * A fan-out job (tagged: an untagged job's group is one slot) with a dependent job, and one claimed
   * execution per slot of one manual group, as the planner launches them on three agents.
   */
  async function fanOut(name: string, slotCount: number) {
    const { ctx } = stack;
    await upsertJob(ctx, {
      name,
      schedule: '@manually',
      tags: { role: 'fan' },
      executor_config: { command: 'true' },
    });
    await upsertJob(ctx, {
      name: `${name}-child`,
      parent_job: name,
      schedule: '@manually',
      executor_config: { command: 'echo c' },
    });
    const fanJob = (await ctx.jobs.get(name))!;
    const now = Date.now();
    const group = groupIdFor(now, name);
    const claimed: Execution[] = [];
    for (let slot = 0; slot < slotCount; slot++) {
      const s = {
        jobName: name,
        executionId: executionIdFor(group, slot, 1),
        group,
        slot,
        attempt: 1,
        trigger: 'manual' as const,
        scheduledAt: now,
        jobVersion: fanJob.version,
        queueUrl: ctx.config.defaultQueueUrl,
      };
      await ctx.executions.createScheduled(s, now);
      const c = await ctx.executions.claim(
        (await ctx.executions.get(name, s.executionId))!,
        { agentId: `fake-${slot}`, nodeName: 'n' },
        now,
      );
      if (!c.claimed) throw new Error('claim failed');
      claimed.push(c.execution);
    }
    const finish = (slot: number, status: 'succeeded' | 'failed') =>
      ctx.executions.finish(
        claimed[slot]!,
        `fake-${slot}`,
        {
          status,
          exitCode: status === 'succeeded' ? 0 : 1,
          output: '',
          outputTruncated: false,
          reason: null,
        },
        now + 100 * (slot + 1),
      );
    return { finish };
  }

  it('sets partially_failed and runs the children once when the group settles with a success', async () => {
    const { finish } = await fanOut('fan', 3);
    await finish(0, 'succeeded');
    await finish(1, 'failed');
    await waitFor(async () => (await job('fan')).error_count === 1, 10_000, 'the failed slot counted');
    // One slot still running: not settled, no child yet.
    await sleep(500);
    expect(await executions('fan-child')).toHaveLength(0);
    await finish(2, 'succeeded');

    await waitFor(
      async () => (await executions('fan-child')).find((e) => e.status === 'succeeded'),
      15_000,
      'the child to run once',
    );
    expect(await job('fan')).toMatchObject({ status: 'partially_failed', success_count: 2, error_count: 1 });
    await sleep(500);
    expect(await executions('fan-child')).toHaveLength(1);
  });

  it("waits for every slot of a group planned before an edit took the job's tags away", async () => {
    const { finish } = await fanOut('fan-edited', 2);
    // Now untagged (a one-slot job from this version on): the group launched before has two slots still.
    await upsertJob(stack.ctx, {
      name: 'fan-edited',
      schedule: '@manually',
      executor_config: { command: 'true' },
    });
    await finish(0, 'succeeded');
    await waitFor(async () => (await job('fan-edited')).success_count === 1, 10_000, 'slot 0 counted');
    await sleep(500);
    expect(await executions('fan-edited-child')).toHaveLength(0);
    await finish(1, 'succeeded');
    await waitFor(
      async () => (await executions('fan-edited-child')).find((e) => e.status === 'succeeded'),
      15_000,
      'the child to run once the group settled',
    );
    expect(await executions('fan-edited-child')).toHaveLength(1);
  });
});

describe('Execution Finished events', () => {
  /** The next `n` events of one job from the test's queue; other tests' events are dropped as they come. */
  async function eventsOf(jobName: string, n: number) {
    const found: any[] = [];
    await waitFor(
      async () => {
        const out = await stack.ctx.clients.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: eventsQueueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
          }),
        );
        for (const m of out.Messages ?? []) {
          const event = JSON.parse(m.Body!);
          if (event['detail-type'] === 'Execution Finished' && event.detail.job_name === jobName)
            found.push(event);
          // This test is the queue's only reader: what it read does not come back after the visibility timeout.
          await stack.ctx.clients.sqs.send(
            new DeleteMessageCommand({ QueueUrl: eventsQueueUrl, ReceiptHandle: m.ReceiptHandle! }),
          );
        }
        return found.length >= n;
      },
      40_000,
      `${n} events of ${jobName} on the queue`,
    ).catch(async (error: Error) => {
      // Say where it stopped: did the runs finish, and did the stream poller react to them?
      const runs = await stack.api('GET', `/v1/jobs/${jobName}/executions`);
      throw new Error(`${error.message}; got ${found.length}; executions: ${JSON.stringify(runs.body)}`);
    });
    return found.sort((a, b) => a.detail.attempt - b.detail.attempt);
  }

  it('publishes every finish to the configured EventBridge bus', async () => {
    await createJob({ name: 'announce', executor_config: { command: 'echo hi' } });
    await stack.api('POST', '/v1/jobs/announce/run');
    const [event] = await eventsOf('announce', 1);
    expect(event).toMatchObject({
      source: 'cronplane',
      detail: {
        job_name: 'announce',
        status: 'succeeded',
        success: true,
        output: 'hi\n',
        attempt: 1,
        will_retry: false,
      },
    });
  });

  it('publishes only the finishes that did not succeed when configured for failures', async () => {
    const { ctx } = stack;
    const name = 'announce-failures';
    await upsertJob(ctx, { name, schedule: '@manually', executor_config: { command: 'true' } });
    const version = (await ctx.jobs.get(name))!.version;
    const fireAt = Date.parse('2030-06-01T00:00:00Z');
    // The stack's own poller (every finish published) stays out of it: this test's handler reacts first.
    await stack.streamPoller.pause();
    try {
      const running = await claimedExecution(
        ctx,
        plannedExecution(ctx, name, fireAt, { jobVersion: version }),
        'ghost',
        fireAt,
      );
      const ok = {
        status: 'succeeded',
        exitCode: 0,
        output: '',
        outputTruncated: false,
        reason: null,
      } as const;
      expect(await ctx.executions.finish(running, 'ghost', ok, fireAt + 5)).toBe(true);
      const succeeded = (await ctx.executions.get(name, running.executionId))!;
      const failed = await finishedExecution(name, fireAt + 1_000);
      const failuresOnly = { ...ctx, config: { ...ctx.config, publishFinished: 'failures' as const } };
      const handler = createEventsHandler(() => failuresOnly, {});
      expect(await handler(streamEvent(succeeded, '700'))).toEqual({ batchItemFailures: [] });
      expect(await handler(streamEvent(failed, '701'))).toEqual({ batchItemFailures: [] });
      expect((await ctx.executions.reactionMarks(name, succeeded.executionId))?.reactedAt).not.toBeNull();
    } finally {
      stack.streamPoller.resume();
    }
    const [event] = await eventsOf(name, 1);
    expect(event.detail).toMatchObject({ status: 'failed', attempt: 1 });
    // Nothing else of the job comes (the success was counted, not published).
    await new Promise((r) => setTimeout(r, 3_000));
    const more = await stack.ctx.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: eventsQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    expect((more.Messages ?? []).map((m) => JSON.parse(m.Body!).detail.job_name)).not.toContain(name);
    expect((await stack.api('GET', `/v1/jobs/${name}`)).body).toMatchObject({
      success_count: 1,
      error_count: 1,
    });
  });

  it('says whether another attempt follows, so a rule can hear of a failure once, when it is final', async () => {
    await createJob({
      name: 'announce-retry',
      executor_config: { command: 'false' },
      retries: 1,
      retry_backoff: '1s',
    });
    await stack.api('POST', '/v1/jobs/announce-retry/run');
    const events = await eventsOf('announce-retry', 2);
    expect(events.map((e) => [e.detail.attempt, e.detail.status, e.detail.will_retry])).toEqual([
      [1, 'failed', true],
      [2, 'failed', false],
    ]);
  });
});
