/**
 * Retention against a stream consumer that lags behind (issue 10, item 6), on the real emulators: the
 * local stack's stream poller (the events function's stand-in) is paused while attempts are lost and
 * fail *after* newer runs of the same job finished, as on AWS when `lost` is marked ~90 s late; the
 * history is kept small (CRONPLANE_EXECUTIONS_KEPT=2) and two runs are planned ahead. When the poller
 * catches up, the newer finishes' reactions trim the history before the lost and failed attempts' own
 * records come. Every one of them must still be retried, counted and announced (`Execution Finished`).
 */
import { PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { reactToChanges } from '../../shared/events/reactions.ts';
import { type Execution, executionIdFor, TERMINAL } from '../../shared/executions/execution.ts';
import { upsertJob } from '../../shared/jobs/jobs-service.ts';
import { claimedExecution, plannedExecution } from './support/executions.ts';
import { useTestStack, waitFor } from './support/stack.ts';

const KEEP = 2;
const stack = useTestStack({
  agents: [],
  worker: false,
  settings: { CRONPLANE_EXECUTIONS_KEPT: String(KEEP) },
});

/** A queue that receives the stack's `Execution Finished` events (through a rule on its bus). */
async function eventsQueue(): Promise<string> {
  const { eventbridge, sqs } = stack.ctx.clients;
  const bus = stack.ctx.config.eventBus!;
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: `${bus}-retention-events` }))).QueueUrl!;
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
    .Attributes!.QueueArn!;
  await eventbridge.send(
    new PutRuleCommand({
      Name: 'retention-finished',
      EventBusName: bus,
      EventPattern: JSON.stringify({ source: ['cronplane'], 'detail-type': ['Execution Finished'] }),
    }),
  );
  await eventbridge.send(
    new PutTargetsCommand({
      Rule: 'retention-finished',
      EventBusName: bus,
      Targets: [{ Id: 'q', Arn: arn }],
    }),
  );
  return url;
}

/** Drains the queue into `seen` (execution id → statuses announced). */
async function readEvents(queueUrl: string, seen: Map<string, string[]>) {
  const { sqs } = stack.ctx.clients;
  const out = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
  );
  for (const m of out.Messages ?? []) {
    const event = JSON.parse(m.Body!);
    const key = `${event.detail.job_name}/${event.detail.id}`;
    seen.set(key, [...(seen.get(key) ?? []), `${event.detail.status}:${event.detail.will_retry}`]);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
  }
}

type Fate = 'lost' | 'failed' | 'timeout' | 'succeeded';

/** One planned attempt taken by a (pretend) agent: scheduled → running; the caller decides its end. */
function claimed(jobName: string, fireAt: number, version: number): Promise<Execution> {
  const { ctx } = stack;
  return claimedExecution(
    ctx,
    plannedExecution(ctx, jobName, fireAt, { jobVersion: version }),
    'ghost',
    Date.now(),
  );
}

async function end(e: Execution, fate: Fate) {
  const { ctx } = stack;
  if (fate === 'lost') {
    expect(await ctx.executions.markLost(e, Date.now(), 'agent ghost stopped heartbeating')).toBe(true);
    return;
  }
  const result = {
    status: fate,
    exitCode: fate === 'succeeded' ? 0 : 1,
    output: '',
    outputTruncated: false,
    reason: null,
  } as const;
  expect(await ctx.executions.finish(e, 'ghost', result, Date.now())).toBe(true);
}

async function job(name: string) {
  return (await stack.api('GET', `/v1/jobs/${name}`)).body;
}

