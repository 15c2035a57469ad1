/**
 * Figure `sustained_executions_per_minute`: agent processes (`node bin/cronplane.js agent --name bench-N
 * --concurrency C`, env = process.env + the stack's env) run `jobs` shell jobs (`true`) scheduled
 * `@every 1s` for a measured window after a warm-up. The local stack (API, ticker every 1 s, stream
 * poller) runs in this process with no in-process agents.
 *
 * Counted over the fire times in [W0, W1): expected (jobs × seconds), executions that finished inside
 * the window (→ per minute), lost (a fire time whose execution never ran to an end, or ended `lost`),
 * missing (no execution at all), duplicated (more than one execution for one job + scheduledAt), and the
 * lateness of those launches. `launch_messages` / `resent_messages` count the SQS launch messages the
 * stack sent for them (a resend is harmless, but costs a receive and two reads on an agent).
 */
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { upsertJob } from '../../shared/jobs/jobs-service.ts';
import {
  type AgentProcess,
  countBy,
  cpuBetween,
  cpuSnapshot,
  emit,
  probeDynamoLatency,
  probeDynamoThroughput,
  progress,
  quantiles,
  scanExecutions,
  serialTicker,
  sleep,
  socketQueue,
  spawnAgent,
  startStack,
  stopStack,
  traceTicks,
} from './support.ts';

export interface SustainedOptions {
  readonly agents: number;
  readonly concurrency: number;
  readonly jobs: number;
  readonly windowMs: number;
  readonly warmupMs?: number;
  /** `stack`: the local stack's 1 s ticker; `serial`: ticks back to back, never overlapping. */
  readonly ticker: 'stack' | 'serial';
}

type SqsStack = { add: (mw: unknown, options: Record<string, unknown>) => void };

