/**
 * Cronplane benchmarks against the local stack (DynamoDB Local + moto, everything else in-process).
 *
 *   npm run bench                                  all figures, full size
 *   npx tsx test/bench/run.ts --quick              smaller sizes / shorter runs
 *   npx tsx test/bench/run.ts --only tick_cost     one figure or figure/variant (comma-separated)
 *   npx tsx test/bench/run.ts --wait-quiet 600     before each figure, wait (up to 600 s) until the
 *                                                  1-minute load average is at most the CPU count
 *   CRONPLANE_VERBOSE=1 …                          every stack / agent log line on stderr
 *
 * Output: one JSON line per figure (or figure variant) on stdout; progress on stderr. Timing never
 * fails the run: the exit code is 0 unless a benchmark crashed (its error is printed, the others run).
 * Each figure variant runs in a child process of its own with its own local stack (fresh in-memory
 * emulators), so variants do not disturb each other. Every line ends with `load1` (the host's 1-minute load average when it was printed) and `cpus`:
 * the emulators compete with whatever else runs on the host, so read timings next to those two.
 *
 * Figures
 *
 * `launch_lateness_ms` — {jobs, agents, concurrency, executor, ticker, p50, p95, p99, p99.9, max, min, run,
 *   lost, deadline_s, duplicated, statuses}. 1,000 jobs (quick: 300) `@at` the same whole second ~25 s
 *   ahead, written straight to the Jobs table (JobsStore.putDefinition) and planned by the real tick;
 *   4 in-process agents with concurrency 250 run `true` with the shell executor. Lateness =
 *   Executions.startedAt − scheduledAt per launch. run = jobs with a started execution; lost = jobs
 *   without one when the wait ended (300 s after the fire time, or 90 s without a new start);
 *   duplicated = extra started executions of one job. Issue target: p99 ≤ 100 ms.
 *   Variants: `ticker: "stack"` is the local stack's own 1 s setInterval ticker, as shipped;
 *   `ticker: "serial"` runs the same tick function back to back, never overlapping (quick: both, with
 *   300 jobs). Full run only: the agents' default concurrency (4 each: 16 slots, capacity-bound by
 *   design) and 100-job bursts with either ticker.
 *   Followed by `launch_lateness_breakdown_ms` (see launch-lateness.ts): where the time goes — the
 *   emulator's capacity and CPU use, tick durations and overlap, SQS delay rounding, receive delays
 *   and moto's ReceiveMessage cost, the reads before the claim, DynamoDB latency during the burst.
 *
 * `tick_cost` — {defined, due, commands, attempts, by_command, sqs_by_command, wall_ms, latency_ms,
 *   cpu_cores_used, jobs_read, planned, errors, seed_ms}. DynamoDB commands (by API name, counted by
 *   middleware on the client's middleware stack, which the document client shares; `attempts` includes
 *   SDK retries), SQS commands, and wall time of ONE tick with 1,000 / 10,000 / 100,000 jobs defined
 *   (quick: 1,000 / 10,000), of which 1,000 are due in the window; the rest are 1/3 due in a year,
 *   1/3 `@manually`, 1/3 disabled (no nextRunAt). Seeded with BatchWriteItem (8 in flight) in the Jobs
 *   table's item shape; seeding time on stderr and in `seed_ms`. No agents; a fixed clock. Requests must
 *   grow with due jobs, not with defined jobs. Followed by `tick_cost_idle`: a second tick 1 s later with
 *   nothing due (the constant part, plus the sweep over the 1,000 still-scheduled executions).
 *
 * `tick_cost` (variants `due-<n>/shards-<k>`) — {due, shards, planned, dynamodb_requests, sqs_requests,
 *   requests_per_launch, wall_ms, launches_per_s, launches_per_s_per_shard, slowest_shard_ms, per_shard,
 *   cpu_cores_used, next_round: what a second round planned of jobs the first left due}. n = 1,000 / 10,000 /
 *   100,000 (quick: not 100,000) jobs all due in one window, spread
 *   over k = 1 / 4 / 16 due shards and planned by one round of shard ticks started together (see
 *   sharded-tick.ts: locally they share the emulators, on AWS each is its own invocation). Any other
 *   `tick_cost/due-<n>/shards-<k>` given to --only runs too (e.g. a smaller reproduction).
 *
 * `sustained_executions_per_minute` — {agents, agent_mode, ticker, concurrency, jobs, window_s,
 *   expected, executions, per_minute, succeeded, lost, duplicated, missing, statuses, by_agent,
 *   lateness_ms, launch_messages, resent_messages, ticks_in_window, …}. 4 agent processes
 *   (`node bin/cronplane.js agent --name bench-N --concurrency 8`, env = process.env + stack.env) run
 *   30 `@every 1s` shell jobs (`true`, created with upsertJob) for 60 s (quick: 20 s) after a 5 s
 *   warm-up. expected = fire times in the window; executions / per_minute = executions that finished in
 *   the window; lost = fire times in the window without an execution that ran to an end (or one that
 *   ended `lost`); missing = fire times with no execution at all; duplicated = more than one execution
 *   for one job + scheduledAt. lost and duplicated must be 0. Variants: the stack's ticker with 30 jobs
 *   and with 10 jobs (600/min, a rate the emulators keep up with on a 2-core host), and (full run only)
 *   the serial ticker with 30 jobs.
 *   Variants `one-agent-6000` / `one-agent-1200` (issue 16's side-by-side with Dkron): ONE agent process with
 *   concurrency 256, 100 or 20 jobs created through the API (window 120 s; quick: 30 s), with lateness p99.9,
 *   `behind_s` (how far the last run of the window started after the window's last fire time; null when some
 *   never started), `agent_cpu_ms_per_execution` (utime+stime of the agent process over the window per
 *   execution finished in it; its jobs' own CPU is `job_process_cpu_ms_per_execution`), `agent_rss_mb`, and
 *   the AWS requests per execution of the agent (counted inside it by count-requests.mjs) and of the stack
 *   (API, ticks, stream poller), DynamoDB split into writes and reads. Also printed as the line
 *   `agent_cpu_ms_per_execution` (target ≤ 3 ms). CRONPLANE_BENCH_AGENT_CPU_PROF=<dir>: a --cpu-prof of the agent
 *   (the profiler itself costs the agent CPU: lateness measured with it is worse).
 *   Variant `cron-1000-on-one-second` (issue 16's third row): 1,000 jobs `0 * * * * *` created through the API
 *   (8 at a time: a cron job plans nothing until its minute), 4 agent processes × 250, 180 s (quick: 60 s): three bursts of 1,000 launches on one second.
 *
 * `launch_lateness_ms` with `case: new-tag-set-first-fire | new-tag-set-run-now` — {jobs, agents, lead_ms, p50,
 *   p95, p99, p99.9, max, min, missing, hint_messages_per_queue}: jobs that are each the first of their tag set
 *   (63 tag sets the agents' six tags serve), written 3 s before their fire time or run at once, with 4 agents
 *   (quick: 2) and, as `new-tag-set-one-agent`, with one; see new-tag-set.ts.
 *
 * `agent_idle` — {variant, seconds, rss_mb, rss_max_mb, rss_peak_mb, cpu_percent, cpu_seconds,
 *   startup_ms}. One agent process, no jobs, idle for 30 s (quick: 10 s) after a 5 s settle: RSS from
 *   /proc/<pid>/status, CPU % from /proc/<pid>/stat utime+stime deltas over the window. Targets:
 *   ≤ 60 MB, near-zero CPU. Variants: `bin/cronplane.js` (as shipped: tsx's loader transpiles at
 *   start-up), `esbuild-bundle` (agent/cli.ts bundled to one ESM file in a temp dir, run by plain node)
 *   and `node-baseline` (an idle `node -e`, the floor).
 *
 * `cost` — what an execution and an idle month cost on AWS (see cost.ts; prices of one region and date in
 *   prices.ts). Every AWS SDK request in the process is counted by a middleware (cost-meter.ts) per actor
 *   (tick, events, worker and their event source mappings, agent) and command; DynamoDB request units from
 *   ConsumedCapacity, SQS requests in 64 KB chunks, Lambda invocations of the real handlers with their duration
 *   rounded up to 1 ms × 512 MB, functions' stdout as CloudWatch Logs. Variants `shell` (30 jobs `@every 2s`, one
 *   in-process agent; quick: 20 jobs, one tick) and `agentless` (http jobs on the worker handler):
 *   {executions, dollars_per_million_executions, dollars_per_million_by_line,
 *   requests_per_execution_by_service, requests_per_execution (actor → service.Command),
 *   request_units_per_execution(_by_command), lambda_per_execution, …}; variant `idle` (60 ticks with no jobs,
 *   one idle agent for 60 s; quick: 20 ticks, 30 s): {dollars_per_idle_month_control_plane (43,200 ticks a
 *   month, custom metrics, alarms, the worker mapping's idle polls), agent_side_dollars_per_idle_month, …}.
 *   Issue targets: ≤ $5 per million executions, ≤ $1 per idle month for the control plane.
 */

