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
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import {
  type AgentProcess,
  agentCpu,
  clockTicksPerSecond,
  countBy,
  cpuBetween,
  cpuSnapshot,
  emit,
  memoryMb,
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
  /** Variant name in the JSON line. */
  readonly variant?: string;
  /** Write a V8 CPU profile of each agent process (`--cpu-prof`) into this directory. */
  readonly cpuProfileDir?: string;
  /**
   * The jobs' schedule (default `@every 1s`) and its period; the window must be a whole number of periods
   * (`0 * * * * *`, 60,000: every job fires on the same second once a minute — a burst of `jobs` launches).
   */
  readonly schedule?: string;
  readonly periodMs?: number;
  /**
   * Jobs created at once through the API (default 1: one after another, as a user's script would). Each
   * creation plans the job's next 15 s locally; 100 `@every 1s` jobs created 8 at a time put 1,500 launches
   * on the emulators within seconds, and the window then opened ~9 s behind, draining for a minute.
   */
  readonly createConcurrency?: number;
}

const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'TransactWriteItems', 'BatchWriteItem']);
const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);

/** Requests per execution by API name, and DynamoDB's split into writes and reads. */
function perExecution(counts: Record<string, number>, executions: number) {
  const per = (n: number) => (executions > 0 ? Math.round((n / executions) * 1000) / 1000 : null);
  let writes = 0;
  let reads = 0;
  const byCommand: Record<string, number | null> = {};
  for (const [k, n] of Object.entries(counts).sort(([a], [b]) => a.localeCompare(b))) {
    if (n === 0) continue;
    byCommand[k] = per(n);
    const api = k.replace(/^DynamoDB\./, '');
    if (k.startsWith('DynamoDB.') || !k.includes('.')) {
      if (WRITES.has(api)) writes += n;
      if (READS.has(api)) reads += n;
    }
  }
  return { ddb_writes: per(writes), ddb_reads: per(reads), by_command: byCommand };
}

function diffCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(b)) out[k] = n - (a[k] ?? 0);
  return out;
}

type SqsStack = { add: (mw: unknown, options: Record<string, unknown>) => void };