export async function sustained(o: SustainedOptions): Promise<void> {
  const warmupMs = o.warmupMs ?? 5_000;
  progress(
    `sustained_executions_per_minute: ${o.agents} agent processes × concurrency ${o.concurrency}, ${o.jobs} jobs @every 1s, ${o.windowMs / 1000} s window, ${o.ticker} ticker`,
  );
  const stack = await startStack({
    agents: [],
    settings: { CRONPLANE_EXECUTIONS_KEPT: '100000' },
    tickIntervalMs: o.ticker === 'stack' ? 1_000 : 24 * 3_600_000,
  });
  const stopTicker = o.ticker === 'serial' ? serialTicker(stack) : async () => {};
  const agents: AgentProcess[] = [];
  try {
    const ctx = stack.ctx;
    const idleLatency = await probeDynamoLatency(ctx);
    const capacity = await probeDynamoThroughput(ctx);
    const ticks = traceTicks(ctx);
    socketQueue.reset();
    const sends = new Map<string, number>();
    (ctx.clients.sqs.middlewareStack as unknown as SqsStack).add(
      (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: any) => {
        if (context.commandName === 'SendMessageBatchCommand') {
          for (const e of args.input.Entries ?? []) {
            const b = JSON.parse(e.MessageBody) as { jobName: string; scheduledAt: number };
            const k = `${b.jobName}@${b.scheduledAt}`;
            sends.set(k, (sends.get(k) ?? 0) + 1);
          }
        }
        return next(args);
      },
      { step: 'initialize', name: 'bench-sqs-sends' },
    );

    const t0 = Date.now();
    for (let i = 0; i < o.agents; i++) {
      agents.push(
        spawnAgent(`bench-${i}`, ['--concurrency', String(o.concurrency)], {
          ...stack.env,
          CRONPLANE_AGENT_GRACE_MS: '5000',
        }),
      );
    }
    await Promise.race([
      Promise.all(agents.map((a) => a.started)),
      sleep(90_000).then(() => Promise.reject(new Error('agents did not start within 90 s'))),
    ]);
    progress(`${o.agents} agent processes started in ${Date.now() - t0} ms`);

    const t1 = Date.now();
    const names = Array.from({ length: o.jobs }, (_, i) => `sus-${String(i).padStart(3, '0')}`);
    for (const name of names) {
      await upsertJob(ctx, { name, schedule: '@every 1s', executor_config: { command: 'true' } });
    }
    const created = Date.now() - t1;
    const w0 = Math.ceil(Date.now() / 1000) * 1000 + warmupMs;
    const w1 = w0 + o.windowMs;
    progress(
      `${o.jobs} jobs created in ${created} ms; measuring fire times in the ${o.windowMs / 1000} s from ${new Date(w0).toISOString()}`,
    );
    await sleep(w0 - Date.now());
    ticks.reset();
    const cpu0 = cpuSnapshot();
    while (Date.now() < w1) {
      await sleep(Math.min(10_000, w1 - Date.now()));
      if (Date.now() < w1) progress(`  ${Math.round((w1 - Date.now()) / 1000)} s to go`);
    }

    // Let the window's executions end (they run `true`), then count.
    const names_ = new Set(names);
    const inWindow = (e: { jobName: string; scheduledAt: number }) =>
      names_.has(e.jobName) && e.scheduledAt >= w0 && e.scheduledAt < w1;
    const tickSummary = ticks.summary();
    const cpu = cpuBetween(cpu0, cpuSnapshot());
    const drainDeadline = Date.now() + 60_000;
    let executions = (await scanExecutions(ctx)).filter(inWindow);
    while (executions.some((e) => e.finishedAt === null) && Date.now() < drainDeadline) {
      await sleep(2_000);
      executions = (await scanExecutions(ctx)).filter(inWindow);
    }
    const all = (await scanExecutions(ctx)).filter((e) => names_.has(e.jobName));
    executions = all.filter(inWindow);

    const expectedPerJob = o.windowMs / 1000; // @every 1s fires on whole seconds (epoch-anchored)
    const expected = expectedPerJob * o.jobs;
    const byFire = new Map<string, typeof executions>();
    for (const e of executions) {
      const k = `${e.jobName}@${e.scheduledAt}`;
      byFire.set(k, [...(byFire.get(k) ?? []), e]);
    }
    let duplicated = 0;
    let completedFires = 0;
    for (const list of byFire.values()) {
      duplicated += Math.max(0, list.length - 1);
      if (list.some((e) => e.startedAt !== null && e.finishedAt !== null && e.status !== 'lost'))
        completedFires++;
    }
    const missing = expected - byFire.size;
    const finishedInWindow = all.filter(
      (e) => e.finishedAt !== null && e.finishedAt >= w0 && e.finishedAt < w1,
    ).length;
    const lateness = executions
      .filter((e) => e.startedAt !== null)
      .map((e) => (e.startedAt as number) - e.scheduledAt);
    const q = quantiles(lateness);
    let messages = 0;
    let resent = 0;
    for (const [k, n] of sends) {
      const at = Number(k.slice(k.lastIndexOf('@') + 1));
      if (at < w0 || at >= w1) continue;
      messages += n;
      resent += n - 1;
    }
    // What became of fire times that never ran: when planned and how often sent (the agents' own hand-offs
    // are not counted here).
    const stuck = executions
      .filter((e) => e.finishedAt === null)
      .slice(0, 5)
      .map((e) => ({
        job: e.jobName,
        status: e.status,
        at_s: (e.scheduledAt - w0) / 1000,
        planned_after_fire_ms: e.createdAt - e.scheduledAt,
        sends: sends.get(`${e.jobName}@${e.scheduledAt}`) ?? 0,
      }));
    const queueState = await ctx.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: ctx.config.defaultQueueUrl,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    emit('sustained_executions_per_minute', {
      agents: o.agents,
      agent_mode: 'process',
      ticker: o.ticker,
      concurrency: o.concurrency,
      jobs: o.jobs,
      window_s: o.windowMs / 1000,
      expected,
      executions: finishedInWindow,
      per_minute: Math.round((finishedInWindow * 60_000) / o.windowMs),
      succeeded: executions.filter((e) => e.status === 'succeeded').length,
      lost: expected - completedFires,
      duplicated,
      missing,
      statuses: countBy(executions, (e) => e.status),
      by_agent: countBy(executions, (e) => e.agentId ?? '-'),
      lateness_ms: { p50: q.p50, p95: q.p95, p99: q.p99, max: q.max },
      launch_messages: messages,
      resent_messages: resent,
      unfinished: stuck,
      queue_at_end: queueState.Attributes,
      ticks_in_window: tickSummary,
      ddb_idle_get: { p50: idleLatency.p50, p95: idleLatency.p95 },
      ddb_capacity: capacity,
      cpu_cores_used: cpu,
      job_create_ms: created,
      sdk_socket_queue_max: socketQueue.max,
      agent_problem_lines: agents.reduce((s, a) => s + a.problems.length, 0),
    });
  } finally {
    await stopTicker();
    await Promise.all(agents.map((a) => a.stop()));
    await stopStack(stack);
  }
}
