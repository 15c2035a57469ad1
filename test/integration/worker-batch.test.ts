/**
 * The worker function (functions/worker/handler.ts, the real handler) takes up to ten launches an
 * invocation (issue 16: Lambda bills the hold to the fire time once for the batch, not once per launch).
 * On the emulators: launches of one fire second, received together, are claimed together (one read of the
 * pause flag for the batch), each held to the fire time and run once — a duplicate delivery inside the same
 * batch included — and one too early is answered on its own.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { Client } from '@smithy/core/client';
import type { Context as LambdaContext, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertJob } from '../../shared/jobs/jobs-service.ts';
import { MAX_HOLD_MS } from '../../shared/timing.ts';
import { plannedExecution } from './support/executions.ts';
import { useTestStack } from './support/stack.ts';

const stack = useTestStack({
  agents: [],
  worker: false,
  tickIntervalMs: 3_600_000,
  settings: { CRONPLANE_WORKER_ALLOW: JSON.stringify({ http: ['http://127.0.0.1:*'] }) },
});

/** When each path was called. */
const hits = new Map<string, number[]>();
const server = http.createServer((req, res) => {
  hits.set(req.url ?? '', [...(hits.get(req.url ?? '') ?? []), Date.now()]);
  res.writeHead(200).end('ok');
});
let base = '';
/** The Control tables' reads (the pause flag) of every DynamoDB client in this process, while counting. */
let pauseReads: number | null = null;
let handler: (event: SQSEvent, context: LambdaContext) => Promise<SQSBatchResponse>;
const saved = { ...process.env };

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The handler's clients are its own: count its reads of the pause flag on every client of the process.
  const proto = Client.prototype as unknown as { send: (...args: unknown[]) => unknown };
  const send = proto.send;
  proto.send = function (this: unknown, ...args: unknown[]) {
    const input = (args[0] as { input?: { RequestItems?: Record<string, unknown> } }).input;
    if (
      pauseReads !== null &&
      Object.keys(input?.RequestItems ?? {}).includes(stack.env.CRONPLANE_CONTROL_TABLE!)
    )
      pauseReads++;
    return send.apply(this, args);
  };
  // The handler builds its context from the environment when loaded, as on Lambda.
  Object.assign(process.env, stack.env);
  handler = (await import('../../functions/worker/handler.ts')).handler as unknown as typeof handler;
});
afterAll(async () => {
  process.env = saved;
  await new Promise<void>((r) => server.close(() => r()));
});

const lambdaContext = { awsRequestId: 'batch-1', functionName: 'worker' } as LambdaContext;

describe('the worker takes a batch of launches', () => {
  it('holds one fire second together, runs each launch once, and answers an early one on its own', async () => {
    const { ctx } = stack;
    const queueUrl = ctx.config.workerQueueUrl!;
    const fireAt = Math.ceil((Date.now() + 3_000) / 1_000) * 1_000;
    const names = ['wb-a', 'wb-b', 'wb-c'];
    const launches = [];
    for (const name of names) {
      const { job } = await upsertJob(ctx, {
        name,
        schedule: '@manually',
        executor: 'http',
        executor_config: { method: 'GET', url: `${base}/${name}`, expectCode: '200' },
      });
      const planned = { ...plannedExecution(ctx, name, fireAt, { jobVersion: job.version }), queueUrl };
      expect(await ctx.executions.createScheduled(planned, Date.now())).toBeNull();
      launches.push({ jobName: name, executionId: planned.executionId, scheduledAt: fireAt });
    }
    // As the planner sends them (visible a second early), the first delivered twice; and a launch a minute
    // ahead visible now (as after the longest SQS delay; not planned yet: answered `later` before any read).
    await ctx.dispatch.send(queueUrl, [...launches, launches[0]!], Date.now);
    const early = { jobName: 'wb-early', executionId: 'x', scheduledAt: Date.now() + MAX_HOLD_MS + 60_000 };
    await ctx.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(early) }),
    );
    const received = [];
    while (received.length < 5) {
      received.push(
        ...(await ctx.dispatch.receive(queueUrl, { max: 10, waitSeconds: 5, visibilitySeconds: 60 })),
      );
      expect(Date.now()).toBeLessThan(fireAt + 10_000);
    }
    expect(received).toHaveLength(5);
    const records = received.map((m, i) => ({
      messageId: `m${i}`,
      receiptHandle: m.receiptHandle,
      body: JSON.stringify(m.launch),
      attributes: { ApproximateReceiveCount: '1' },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:worker',
      awsRegion: 'us-east-1',
    }));
    expect(Date.now()).toBeLessThan(fireAt);
    pauseReads = 0;
    const res = await handler({ Records: records as SQSEvent['Records'] }, lambdaContext);
    // Claimed together: the jobs and the pause flag read once after the batch's claims, not once a launch.
    expect(pauseReads).toBe(1);
    pauseReads = null;

    // Only the early one is handed back (and hidden until near its fire time).
    const earlyId = records.find((r) => JSON.parse(r.body).jobName === 'wb-early')!.messageId;
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: earlyId }]);
    // Each job's target called once (the duplicate in the same batch too), held to the fire time.
    for (const name of names) {
      expect(hits.get(`/${name}`), name).toHaveLength(1);
      expect(hits.get(`/${name}`)![0]).toBeGreaterThanOrEqual(fireAt);
    }
    for (const l of launches) {
      const e = await ctx.executions.get(l.jobName, l.executionId);
      expect(e?.status, l.jobName).toBe('succeeded');
      expect(e?.startedAt).toBeGreaterThanOrEqual(fireAt);
    }
    expect(await ctx.dispatch.receive(queueUrl, { max: 10, waitSeconds: 1, visibilitySeconds: 1 })).toEqual(
      [],
    );
  });
});