export async function sustained(o: SustainedOptions): Promise<void> {
  const warmupMs = o.warmupMs ?? 5_000;
  const schedule = o.schedule ?? '@every 1s';
  const periodMs = o.periodMs ?? 1_000;
  if (o.windowMs % periodMs !== 0) throw new Error('the window must be a whole number of periods');
  progress(
    `sustained_executions_per_minute: ${o.agents} agent processes × concurrency ${o.concurrency}, ${o.jobs} jobs ${schedule}, ${o.windowMs / 1000} s window, ${o.ticker} ticker`,
  );
  const stack = await startStack({
    agents: [],
    settings: { CRONPLANE_EXECUTIONS_KEPT: '100000' },
    tickIntervalMs: o.ticker === 'stack' ? 1_000 : 24 * 3_600_000,
  });
  const stopTicker = o.ticker === 'serial' ? serialTicker(stack) : async () => {};
  const agents: AgentProcess[] = [];
  const countsDir = mkdtempSync(join(tmpdir(), 'cronplane-bench-counts-'));
  try {
    const ctx = stack.ctx;
    const idleLatency = await probeDynamoLatency(ctx);
    const capacity = await probeDynamoThroughput(ctx);
    const ticks = traceTicks(ctx);
    socketQueue.reset();
    const sends = new Map<string, number>();
    /** CRONPLANE_BENCH_TIMELINE: where to write one line per fire second of the window (below). */
    const timelineFile = process.env.CRONPLANE_BENCH_TIMELINE;
    /** When each launch's first message becomes visible (sent + its delay): the timeline's `visible`. */
    const sentAt = new Map<string, number>();
    (ctx.clients.sqs.middlewareStack as unknown as SqsStack).add(
      (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: any) => {
        if (context.commandName === 'SendMessageBatchCommand') {
          for (const e of args.input.Entries ?? []) {
            const b = JSON.parse(e.MessageBody) as { jobName: string; scheduledAt: number };
            const k = `${b.jobName}@${b.scheduledAt}`;
            sends.set(k, (sends.get(k) ?? 0) + 1);
            if (timelineFile && !sentAt.has(k))
              sentAt.set(k, Date.now() + 1_000 * Number(e.DelaySeconds ?? 0));
          }
        }
        return next(args);
      },
      { step: 'initialize', name: 'bench-sqs-sends' },
    );

    const stackDynamo = meterDynamo(ctx.clients, 'bench-sustained');
    const t0 = Date.now();
    const preload = new URL('./count-requests.mjs', import.meta.url).href;
    if (o.cpuProfileDir) mkdirSync(o.cpuProfileDir, { recursive: true });
    for (let i = 0; i < o.agents; i++) {
      agents.push(
        spawnAgent(
          `bench-${i}`,
          ['--concurrency', String(o.concurrency)],
          {
            ...stack.env,
            CRONPLANE_AGENT_GRACE_MS: '5000',
            CRONPLANE_BENCH_COUNTS_FILE: join(countsDir, `bench-${i}.json`),
          },
          undefined,
          [
            `--import=${preload}`,
            ...(o.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfileDir}`] : []),
          ],
        ),
      );
    }
    /** Every agent's request counts so far (SIGUSR2 makes the preload write them), summed. */
    const agentCounts = async (): Promise<Record<string, number>> => {
      const sum: Record<string, number> = {};
      for (const a of agents) {
        const file = join(countsDir, `${a.name}.json`);
        const seq0 = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { seq: number }).seq : 0;
        a.child.kill('SIGUSR2');
        for (let i = 0; i < 100; i++) {
          await sleep(20);
          try {
            const got = JSON.parse(readFileSync(file, 'utf8')) as {
              seq: number;
              counts: Record<string, number>;
            };
            if (got.seq > seq0) {
              for (const [k, n] of Object.entries(got.counts)) sum[k] = (sum[k] ?? 0) + n;
              break;
            }
          } catch {
            // not written yet, or half-written
          }
        }
      }
      return sum;
    };
    await Promise.race([
      Promise.all(agents.map((a) => a.started)),
      sleep(90_000).then(() => Promise.reject(new Error('agents did not start within 90 s'))),
    ]);
    progress(`${o.agents} agent processes started in ${Date.now() - t0} ms`);

    const t1 = Date.now();
    const names = Array.from({ length: o.jobs }, (_, i) => `sus-${String(i).padStart(3, '0')}`);
    // Through the API, as a user would.
    // A 409 (planned concurrently by the tick: the jobs created first already fire) or a 503 (the store
    // busy with a burst) says "retry", and a user's script would: up to 5 times, a second apart.
    await pool(names, o.createConcurrency ?? 1, async (name) => {
      for (let attempt = 1; ; attempt++) {
        const res = await fetch(`${stack.url}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name, schedule, executor_config: { command: 'true' } }),
        });
        if (res.ok) return;
        const text = await res.text();
        if ((res.status !== 409 && res.status !== 503) || attempt === 5)
          throw new Error(`POST /v1/jobs ${name}: ${res.status} ${text}`);
        await sleep(1_000);
      }
    });
    const created = Date.now() - t1;
    const w0 = Math.ceil(Date.now() / 1000) * 1000 + warmupMs;
    const w1 = w0 + o.windowMs;
    progress(
      `${o.jobs} jobs created in ${created} ms; measuring fire times in the ${o.windowMs / 1000} s from ${new Date(w0).toISOString()}`,
    );
    await sleep(w0 - Date.now());
    ticks.reset();
    const counts0 = await agentCounts();
    stackDynamo.reset();
    const cpu0 = cpuSnapshot();
    const agentCpu0 = agents.map((a) => agentCpu(a.pid));
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
    const agentCpu1 = agents.map((a) => agentCpu(a.pid));
    const spent = (part: 'agent' | 'spawner' | 'jobs') =>
      agentCpu1.reduce((s, c, i) => s + Math.max(0, c[part] - agentCpu0[i]![part]), 0);
    // The agent's CPU is its own and its spawner's (agent/spawner.ts starts its shell jobs).
    const spawnerCpuTicks = spent('spawner');
    const agentCpuTicks = spent('agent') + spawnerCpuTicks;
    const jobCpuTicks = spent('jobs');
    const agentRequests = diffCounts(counts0, await agentCounts());
    // The agent's size at the window's end: each spawn forks it (copies its page tables).
    const agentRssMb = agents.map((a) => memoryMb(a.pid).rss);
    const stackRequests = stackDynamo.byCommand();
    // Runs still starting at the window's end: when did the last of them start?
    const drainDeadline = Date.now() + 120_000;
    let executions = (await scanExecutions(ctx)).filter(inWindow);
    while (executions.some((e) => e.finishedAt === null) && Date.now() < drainDeadline) {
      await sleep(2_000);
      executions = (await scanExecutions(ctx)).filter(inWindow);
    }
    const all = (await scanExecutions(ctx)).filter((e) => names_.has(e.jobName));
    executions = all.filter(inWindow);

    // `@every 1s` fires on whole seconds (epoch-anchored), `0 * * * * *` on whole minutes: a window of k
    // periods holds k fire times of each job wherever it starts.
    const expectedPerJob = o.windowMs / periodMs;
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
    // Where the tail comes from: fire times (by second of the window) whose slowest start was over 1 s late —
    // a few stalls, or spread over the window.
    const slowestBySecond = new Map<number, number>();
    for (const e of executions) {
      if (e.startedAt === null) continue;
      const second = Math.floor((e.scheduledAt - w0) / 1000);
      slowestBySecond.set(second, Math.max(slowestBySecond.get(second) ?? 0, e.startedAt - e.scheduledAt));
    }
    const lateSeconds = [...slowestBySecond].filter(([, ms]) => ms > 1_000).sort(([a], [b]) => a - b);
    // Which step made a start over 1 s late: planned after its fire time, claimed after it (the launch
    // reached the agent, or its claim landed, too late), or claimed in time and started late (hold, gate,
    // spawn). `claim_lead_ms`: how long before the fire time each claim landed (negative: after it).
    const lateStarts = executions.filter((e) => e.startedAt !== null && e.startedAt - e.scheduledAt > 1_000);
    const plannedLate = (e: (typeof executions)[number]) => e.createdAt > e.scheduledAt;
    const claimedLate = (e: (typeof executions)[number]) =>
      !plannedLate(e) && e.claimedAt !== null && e.claimedAt > e.scheduledAt;
    const claimLeads = executions
      .filter((e) => e.claimedAt !== null)
      .map((e) => e.scheduledAt - (e.claimedAt as number))
      .sort((a, b) => a - b);
    const claimLead = quantiles(claimLeads);
    const sortedLateness = [...lateness].sort((a, b) => a - b);
    const p999 =
      sortedLateness.length > 0
        ? sortedLateness[Math.min(sortedLateness.length - 1, Math.ceil(0.999 * sortedLateness.length) - 1)]
        : null;
    // How far the last run trails the last fire time of the window (0 when keeping up: the run of the
    // last fire time starts at it); null when some run of the window never started.
    const lastFire = Math.floor((w1 - 1) / periodMs) * periodMs;
    const starts = executions.map((e) => e.startedAt);
    const behindS =
      starts.length === 0 || starts.some((t) => t === null)
        ? null
        : Math.round((Math.max(...(starts as number[])) - lastFire) / 100) / 10;
    if (timelineFile) {
      // One line per fire second of the window: where its launches' time went (planned, visible, claimed,
      // started), each as [median, worst] of (that instant − the fire time).
      const bySecond = new Map<number, typeof executions>();
      for (const e of executions) {
        const s = Math.floor((e.scheduledAt - w0) / 1000);
        const list = bySecond.get(s);
        if (list) list.push(e);
        else bySecond.set(s, [e]);
      }
      const lines = [...bySecond]
        .sort(([a], [b]) => a - b)
        .map(([s, list]) => {
          const rel = (at: (e: (typeof list)[number]) => number | null | undefined) => {
            const q2 = quantiles(
              list.flatMap((e) => {
                const t = at(e);
                return t == null ? [] : [t - e.scheduledAt];
              }),
            );
            return [q2.p50, q2.max];
          };
          return JSON.stringify({
            s,
            n: list.length,
            planned: rel((e) => e.createdAt),
            visible: rel((e) => sentAt.get(`${e.jobName}@${e.scheduledAt}`)),
            claimed: rel((e) => e.claimedAt),
            started: rel((e) => e.startedAt),
          });
        });
      writeFileSync(timelineFile, `${lines.join('\n')}\n`);
    }
    const hz = clockTicksPerSecond();
    const msPer = (ticks: number) =>
      finishedInWindow > 0 ? Math.round(((ticks / hz) * 1000 * 100) / finishedInWindow) / 100 : null;
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
      ...(o.variant ? { variant: o.variant } : {}),
      agents: o.agents,
      agent_mode: 'process',
      ticker: o.ticker,
      concurrency: o.concurrency,
      jobs: o.jobs,
      schedule,
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
      lateness_ms: { p50: q.p50, p95: q.p95, p99: q.p99, 'p99.9': p999, max: q.max },
      behind_s: behindS,
      // Fire seconds of the window whose slowest start was > 1 s late: how many, the first 10 and the last 10
      // [second, ms] (late seconds only at the window's opening are the creation's backlog, not a falling behind).
      late_seconds: {
        count: lateSeconds.length,
        of: slowestBySecond.size,
        first: lateSeconds.slice(0, 10),
        last: lateSeconds.slice(-10),
      },
      late_starts: {
        count: lateStarts.length,
        planned_after_fire: lateStarts.filter(plannedLate).length,
        claimed_after_fire: lateStarts.filter(claimedLate).length,
        claimed_in_time: lateStarts.filter((e) => !plannedLate(e) && !claimedLate(e)).length,
      },
      claim_lead_ms: {
        min: claimLead.min,
        // the tightest claims but a few
        p1: claimLeads.length === 0 ? null : claimLeads[Math.floor(claimLeads.length * 0.01)]!,
        p50: claimLead.p50,
        max: claimLead.max,
      },
      agent_cpu_ms_per_execution: msPer(agentCpuTicks),
      spawner_cpu_ms_per_execution: msPer(spawnerCpuTicks),
      job_process_cpu_ms_per_execution: msPer(jobCpuTicks),
      agent_rss_mb: agentRssMb,
      agent_requests_per_execution: perExecution(agentRequests, finishedInWindow),
      stack_ddb_requests_per_execution: perExecution(stackRequests, finishedInWindow),
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
    emit('agent_cpu_ms_per_execution', {
      ...(o.variant ? { variant: o.variant } : {}),
      agents: o.agents,
      concurrency: o.concurrency,
      jobs: o.jobs,
      executions: finishedInWindow,
      agent_cpu_ms_per_execution: msPer(agentCpuTicks),
      spawner_cpu_ms_per_execution: msPer(spawnerCpuTicks),
      job_process_cpu_ms_per_execution: msPer(jobCpuTicks),
      ddb_writes_per_execution: perExecution(agentRequests, finishedInWindow).ddb_writes,
      ddb_reads_per_execution: perExecution(agentRequests, finishedInWindow).ddb_reads,
      target_ms: 3,
    });
  } finally {
    await stopTicker();
    await Promise.all(agents.map((a) => a.stop()));
    await stopStack(stack);
    rmSync(countsDir, { recursive: true, force: true });
  }
}