import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { agentIdle } from './agent-idle.ts';
import { costExecutions, costIdle } from './cost.ts';
import { launchLateness } from './launch-lateness.ts';
import { newTagSetLateness } from './new-tag-set.ts';
import { shardedTickCost } from './sharded-tick.ts';
import { spawnBurst } from './spawn-burst.ts';
import { progress, sleep } from './support.ts';
import { sustained } from './sustained.ts';
import { tickCost } from './tick-cost.ts';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const argAfter = (flag: string) => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
};
const only = argAfter('--only')
  ?.split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const waitQuietMs = argv.includes('--wait-quiet') ? Number(argAfter('--wait-quiet') ?? 600) * 1000 : 0;

interface Task {
  /** `figure/variant`; `--only` matches the figure or the whole id. */
  readonly id: string;
  readonly run: () => Promise<void>;
}

const lateness =
  (
    jobs: number,
    ticker: 'stack' | 'serial',
    concurrency: number | 'default' = 250,
    executor: 'shell' | 'noop' = 'shell',
  ) =>
  () =>
    launchLateness({
      jobs,
      agents: 4,
      leadMs: 25_000,
      concurrency: concurrency === 'default' ? undefined : concurrency,
      executor,
      ticker,
    });
const sustainedRun =
  (ticker: 'stack' | 'serial', jobs = 30) =>
  () =>
    sustained({ agents: 4, concurrency: 8, jobs, windowMs: quick ? 20_000 : 60_000, ticker });
