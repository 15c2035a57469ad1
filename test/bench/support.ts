/**
 * Helpers shared by the benchmarks: output (one JSON line per figure on stdout, progress on stderr),
 * percentiles, request counting/timing middleware for the AWS clients, seeding the Jobs table in bulk,
 * and reading executions back.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { BatchWriteCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../local/stack.ts';
import type { AwsClients } from '../../shared/aws/clients.ts';
import type { Context } from '../../shared/context.ts';
import { type Execution, fromItem as executionFromItem } from '../../shared/executions/execution.ts';
import type { JobDefinition } from '../../shared/jobs/definition.ts';

export { REPO_ROOT };

const began = Date.now();
export const verbose = process.env.CRONPLANE_VERBOSE === '1';

/** Human progress: stderr only, prefixed with seconds since the run began. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${((Date.now() - began) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
}

/**
 * One figure: one JSON line on stdout. `load1` (1-minute load average) and `cpus` are appended: the
 * emulators share the machine with everything else on it, and timings mean little on a busy host.
 */
export function emit(figure: string, fields: Record<string, unknown>): void {
  const load1 = Math.round((loadavg()[0] ?? 0) * 10) / 10;
  process.stdout.write(`${JSON.stringify({ figure, ...fields, load1, cpus: availableParallelism() })}\n`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

export interface Quantiles {
  n: number;
  min: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  'p99.9': number | null;
  max: number | null;
  mean: number | null;
}

/** Nearest-rank percentiles, rounded to 0.1 ms. */
export function quantiles(values: readonly number[]): Quantiles {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const round = (v: number | undefined) => (v === undefined ? null : Math.round(v * 10) / 10);
  const at = (p: number) => round(sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]);
  if (n === 0) return { n, min: null, p50: null, p95: null, p99: null, 'p99.9': null, max: null, mean: null };
  return {
    n,
    min: round(sorted[0]),
    p50: at(50),
    p95: at(95),
    p99: at(99),
    'p99.9': at(99.9),
    max: round(sorted[n - 1]),
    mean: round(sorted.reduce((s, v) => s + v, 0) / n),
  };
}

/** Runs `fn` over `items` with at most `parallel` in flight. */
export async function pool<T>(
  items: readonly T[],
  parallel: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

/** Starts the local stack, logging only problems unless CRONPLANE_VERBOSE=1. */
export async function startStack(options: LocalStackOptions): Promise<LocalStack> {
  const t0 = Date.now();
  const stack = await startLocalStack({
    port: 0,
    log: (line) => {
      if (verbose || /fail|error|lost/i.test(line)) progress(`stack: ${line.slice(0, 400)}`);
    },
    ...options,
  });
  progress(`local stack up in ${Date.now() - t0} ms (${stack.url})`);
  return stack;
}

/**
 * Stops a stack, but gives up waiting after `timeoutMs` (a stack whose client queued thousands of
 * requests can take minutes to drain); its emulators are killed when this process exits anyway.
 */
export async function stopStack(stack: LocalStack, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  const done = await Promise.race([stack.stop().then(() => true), sleep(timeoutMs).then(() => false)]);
  if (!done) progress(`stack did not stop within ${timeoutMs / 1000} s; moving on`);
  else if (Date.now() - t0 > 10_000) progress(`stack stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** Counts (and times) requests per command name of one AWS client, between `reset()` calls. */
export interface RequestMeter {
  /** Commands sent (a retried command counts once). */
  readonly commands: Map<string, number>;
  /** HTTP attempts (retries included). */
  readonly attempts: Map<string, number>;
  /** Latency samples per command: [startedAtMs, durationMs]. Only while `timing` is on. */
  readonly latencies: Map<string, Array<[number, number]>>;
  timing: boolean;
  reset(): void;
  total(): number;
  totalAttempts(): number;
  byCommand(): Record<string, number>;
}

type AnyStack = {
  add: (mw: unknown, options: Record<string, unknown>) => void;
};

/** Adds a counting/timing middleware to `stack` (the DynamoDB and document clients share one stack). */
export function meter(stacks: readonly unknown[], name = 'bench'): RequestMeter {
  const m: RequestMeter = {
    commands: new Map(),
    attempts: new Map(),
    latencies: new Map(),
    timing: false,
    reset() {
      this.commands.clear();
      this.attempts.clear();
      this.latencies.clear();
    },
    total() {
      return [...this.commands.values()].reduce((s, v) => s + v, 0);
    },
    totalAttempts() {
      return [...this.attempts.values()].reduce((s, v) => s + v, 0);
    },
    byCommand() {
      return Object.fromEntries([...this.commands.entries()].sort(([a], [b]) => a.localeCompare(b)));
    },
  };
  const label = (context: { commandName?: string }) =>
    (context.commandName ?? 'unknown').replace(/Command$/, '');
  const seen = new Set<unknown>();
  for (const s of stacks) {
    if (seen.has(s)) continue; // DynamoDBDocumentClient reuses its DynamoDBClient's middleware stack
    seen.add(s);
    const stack = s as AnyStack;
    stack.add(
      (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: unknown) => {
          const cmd = label(context);
          m.commands.set(cmd, (m.commands.get(cmd) ?? 0) + 1);
          const t = Date.now();
          try {
            return await next(args);
          } finally {
            if (m.timing) {
              const list = m.latencies.get(cmd) ?? [];
              if (list.length === 0) m.latencies.set(cmd, list);
              list.push([t, Date.now() - t]);
            }
          }
        },
      { step: 'initialize', name: `${name}-commands`, override: true },
    );
    stack.add(
      (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: unknown) => {
          const cmd = label(context);
          m.attempts.set(cmd, (m.attempts.get(cmd) ?? 0) + 1);
          return next(args);
        },
      { step: 'finalizeRequest', priority: 'low', name: `${name}-attempts`, override: true },
    );
  }
  return m;
}

export function meterDynamo(clients: AwsClients, name?: string): RequestMeter {
  return meter([clients.dynamodb.middlewareStack, clients.doc.middlewareStack], name);
}

/** A Jobs table item as JobsStore.putDefinition writes it (version 1, fresh counters). */
export function jobItem(ctx: Context, def: JobDefinition, nextRunAt: number | null, now: number) {
  return {
    name: def.name,
    def: JSON.stringify(def),
    version: 1,
    ...(nextRunAt === null ? {} : { nextRunAt, dueShard: ctx.jobs.dueShard(def.name) }),
    successCount: 0,
    errorCount: 0,
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * Writes items with BatchWriteItem (25 per request, `parallel` requests in flight), re-sending
 * unprocessed items. Calls `onProgress(written)` now and then.
 */
export async function batchPut(
  ctx: Context,
  table: string,
  items: ReadonlyArray<Record<string, unknown>>,
  parallel = 8,
  onProgress?: (written: number) => void,
): Promise<void> {
  const batches: Array<Array<Record<string, unknown>>> = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  let written = 0;
  let lastReport = Date.now();
  await pool(batches, parallel, async (batch) => {
    let pending = batch.map((Item) => ({ PutRequest: { Item } }));
    for (let round = 0; pending.length > 0; round++) {
      if (round > 0) await sleep(Math.min(1_000, 50 * 2 ** round));
      const out = await ctx.clients.doc.send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
      pending = (out.UnprocessedItems?.[table] ?? []) as typeof pending;
      if (round > 20) throw new Error(`BatchWriteItem kept ${pending.length} items unprocessed`);
    }
    written += batch.length;
    if (onProgress && Date.now() - lastReport > 5_000) {
      lastReport = Date.now();
      onProgress(written);
    }
  });
}

export type BenchExecution = Execution & { readonly createdAt: number };

/** Every execution in the Executions table (benchmarks use fresh tables, so this is small). */
export async function scanExecutions(ctx: Context): Promise<BenchExecution[]> {
  const out: BenchExecution[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await ctx.clients.doc.send(
      new ScanCommand({
        TableName: ctx.config.tables.executions,
        ExclusiveStartKey: start,
        ProjectionExpression:
          'jobName, executionId, #g, slot, attempt, #t, #s, scheduledAt, jobVersion, claimedAt, startedAt, finishedAt, agentId, reason, createdAt',
        ExpressionAttributeNames: { '#g': 'group', '#t': 'trigger', '#s': 'status' },
      }),
    );
    for (const item of page.Items ?? [])
      out.push({ ...executionFromItem(item), createdAt: Number(item.createdAt) });
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

export function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}

/** A child process running `node bin/cronplane.js agent …`, its output kept in a short tail. */
export interface AgentProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Lines the agent logged that look like problems (failed receives, heartbeat errors, …). */
  readonly problems: string[];
  readonly tail: string[];
  /** Resolves once the agent logged "agent started". */
  readonly started: Promise<void>;
  stop(): Promise<void>;
}

export function spawnAgent(
  name: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  entry = join(REPO_ROOT, 'bin', 'cronplane.js'),
  nodeArgs: readonly string[] = [],
): AgentProcess {
  const child = spawn(process.execPath, [...nodeArgs, entry, 'agent', '--name', name, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const problems: string[] = [];
  const tail: string[] = [];
  let resolveStarted!: () => void;
  let rejectStarted!: (e: Error) => void;
  const started = new Promise<void>((res, rej) => {
    resolveStarted = res;
    rejectStarted = rej;
  });
  started.catch(() => {});
  let exited = false;
  const exit = new Promise<void>((r) =>
    child.once('exit', (code, signal) => {
      exited = true;
      rejectStarted(new Error(`agent ${name} exited (${code ?? signal}): ${tail.slice(-10).join('\n')}`));
      r();
    }),
  );
  const logDir = process.env.CRONPLANE_BENCH_AGENT_LOGS;
  const onLine = (line: string) => {
    if (!line.trim()) return;
    if (logDir) appendFileSync(join(logDir, `${name}.log`), `${line}\n`);
    tail.push(line);
    if (tail.length > 50) tail.shift();
    if (line.includes('"agent started"')) resolveStarted();
    if (/failed|error|lost/i.test(line) && !line.includes('"status":"succeeded"')) {
      problems.push(line);
      if (verbose || problems.length <= 5) progress(`${name}: ${line.slice(0, 300)}`);
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
  }
  const onExit = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.on('exit', onExit);
  return {
    name,
    child,
    pid: child.pid ?? -1,
    problems,
    tail,
    started,
    async stop() {
      process.off('exit', onExit);
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** CPU ticks (utime + stime) of a process, from /proc/<pid>/stat. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields after the closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the full line)
}

/** CPU ticks of a process's waited-for children (cutime + cstime): for an agent, its jobs' processes. */
export function childCpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[13]) + Number(fields[14]);
}

/** The agent's spawner (agent/spawner.ts): the child of `pid` that runs `node -e`, if one runs. */
export function spawnerOf(pid: number): number | undefined {
  let children: string[];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean);
  } catch {
    return undefined;
  }
  for (const child of children) {
    try {
      const argv = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0');
      if (argv[1] === '-e' && argv[0] === process.execPath) return Number(child);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/**
 * An agent's CPU ticks so far: its own, its spawner's (the agent's work, in a second process) and its
 * jobs' (the waited-for children of either).
 */
export function agentCpu(pid: number): { agent: number; spawner: number; jobs: number } {
  const spawner = spawnerOf(pid);
  const safe = (f: () => number) => {
    try {
      return f();
    } catch {
      return 0;
    }
  };
  return {
    agent: cpuTicks(pid),
    spawner: spawner === undefined ? 0 : safe(() => cpuTicks(spawner)),
    jobs: childCpuTicks(pid) + (spawner === undefined ? 0 : safe(() => childCpuTicks(spawner))),
  };
}

/** Resident set size and its peak (MB), from /proc/<pid>/status. */
export function memoryMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kb('VmRSS') / 102.4) / 10, hwm: Math.round(kb('VmHWM') / 102.4) / 10 };
}

type MiddlewareStack = { add: (mw: unknown, options: Record<string, unknown>) => void };

/**
 * Watches the ticks of a local stack through its DynamoDB client: a tick runs from a successful lease
 * acquisition to the lease release. Shows how long ticks take and whether they overlap (the local
 * ticker's timer does not wait for the previous tick, and all its ticks share one lease owner).
 */
export interface TickTrace {
  readonly started: number;
  readonly maxOverlap: number;
  readonly durations: number[];
  /** Ticks still running (acquired, not released). */
  readonly running: number;
  reset(): void;
  summary(): Record<string, unknown>;
}

export function traceTicks(ctx: Context): TickTrace {
  const open = new Map<number, number>(); // fencing token → start
  const state = {
    started: 0,
    maxOverlap: 0,
    durations: [] as number[],
    get running() {
      return open.size;
    },
    reset() {
      state.started = 0;
      state.maxOverlap = open.size;
      state.durations = [];
    },
    summary() {
      const q = quantiles(state.durations);
      const now = Date.now();
      const running = [...open.values()].map((t) => now - t);
      return {
        ticks: state.started,
        max_concurrent: state.maxOverlap,
        /** Durations of the ticks that ended (released the lease). */
        duration_ms: { p50: q.p50, p95: q.p95, max: q.max },
        still_running: running.length,
        oldest_running_ms: running.length > 0 ? Math.max(...running) : null,
      };
    },
  };
  (ctx.clients.dynamodb.middlewareStack as unknown as MiddlewareStack).add(
    (next: (a: unknown) => Promise<any>, context: { commandName?: string }) => async (args: any) => {
      const input = args.input ?? {};
      const pk = input.Key?.pk;
      const isLease =
        context.commandName === 'UpdateItemCommand' && typeof pk === 'string' && pk.startsWith('lease#');
      const out = await next(args);
      if (isLease) {
        const expr = String(input.UpdateExpression ?? '');
        const values = input.ExpressionAttributeValues ?? {};
        if (expr.includes('ADD')) {
          const token = Number(out.output?.Attributes?.token);
          open.set(token, Date.now());
          state.started++;
          state.maxOverlap = Math.max(state.maxOverlap, open.size);
        } else if (values[':zero'] === 0 && values[':token'] !== undefined) {
          const begin = open.get(Number(values[':token']));
          if (begin !== undefined) state.durations.push(Date.now() - begin);
          open.delete(Number(values[':token']));
        }
      }
      return out;
    },
    { step: 'initialize', name: 'bench-tick-trace' },
  );
  return state;
}

/** Sequential GetItem round trips on an idle table: the emulator's floor latency right now. */
export async function probeDynamoLatency(ctx: Context, n = 30): Promise<Quantiles> {
  const { GetCommand } = await import('@aws-sdk/lib-dynamodb');
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await ctx.clients.doc.send(
      new GetCommand({ TableName: ctx.config.tables.control, Key: { pk: 'bench#probe' } }),
    );
    samples.push(performance.now() - t);
  }
  return quantiles(samples);
}

/**
 * Runs ticks one after another (never overlapping), one every `intervalMs` at most: what the stack's
 * ticker would do if it skipped a beat while the previous tick still runs. Returns a stop function.
 */
export function serialTicker(stack: LocalStack, intervalMs = 1_000): () => Promise<void> {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = Date.now();
      try {
        const r = await stack.tickNow();
        if (r.errors.length > 0) progress(`tick errors: ${JSON.stringify(r.errors.slice(0, 3))}`);
      } catch (error) {
        progress(`tick failed: ${(error as Error).message}`);
      }
      await sleep(intervalMs - (Date.now() - t));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

/**
 * The AWS SDK warns (console.warn) when a client's 50 sockets are all busy and requests queue up. The
 * warnings are condensed here: the largest queue seen since the last `reset()` is kept for the figures,
 * and at most one line per 10 s reaches stderr.
 */
export const socketQueue = {
  max: 0,
  reset() {
    this.max = 0;
  },
};
let lastSocketWarning = 0;
const originalWarn = console.warn.bind(console);
console.warn = (...args: unknown[]) => {
  const text = String(args[0] ?? '');
  const m = /socket usage at capacity=(\d+) and (\d+) additional requests are enqueued/.exec(text);
  if (!m) return originalWarn(...args);
  socketQueue.max = Math.max(socketQueue.max, Number(m[2]));
  if (Date.now() - lastSocketWarning > 10_000) {
    lastSocketWarning = Date.now();
    progress(`AWS SDK: all ${m[1]} sockets of a client busy, ${m[2]} requests queued`);
  }
};

/** CPU ticks of this process and of its direct children (the emulators, agent processes), by name. */
export function cpuSnapshot(): { at: number; byName: Record<string, number> } {
  const byName: Record<string, number> = { self: cpuTicks(process.pid) };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== process.pid) continue; // ppid
      const name = /java/.test(comm)
        ? 'dynamodb_local'
        : /moto|python/.test(comm)
          ? 'moto'
          : comm === 'node'
            ? 'node_children'
            : comm;
      byName[name] = (byName[name] ?? 0) + Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process went away
    }
  }
  return { at: performance.now(), byName };
}

/** Average CPU use (in cores: 1.0 = one core busy) per process name between two snapshots. */
export function cpuBetween(
  a: ReturnType<typeof cpuSnapshot>,
  b: ReturnType<typeof cpuSnapshot>,
): Record<string, number> {
  const hz = clockTicksPerSecond();
  const seconds = (b.at - a.at) / 1000;
  const out: Record<string, number> = {};
  for (const [name, ticks] of Object.entries(b.byName)) {
    const cores = Math.round(((ticks - (a.byName[name] ?? 0)) / hz / seconds) * 100) / 100;
    // tsx's esbuild service and the like: only worth a field when they did something
    if (cores > 0 || ['self', 'dynamodb_local', 'moto'].includes(name)) out[name] = cores;
  }
  return out;
}

let hzCache: number | undefined;
export function clockTicksPerSecond(): number {
  if (hzCache !== undefined) return hzCache;
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    hzCache = Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    hzCache = 100;
  }
  return hzCache;
}

/**
 * The emulator's capacity right now: `n` conditional PutItems, then `n` GetItems, on the Control table
 * with `parallel` in flight. Gives the requests/s the rest of a figure can expect at best.
 */
export async function probeDynamoThroughput(
  ctx: Context,
  n = 400,
  parallel = 16,
): Promise<{ put_per_s: number; get_per_s: number; parallel: number }> {
  const { GetCommand, PutCommand } = await import('@aws-sdk/lib-dynamodb');
  const keys = Array.from({ length: n }, (_, i) => `bench#probe#${i}`);
  let t = performance.now();
  await pool(keys, parallel, async (pk) => {
    await ctx.clients.doc.send(
      new PutCommand({
        TableName: ctx.config.tables.control,
        Item: { pk, v: 1 },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  });
  const putPerS = Math.round(n / ((performance.now() - t) / 1000));
  t = performance.now();
  await pool(keys, parallel, async (pk) => {
    await ctx.clients.doc.send(new GetCommand({ TableName: ctx.config.tables.control, Key: { pk } }));
  });
  const getPerS = Math.round(n / ((performance.now() - t) / 1000));
  return { put_per_s: putPerS, get_per_s: getPerS, parallel };
}