describe('retention with a lagging stream consumer', () => {
  it('retries, counts and announces every lost or failed attempt although newer runs trim the history first', {
    timeout: 180_000,
  }, async () => {
    const { ctx } = stack;
    const queueUrl = await eventsQueue();
    const seen = new Map<string, string[]>();
    // Several rounds: each its own job, the poller paused and resumed each time.
    for (let round = 0; round < 3; round++) {
      const name = `lagging-${round}`;
      const { job: created } = await upsertJob(ctx, {
        name,
        schedule: '@manually',
        executor_config: { command: 'true' },
        retries: 1,
        retry_backoff: '10m', // the retries wait (scheduled); the test checks they exist, not that they run
      });
      const version = (await ctx.jobs.get(name))!.version;
      expect(created.name).toBe(name);

      await stack.streamPoller.pause();
      const base = Date.now() - 120_000;
      // Two runs planned ahead: the newest ids of the job.
      for (const ahead of [3_600_000, 7_200_000]) {
        await ctx.executions.createScheduled(
          plannedExecution(ctx, name, base + ahead, { jobVersion: version }),
          Date.now(),
        );
      }
      // Older attempts, running while newer ones finish...
      const fates: Fate[] = ['lost', 'failed', 'lost', 'timeout', 'lost', 'failed'];
      const older = [];
      for (let i = 0; i < fates.length; i++) older.push(await claimed(name, base + i * 1_000, version));
      for (let i = 0; i < 4; i++)
        await end(await claimed(name, base + 30_000 + i * 1_000, version), 'succeeded');
      // ... and end (lost is marked late) only after them: their records come last.
      for (let i = 0; i < fates.length; i++) await end(older[i]!, fates[i]!);
      stack.streamPoller.resume();

      const failures = older.map((e) => e.executionId);
      await waitFor(
        async () => {
          await readEvents(queueUrl, seen);
          const j = await job(name);
          return (
            j.error_count === fates.length &&
            j.success_count === 4 &&
            failures.every((id) => seen.has(`${name}/${id}`))
          );
        },
        60_000,
        `the reactions of ${name}`,
      ).catch(async (error: Error) => {
        const left = await ctx.executions.listForJob(name, { newestFirst: false });
        throw new Error(
          `${error.message}; job ${JSON.stringify(await job(name))}; events ${JSON.stringify([...seen])}; executions ${JSON.stringify(left.map((e) => [e.executionId, e.status, e.attempt]))}`,
        );
      });

      // Retention runs after a batch's counts are written: wait until it has trimmed the history to at
      // most KEEP reacted finishes (+ the one reacting last); the planned runs must all still be there.
      let all = await ctx.executions.listForJob(name, { newestFirst: false });
      await waitFor(
        async () => {
          all = await ctx.executions.listForJob(name, { newestFirst: false });
          return all.filter((e) => TERMINAL.has(e.status)).length <= KEEP + 1;
        },
        30_000,
        `the retention of ${name}`,
      ).catch(() => undefined);
      for (const e of older) {
        // Its retry: attempt 2 of the same group and slot, due the backoff after the failure.
        const retry = all.find((r) => r.executionId === executionIdFor(e.group, 0, 2));
        expect(retry, `retry of ${e.executionId}`).toMatchObject({ trigger: 'retry', status: 'scheduled' });
        expect(seen.get(`${name}/${e.executionId}`)).toEqual([
          expect.stringMatching(/^(lost|failed|timeout):true$/),
        ]);
      }
      const finished = all.filter((e) => TERMINAL.has(e.status));
      expect(finished.length).toBeLessThanOrEqual(KEEP + 1);
      expect(all.filter((e) => e.status === 'scheduled' && e.attempt === 1)).toHaveLength(2);
    }
  });

  it('gives a finished execution its expiry only once it has reacted', async () => {
    const { ctx } = stack;
    await upsertJob(ctx, { name: 'ttl', schedule: '@manually', executor_config: { command: 'true' } });
    const version = (await ctx.jobs.get('ttl'))!.version;
    await stack.streamPoller.pause();
    const e = await claimed('ttl', Date.now() - 5_000, version);
    await end(e, 'failed');
    const raw = async () =>
      (
        await ctx.clients.doc.send(
          new GetCommand({
            TableName: ctx.config.tables.executions,
            Key: { jobName: 'ttl', executionId: e.executionId },
          }),
        )
      ).Item!;
    const before = await raw();
    expect(before.status).toBe('failed');
    expect(before.expiresAt).toBeUndefined();
    stack.streamPoller.resume();
    const after = await waitFor(
      async () => {
        const item = await raw();
        return typeof item.reactedAt === 'number' ? item : null;
      },
      20_000,
      'the reaction',
    );
    const days = ctx.config.retentionDays;
    expect(after.expiresAt).toBeGreaterThanOrEqual(
      Math.floor((after.reactedAt as number) / 1000) + days * 86_400,
    );
  });

  it('takes up a finish whose own record never got its reaction at the next finish of the job', async () => {
    const { ctx } = stack;
    await upsertJob(ctx, {
      name: 'missed-record',
      schedule: '@manually',
      executor_config: { command: 'true' },
      retries: 1,
      retry_backoff: '10m',
    });
    const version = (await ctx.jobs.get('missed-record'))!.version;
    await stack.streamPoller.pause();
    try {
      // A failure that ended 20 minutes ago and whose record the consumer gave up on (here: never saw).
      const old = await claimed('missed-record', Date.now() - 21 * 60_000, version);
      const result = {
        status: 'failed',
        exitCode: 1,
        output: '',
        outputTruncated: false,
        reason: null,
      } as const;
      expect(await ctx.executions.finish(old, 'ghost', result, Date.now() - 20 * 60_000)).toBe(true);
      const fresh = await claimed('missed-record', Date.now() - 1_000, version);
      await end(fresh, 'succeeded');
      const newest = (await ctx.executions.get('missed-record', fresh.executionId))!;
      const out = await reactToChanges(ctx, [
        { id: 'x', oldImage: { status: 'running' }, newImage: { ...newest } },
      ]);
      expect(out).toMatchObject({ reacted: 1, failed: [] });
      expect(
        (await ctx.executions.reactionMarks('missed-record', old.executionId))?.reactedAt,
      ).not.toBeNull();
      expect(await job('missed-record')).toMatchObject({ error_count: 1, success_count: 1 });
      expect(await ctx.executions.get('missed-record', executionIdFor(old.group, 0, 2))).toMatchObject({
        trigger: 'retry',
        status: 'scheduled',
      });
    } finally {
      stack.streamPoller.resume();
    }
  });
});