/**
 * Issue 16's side-by-side with Dkron: 100 jobs `@every 1s` (6,000/min), one agent process × 256; and 20 jobs
 * (1,200/min), a rate a busy 2-core host keeps up with, for the per-execution figures without a backlog.
 */
const sustainedOneAgent = (jobs: number) => () =>
  sustained({
    variant: `one-agent-${jobs * 60}-per-min`,
    agents: 1,
    concurrency: 256,
    jobs,
    windowMs: quick ? 30_000 : 120_000,
    ticker: 'stack',
    cpuProfileDir: process.env.CRONPLANE_BENCH_AGENT_CPU_PROF,
  });

/**
 * Issue 16's third side-by-side row: 1,000 cron jobs on the same second of every minute (`0 * * * * *`),
 * created through the API, 4 agent processes × 250, three minutes (quick: one).
 */
const cronBurst = () =>
  sustained({
    variant: 'cron-1000-on-one-second',
    agents: 4,
    concurrency: 250,
    jobs: 1000,
    windowMs: quick ? 60_000 : 180_000,
    warmupMs: 10_000,
    schedule: '0 * * * * *',
    periodMs: 60_000,
    createConcurrency: 8,
    ticker: 'stack',
  });

/** `tick_cost/due-<n>/shards-<k>`: one coordinator round over n due jobs spread over k shards. */
const shardedTicks = (dues: readonly number[], shards: readonly number[]): Task[] =>
  dues.flatMap((due) =>
    shards.map((k) => ({
      id: `tick_cost/due-${due}/shards-${k}`,
      run: () => shardedTickCost({ due, shards: k }),
    })),
  );

