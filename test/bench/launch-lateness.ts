/**
 * Figure `launch_lateness_ms`: N jobs (`@at` one whole second ~20 s ahead) all firing on the same
 * second, planned by the real tick, run by in-process agents. Lateness of one launch is
 * `startedAt − scheduledAt` of its execution (the agent takes startedAt after reading the execution and
 * the job, just before its claim transaction).
 *
 * A second line, `launch_lateness_breakdown_ms`, splits it up with request-level instrumentation on the
 * stack's own SQS and DynamoDB clients (which the ticker and the in-process agents share):
 *   - `ddb_idle_get`, `ddb_capacity`: DynamoDB Local's latency alone and its put/get rate at 16 in flight,
 *     measured before the jobs are created — the emulator's (and the host's) capacity right now
 *   - `cpu_cores_used`: CPU of this process, DynamoDB Local and moto from fire −10 s to the end
 *   - `ticks_from_fire_minus_10s`: ticks, how many ran at once at most, and their durations
 *   - `event_loop_delay_fire_pm_1s`: the longest stall (and p99) of this process's event loop from fire
 *     −1 s to +1 s, where the in-process agents start their launches
 *   - `sdk_socket_queue_max`: most requests the stack's AWS clients had queued behind their 50 sockets
 *   - `launch_messages`: SQS launch messages sent (more than `jobs` = re-sent by overlapping ticks)
 *   - `nominal_visible_lead`: scheduledAt − (first send time + DelaySeconds): how early SQS should show it
 *   - `receive_after_visible`: first receive − nominal visibility (moto's long-poll wake-up, receive cost)
 *   - `arrival`: first receive − scheduledAt (negative = early; the agent holds it until the fire time)
 *   - `run_ms`: finishedAt − startedAt (for `true`: the process's life plus writing the result)
 *   - `claimed_after_fire`: claimedAt − scheduledAt (negative = claimed ahead of the fire time, as intended)
 *   - `claim_path`: startedAt − max(first receive, scheduledAt): timer wake-up + the two reads
 *   - `sqs_receive_nonempty`, `messages_per_receive`: duration of ReceiveMessage calls that returned
 *     messages (moto's cost grows with the queue's length), and how many they returned on average
 *   - `not_started`: up to 5 launches that never started — when planned and sent (relative to the fire
 *     time), with what DelaySeconds, how often, and whether an agent ever received them
 *   - `jobs_without_execution`: jobs the planner never got to
 *   - `plan_span`: last launch message sent − the `now` of the tick that planned the first one
 *   - `first_send_before_fire`: how long before the fire time the first launch message was sent
 *   - `ddb_<Command>`: DynamoDB request latency during the burst (fire time −1 s … +15 s)
 *   - `ddb_requests_during_burst`: DynamoDB commands from fire −1 s to the end, by name
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { validateJob } from '../../shared/jobs/job.ts';
import {
  countBy,
  cpuBetween,
  cpuSnapshot,
  emit,
  meterDynamo,
  pool,
  probeDynamoLatency,
  probeDynamoThroughput,
  progress,
  quantiles,
  scanExecutions,
  serialTicker,
  sleep,
  socketQueue,
  startStack,
  stopStack,
  traceTicks,
} from './support.ts';

export interface LatenessOptions {
  readonly jobs: number;
  readonly agents: number;
  /** Per agent; undefined = the agent's default (4). */
  readonly concurrency: number | undefined;
  /** `shell` runs `true` with the real shell executor; `noop` returns success at once (no spawn). */
  readonly executor: 'shell' | 'noop';
  /** How far ahead of "now" the shared fire time is. */
  readonly leadMs: number;
  /**
   * `stack`: the local stack's own ticker (a 1 s setInterval that does not wait for the previous tick).
   * `serial`: the benchmark runs the same tick function back to back, never overlapping.
   */
  readonly ticker: 'stack' | 'serial';
}

const noopExecutor = {
  run: async () => ({
    status: 'succeeded' as const,
    exitCode: 0,
    output: '',
    outputTruncated: false,
    reason: null,
  }),
};

/** Launches not started this long after the fire time count as lost. */
const DEADLINE_MS = 300_000;
/** …or when no launch started for this long (longer than the agents' 60 s visibility timeout, so that
 * a message an agent took and dropped has come back once). */
const STALL_MS = 90_000;

type SqsStack = { add: (mw: unknown, options: Record<string, unknown>) => void };