const tasks: Task[] = quick
  ? [
      { id: 'launch_lateness_ms/stack-ticker-300', run: lateness(300, 'stack') },
      { id: 'launch_lateness_ms/serial-ticker-300', run: lateness(300, 'serial') },
      { id: 'launch_lateness_ms/noop-executor-300', run: lateness(300, 'stack', 250, 'noop') },
      { id: 'launch_lateness_ms/new-tag-set', run: () => newTagSetLateness({ agents: 2, leadMs: 3_000 }) },
      { id: 'tick_cost/1000', run: () => tickCost({ sizes: [1_000], due: 1_000 }) },
      { id: 'tick_cost/10000', run: () => tickCost({ sizes: [10_000], due: 1_000 }) },
      ...shardedTicks([1_000, 10_000], [1, 4, 16]),
      { id: 'sustained_executions_per_minute/stack-ticker-30', run: sustainedRun('stack') },
      { id: 'sustained_executions_per_minute/stack-ticker-10', run: sustainedRun('stack', 10) },
      { id: 'sustained_executions_per_minute/one-agent-6000', run: sustainedOneAgent(100) },
      { id: 'sustained_executions_per_minute/one-agent-1200', run: sustainedOneAgent(20) },
      { id: 'sustained_executions_per_minute/cron-1000-on-one-second', run: cronBurst },
      { id: 'agent_idle', run: () => agentIdle({ seconds: 10 }) },
      { id: 'spawn_burst', run: () => spawnBurst({ jobs: 100, ballastMb: [100], rounds: 2 }) },
      {
        id: 'cost/shell',
        run: () => costExecutions({ variant: 'shell', jobs: 20, everySeconds: 2, ticks: 1 }),
      },
      {
        id: 'cost/agentless',
        run: () => costExecutions({ variant: 'agentless', jobs: 20, everySeconds: 2, ticks: 1 }),
      },
      { id: 'cost/idle', run: () => costIdle({ ticks: 20, agentSeconds: 30 }) },
    ]
  : [
      { id: 'launch_lateness_ms/stack-ticker-1000', run: lateness(1000, 'stack') },
      { id: 'launch_lateness_ms/serial-ticker-1000', run: lateness(1000, 'serial') },
      { id: 'launch_lateness_ms/noop-executor-1000', run: lateness(1000, 'stack', 250, 'noop') },
      { id: 'launch_lateness_ms/default-concurrency-1000', run: lateness(1000, 'stack', 'default') },
      { id: 'launch_lateness_ms/stack-ticker-100', run: lateness(100, 'stack') },
      { id: 'launch_lateness_ms/serial-ticker-100', run: lateness(100, 'serial') },
      { id: 'launch_lateness_ms/new-tag-set', run: () => newTagSetLateness({ agents: 4, leadMs: 3_000 }) },
      {
        id: 'launch_lateness_ms/new-tag-set-one-agent',
        run: () => newTagSetLateness({ agents: 1, leadMs: 3_000 }),
      },
      { id: 'tick_cost/1000', run: () => tickCost({ sizes: [1_000], due: 1_000 }) },
      { id: 'tick_cost/10000', run: () => tickCost({ sizes: [10_000], due: 1_000 }) },
      { id: 'tick_cost/100000', run: () => tickCost({ sizes: [100_000], due: 1_000 }) },
      ...shardedTicks([1_000, 10_000, 100_000], [1, 4, 16]),
      { id: 'sustained_executions_per_minute/stack-ticker-30', run: sustainedRun('stack') },
      { id: 'sustained_executions_per_minute/serial-ticker-30', run: sustainedRun('serial') },
      { id: 'sustained_executions_per_minute/stack-ticker-10', run: sustainedRun('stack', 10) },
      { id: 'sustained_executions_per_minute/one-agent-6000', run: sustainedOneAgent(100) },
      { id: 'sustained_executions_per_minute/one-agent-1200', run: sustainedOneAgent(20) },
      { id: 'sustained_executions_per_minute/cron-1000-on-one-second', run: cronBurst },
      { id: 'agent_idle', run: () => agentIdle({ seconds: 30 }) },
      { id: 'spawn_burst', run: () => spawnBurst({ jobs: 250, ballastMb: [0, 150, 600], rounds: 4 }) },
      {
        id: 'spawn_burst/1000',
        run: () => spawnBurst({ jobs: 1_000, ballastMb: [0], rounds: 3, modes: ['spawner'] }),
      },
      {
        id: 'cost/shell',
        run: () => costExecutions({ variant: 'shell', jobs: 30, everySeconds: 2, ticks: 2 }),
      },
      {
        id: 'cost/agentless',
        run: () => costExecutions({ variant: 'agentless', jobs: 30, everySeconds: 2, ticks: 2 }),
      },
      { id: 'cost/idle', run: () => costIdle({ ticks: 60, agentSeconds: 60 }) },
    ];

/** Timings on a busy host measure the host: optionally wait for the load to come down first. */
async function waitQuiet(): Promise<void> {
  if (waitQuietMs <= 0) return;
  const limit = availableParallelism();
  const deadline = Date.now() + waitQuietMs;
  let said = false;
  while ((loadavg()[0] ?? 0) > limit && Date.now() < deadline) {
    if (!said) progress(`waiting for the load average (${loadavg()[0]?.toFixed(1)}) to drop to ${limit}`);
    said = true;
    await sleep(5_000);
  }
  if (said) progress(`load average now ${loadavg()[0]?.toFixed(1)}; going on`);
}

/**
 * Any `tick_cost/due-<n>/shards-<k>` (k ≤ 64) runs even when it is not in the list above (e.g. a smaller
 * reproduction: `--only tick_cost/due-2000/shards-16`).
 */
const adHoc = (id: string): Task | undefined => {
  const m = /^tick_cost\/due-(\d+)\/shards-(\d+)$/.exec(id);
  if (!m || tasks.some((t) => t.id === id)) return undefined;
  const due = Number(m[1]);
  const shards = Number(m[2]);
  if (due < 1 || shards < 1 || shards > 64) return undefined;
  return { id, run: () => shardedTickCost({ due, shards }) };
};
for (const id of [...(only ?? []), argAfter('--task') ?? '']) {
  const task = adHoc(id);
  if (task) tasks.push(task);
}

// A child runs one task. Each task gets a process of its own, so that a stack that melted down (its
// clients still holding thousands of queued requests) cannot slow down the tasks after it.
const taskId = argAfter('--task');
if (taskId !== undefined) {
  const task = tasks.find((t) => t.id === taskId);
  if (!task) {
    console.error(`unknown task ${taskId}`);
    process.exit(2);
  }
  try {
    await task.run();
    process.exit(0);
  } catch (error) {
    progress(`${taskId} CRASHED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  }
}

const figureOf = (id: string) => id.split('/')[0] as string;
const selected = tasks.filter((t) => !only || only.includes(t.id) || only.includes(figureOf(t.id)));
if (only && selected.length === 0) {
  const figures = [...new Set(tasks.map((t) => figureOf(t.id)))];
  console.error(`nothing matches --only ${only.join(',')}; figures: ${figures.join(', ')}`);
  process.exit(2);
}

let crashed = 0;
for (const task of selected) {
  await waitQuiet();
  const t0 = Date.now();
  progress(`── ${task.id}`);
  const code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--task', task.id, ...(quick ? ['--quick'] : [])],
      { stdio: 'inherit' },
    );
    child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  if (code !== 0) crashed++;
  progress(
    `${task.id} ${code === 0 ? 'done' : `FAILED (exit ${code})`} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
}
process.exit(crashed > 0 ? 1 : 0);