export async function launchLateness(o: LatenessOptions): Promise<void> {
  const label = `${o.jobs} jobs, ${o.agents} agents × concurrency ${o.concurrency ?? 'default'}, ${o.executor}, ${o.ticker} ticker`;
  progress(`launch_lateness_ms: ${label}`);
  const stack = await startStack({
    agents: Array.from({ length: o.agents }, (_, i) => ({
      agentId: `bench-${i}`,
      ...(o.concurrency === undefined ? {} : { concurrency: o.concurrency }),
      ...(o.executor === 'noop' ? { executors: { shell: noopExecutor } } : {}),
    })),
    settings: { CRONPLANE_EXECUTIONS_KEPT: '1000' },
    tickIntervalMs: o.ticker === 'stack' ? 1_000 : 24 * 3_600_000,
  });
  const stopTicker = o.ticker === 'serial' ? serialTicker(stack) : async () => {};
  try {
    const ctx = stack.ctx;
    const idleLatency = await probeDynamoLatency(ctx);
    const capacity = await probeDynamoThroughput(ctx);
    progress(
      `DynamoDB Local now: GetItem p50 ${idleLatency.p50} ms alone; ${capacity.put_per_s} puts/s, ${capacity.get_per_s} gets/s at 16 in flight`,
    );
    const ticks = traceTicks(ctx);
    socketQueue.reset();
    // Instrument the stack's SQS client: when each launch message was sent (and with what delay) and
    // when an agent first received it.
    const sent = new Map<string, { at: number; delay: number; count: number }>();
    const received = new Map<string, number>();
    /** Receives that returned messages: [start, duration, messages]. */
    const receives: Array<[number, number, number]> = [];
    (ctx.clients.sqs.middlewareStack as unknown as SqsStack).add(
      (next: (a: unknown) => Promise<any>, context: { commandName?: string }) => async (args: any) => {
        const before = Date.now();
        const out = await next(args);
        const now = Date.now();
        if (context.commandName === 'SendMessageBatchCommand') {
          for (const e of args.input.Entries ?? []) {
            const body = JSON.parse(e.MessageBody) as { executionId: string; jobName: string };
            const k = `${body.jobName}/${body.executionId}`;
            const first = sent.get(k);
            if (first) first.count++;
            else sent.set(k, { at: before, delay: e.DelaySeconds ?? 0, count: 1 });
          }
        } else if (context.commandName === 'ReceiveMessageCommand') {
          const got = out.output?.Messages ?? [];
          if (got.length > 0) receives.push([before, now - before, got.length]);
          for (const m of got) {
            const body = JSON.parse(m.Body) as { executionId: string; jobName: string };
            const key = `${body.jobName}/${body.executionId}`;
            if (!received.has(key)) received.set(key, now);
          }
        }
        return out;
      },
      { step: 'initialize', name: 'bench-sqs-trace' },
    );
    const ddb = meterDynamo(ctx.clients, 'bench-lateness');

    const fireAt = Math.ceil((Date.now() + o.leadMs) / 1000) * 1000;
    const iso = new Date(fireAt).toISOString();
    const t0 = Date.now();
    const names = Array.from({ length: o.jobs }, (_, i) => `lat-${String(i).padStart(5, '0')}`);
    // Straight into the Jobs table (no write-path planning): the tick must plan them.
    await pool(names, 16, async (name) => {
      const def = validateJob({ name, schedule: `@at ${iso}`, executor_config: { command: 'true' } });
      await ctx.jobs.putDefinition(def, fireAt, null, ctx.clock());
    });
    const cursor = await ctx.control.getCursor(0);
    progress(
      `created ${o.jobs} jobs in ${Date.now() - t0} ms; fire time ${iso} (in ${fireAt - Date.now()} ms), cursor ${cursor === null ? 'unset' : `${cursor - Date.now()} ms ahead`}`,
    );
    if (cursor !== null && cursor > fireAt) {
      throw new Error('the tick cursor passed the fire time while jobs were created; raise the lead time');
    }

    await sleep(fireAt - 10_000 - Date.now());
    ticks.reset();
    const cpu0 = cpuSnapshot();
    await sleep(fireAt - 1_000 - Date.now());
    ddb.reset();
    ddb.timing = true;
    // How long this process's event loop (ticker and agents live in it) stalled around the fire time.
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    loopDelay.enable();
    await sleep(fireAt + 1_000 - Date.now());
    loopDelay.disable();
    const stall = { max: Math.round(loopDelay.max / 1e6), p99: Math.round(loopDelay.percentile(99) / 1e6) };
    // Wait for every job to end (or a deadline), reading the table sparingly during the burst.
    await sleep(fireAt + 5_000 - Date.now());
    // Give up when nothing new started for a minute, or after the deadline: what has not started then
    // counts as lost.
    const deadline = fireAt + DEADLINE_MS;
    let executions = await scanExecutions(ctx);
    let lastStarted = -1;
    let lastProgressAt = Date.now();
    for (;;) {
      const done = executions.filter((e) => e.finishedAt !== null).length;
      const startedNow = executions.filter((e) => e.startedAt !== null).length;
      if (startedNow !== lastStarted) lastProgressAt = Date.now();
      lastStarted = startedNow;
      if (done >= o.jobs || Date.now() > deadline || Date.now() - lastProgressAt > STALL_MS) break;
      progress(`  ${done}/${o.jobs} finished, ${startedNow} started`);
      await sleep(3_000);
      executions = await scanExecutions(ctx);
    }
    ddb.timing = false;
    const cpu = cpuBetween(cpu0, cpuSnapshot());

    const byJob = new Map<string, typeof executions>();
    for (const e of executions) byJob.set(e.jobName, [...(byJob.get(e.jobName) ?? []), e]);
    const started = executions.filter((e) => e.startedAt !== null);
    const lateness = started.map((e) => (e.startedAt as number) - e.scheduledAt);
    const run = names.filter((n) => (byJob.get(n) ?? []).some((e) => e.startedAt !== null)).length;
    const duplicated = names.reduce(
      (s, n) => s + Math.max(0, (byJob.get(n) ?? []).filter((e) => e.startedAt !== null).length - 1),
      0,
    );
    const q = quantiles(lateness);
    emit('launch_lateness_ms', {
      jobs: o.jobs,
      agents: o.agents,
      concurrency: o.concurrency ?? 'default(4)',
      executor: o.executor,
      ticker: o.ticker,
      p50: q.p50,
      p95: q.p95,
      p99: q.p99,
      'p99.9': q['p99.9'],
      max: q.max,
      min: q.min,
      run,
      lost: o.jobs - run,
      deadline_s: DEADLINE_MS / 1000,
      duplicated,
      statuses: countBy(executions, (e) => e.status),
    });

    // The breakdown.
    const key = (e: { jobName: string; executionId: string }) => `${e.jobName}/${e.executionId}`;
    const visibleLead: number[] = [];
    const afterVisible: number[] = [];
    const arrival: number[] = [];
    const claimPath: number[] = [];
    for (const e of started) {
      const s = sent.get(key(e));
      const r = received.get(key(e));
      if (s) visibleLead.push(e.scheduledAt - (s.at + s.delay * 1000));
      if (s && r !== undefined) afterVisible.push(r - (s.at + s.delay * 1000));
      if (r !== undefined) {
        arrival.push(r - e.scheduledAt);
        claimPath.push((e.startedAt as number) - Math.max(r, e.scheduledAt));
      }
    }
    const sendTimes = [...sent.values()].map((s) => s.at);
    const planNow = Math.min(...executions.map((e) => e.createdAt));
    const ddbLatency: Record<string, unknown> = {};
    for (const [cmd, samples] of ddb.latencies) {
      const inBurst = samples.filter(([t]) => t >= fireAt - 1_000 && t < fireAt + 15_000).map(([, d]) => d);
      if (inBurst.length > 0) ddbLatency[`ddb_${cmd}`] = quantiles(inBurst);
    }
    // What became of the launches that never started: sent? when, with what delay? received?
    const notStarted = executions
      .filter((e) => e.startedAt === null)
      .slice(0, 5)
      .map((e) => {
        const s = sent.get(key(e));
        const r = received.get(key(e));
        return {
          job: e.jobName,
          status: e.status,
          planned_after_fire_ms: e.createdAt - e.scheduledAt,
          sent_after_fire_ms: s ? s.at - e.scheduledAt : null,
          delay_s: s?.delay ?? null,
          sends: s?.count ?? 0,
          received_after_fire_ms: r === undefined ? null : r - e.scheduledAt,
        };
      });
    const unplanned = names.filter((n) => !byJob.has(n)).length;
    emit('launch_lateness_breakdown_ms', {
      jobs: o.jobs,
      concurrency: o.concurrency ?? 'default(4)',
      executor: o.executor,
      ticker: o.ticker,
      ddb_idle_get: { p50: idleLatency.p50, p95: idleLatency.p95 },
      ddb_capacity: capacity,
      cpu_cores_used: cpu,
      ticks_from_fire_minus_10s: ticks.summary(),
      event_loop_delay_fire_pm_1s: stall,
      sdk_socket_queue_max: socketQueue.max,
      launch_messages: [...sent.values()].reduce((n, v) => n + v.count, 0),
      nominal_visible_lead: quantiles(visibleLead),
      receive_after_visible: quantiles(afterVisible),
      arrival: quantiles(arrival),
      claim_path: quantiles(claimPath),
      run_ms: quantiles(
        executions
          .filter((e) => e.startedAt !== null && e.finishedAt !== null)
          .map((e) => e.finishedAt! - e.startedAt!),
      ),
      claimed_after_fire: quantiles(
        executions.filter((e) => e.claimedAt !== null).map((e) => e.claimedAt! - e.scheduledAt),
      ),
      sqs_receive_nonempty: quantiles(receives.filter(([t]) => t >= fireAt - 2_000).map(([, d]) => d)),
      messages_per_receive:
        Math.round((receives.reduce((n, [, , m]) => n + m, 0) / Math.max(1, receives.length)) * 10) / 10,
      not_started: notStarted,
      jobs_without_execution: unplanned,
      plan_span: sendTimes.length ? Math.max(...sendTimes) - planNow : null,
      first_send_before_fire: sendTimes.length ? fireAt - Math.min(...sendTimes) : null,
      ...ddbLatency,
      ddb_requests_during_burst: ddb.byCommand(),
    });
  } finally {
    await stopTicker();
    await stopStack(stack);
  }
}
