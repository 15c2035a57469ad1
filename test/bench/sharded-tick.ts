/**
 * Figure `tick_cost` by due count and shard count: `due` jobs (`@every 1h`, all due at the same whole hour
 * H) spread over `shards` due shards (CRONPLANE_DUE_SHARDS), planned by ONE coordinator round at H − 2 s
 * with a fixed clock: shard 0 by the coordinator, the others by in-process shard ticks started together
 * (on AWS each is its own Lambda invocation, fed by the shard-tick queue). No agents.
 *
 * Reported: DynamoDB and SQS requests of the round (by command, counted by middleware), the round's wall
 * time, and per shard its jobs, launches planned, wall time and launches planned per second. Locally all
 * shards share one DynamoDB Local and moto on this host, so the per-shard rate falls as shards are added
 * while the round's wall time shows how much parallel planning the emulators absorb; on AWS each shard's
 * tick has its own Lambda and DynamoDB's partitions (the byDue index is keyed by shard) — read the
 * single-shard rate as what one shard tick does alone. Shard ticks in one process share its limit on
 * chunks planned at once (shared/scheduler/tick.ts, `planSlots`), as they would in one Lambda invocation.
 *
 * Also reported, to tell a slow round from a collapsing one: `resent` (launches whose execution was already
 * there — on fresh tables, written by an attempt the SDK gave up on and retried), `executions_written` and
 * `still_due` after the round (every due job should have one execution and be past the window),
 * `dynamodb_attempts` and `failed_attempts` (SDK retries, by command and error), latencies by command, and
 * the most frequent plan error messages.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { type Context, createContext } from '../../shared/context.ts';
import type { JobDefinition } from '../../shared/jobs/definition.ts';
import { validateJob } from '../../shared/jobs/job.ts';
import { settleLayout } from '../../shared/scheduler/coordinator.ts';
import { type TickReport, tick } from '../../shared/scheduler/tick.ts';
import {
  batchPut,
  cpuBetween,
  cpuSnapshot,
  emit,
  jobItem,
  meter,
  meterDynamo,
  progress,
  startStack,
  stopStack,
} from './support.ts';

export interface ShardedTickOptions {
  readonly due: number;
  readonly shards: number;
}

const HOUR = 3_600_000;

export async function shardedTickCost(o: ShardedTickOptions): Promise<void> {
  progress(`tick_cost: ${o.due} due over ${o.shards} shard(s)`);
  const stack = await startStack({
    agents: [],
    tickIntervalMs: 24 * HOUR,
    settings: { CRONPLANE_DUE_SHARDS: String(o.shards) },
  });
  try {
    const H = Math.ceil((Date.now() + 2 * HOUR) / HOUR) * HOUR;
    const clock = H - 2_000;
    const ctx = createContext({ ...stack.env, CRONPLANE_DUE_SHARDS: String(o.shards) }, () => clock);
    const def: JobDefinition = validateJob({
      name: 'kind-due',
      schedule: '@every 1h',
      executor_config: { command: 'true' },
    });
    const now = Date.now();
    const items = Array.from({ length: o.due }, (_, i) =>
      jobItem(ctx, { ...def, name: `job-${String(i).padStart(6, '0')}` }, H, now),
    );
    const t0 = Date.now();
    await batchPut(ctx, ctx.config.tables.jobs, items, 8, (n) =>
      progress(`  seeded ${n}/${o.due} (${Math.round((n / (Date.now() - t0)) * 1000)} items/s)`),
    );
    const seedMs = Date.now() - t0;
    // The layout as the coordinator would record it before fanning out.
    await settleLayout(ctx, clock);

    const ddb = meterDynamo(ctx.clients, 'bench-sharded-tick');
    const sqs = meter([ctx.clients.sqs.middlewareStack], 'bench-sharded-tick-sqs');
    const attemptErrors = countAttemptErrors(ctx);
    ddb.reset();
    sqs.reset();
    ddb.timing = true;
    const cpu0 = cpuSnapshot();
    const began = performance.now();
    // What the plan errors say: distinct messages (job-specific parts kept) with how often each came.
    const errorMessages = new Map<string, number>();
    const perShard = await Promise.all(
      Array.from({ length: o.shards }, async (_, shard) => {
        const start = performance.now();
        const report: TickReport = await tick(ctx, `bench-shard-${shard}`, shard);
        const wallMs = performance.now() - start;
        for (const e of report.errors) {
          const key = e.error.slice(0, 300);
          errorMessages.set(key, (errorMessages.get(key) ?? 0) + 1);
        }
        return {
          shard,
          jobs: report.jobs,
          planned: report.planned,
          resent: report.resent,
          errors: report.errors.length,
          wall_ms: Math.round(wallMs),
          launches_per_s: Math.round((report.planned / Math.max(wallMs, 1)) * 1000),
        };
      }),
    );
    const wallMs = Math.round(performance.now() - began);
    ddb.timing = false;
    // What the round left behind, counted outside the metered requests: every due job should have one
    // execution and a `nextRunAt` past the window.
    const executionsWritten = await countItems(ctx, ctx.config.tables.executions);
    let stillDue = 0;
    for (let shard = 0; shard < o.shards; shard++) {
      for await (const _ of ctx.jobs.due(shard, H + 1)) stillDue++;
    }
    const planned = perShard.reduce((n, s) => n + s.planned, 0);
    const requests = ddb.total() + sqs.total();
    emit('tick_cost', {
      due: o.due,
      shards: o.shards,
      planned,
      // Launches whose execution was already there (e.g. written by an attempt the client gave up on).
      resent: perShard.reduce((n, s) => n + s.resent, 0),
      executions_written: executionsWritten,
      still_due: stillDue,
      errors: perShard.reduce((n, s) => n + s.errors, 0),
      error_messages:
        errorMessages.size > 0
          ? Object.fromEntries([...errorMessages].sort((a, b) => b[1] - a[1]).slice(0, 5))
          : undefined,
      dynamodb_requests: ddb.total(),
      sqs_requests: sqs.total(),
      requests_per_launch: planned > 0 ? Number((requests / planned).toFixed(3)) : null,
      by_command: ddb.byCommand(),
      // HTTP attempts, SDK retries included: more attempts than commands means requests timed out or
      // were throttled and were sent again.
      dynamodb_attempts: ddb.totalAttempts(),
      failed_attempts: Object.keys(attemptErrors).length > 0 ? attemptErrors : undefined,
      latency_ms_by_command: latencySummary(ddb.latencies),
      sqs_by_command: sqs.byCommand(),
      wall_ms: wallMs,
      launches_per_s: Math.round((planned / Math.max(wallMs, 1)) * 1000),
      launches_per_s_per_shard: Math.round(
        perShard.reduce((n, s) => n + s.launches_per_s, 0) / Math.max(perShard.length, 1),
      ),
      per_shard: o.shards <= 4 ? perShard : undefined,
      slowest_shard_ms: Math.max(...perShard.map((s) => s.wall_ms)),
      cpu_cores_used: cpuBetween(cpu0, cpuSnapshot()),
      seed_ms: seedMs,
      // Jobs a shard tick left due (its read of them failed): what the next round, at the same instant,
      // plans of them (outside the round's figures above).
      next_round: stillDue > 0 ? await nextRound(ctx, o.shards, H + 1) : undefined,
    });
  } finally {
    await stopStack(stack);
  }
}

/** Ticks every shard once more (same clock); answers what it planned and what is still due after it. */
async function nextRound(
  ctx: Context,
  shards: number,
  before: number,
): Promise<{ planned: number; errors: number; still_due: number; wall_ms: number }> {
  const began = performance.now();
  const reports = await Promise.all(
    Array.from({ length: shards }, (_, shard) => tick(ctx, `bench-next-${shard}`, shard)),
  );
  const wallMs = Math.round(performance.now() - began);
  let stillDue = 0;
  for (let shard = 0; shard < shards; shard++) {
    for await (const _ of ctx.jobs.due(shard, before)) stillDue++;
  }
  return {
    planned: reports.reduce((n, r) => n + r.planned, 0),
    errors: reports.reduce((n, r) => n + r.errors.length, 0),
    still_due: stillDue,
    wall_ms: wallMs,
  };
}

/**
 * Failed HTTP attempts of DynamoDB requests by command and error name (inside the SDK's retry loop, so a
 * retried timeout shows here even when the command then succeeded).
 */
function countAttemptErrors(ctx: Context): Record<string, number> {
  const counts: Record<string, number> = {};
  (ctx.clients.dynamodb.middlewareStack as unknown as { add: (mw: unknown, o: object) => void }).add(
    (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      try {
        return await next(args);
      } catch (error) {
        const key = `${(context.commandName ?? '?').replace(/Command$/, '')}: ${(error as Error)?.name ?? 'error'}`;
        counts[key] = (counts[key] ?? 0) + 1;
        throw error;
      }
    },
    { step: 'finalizeRequest', priority: 'low', name: 'bench-attempt-errors', override: true },
  );
  return counts;
}

/** Items in a table (a COUNT scan, paged). */
async function countItems(ctx: Context, table: string): Promise<number> {
  let n = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ctx.clients.doc.send(
      new ScanCommand({ TableName: table, Select: 'COUNT', ExclusiveStartKey: start }),
    );
    n += out.Count ?? 0;
    start = out.LastEvaluatedKey;
  } while (start);
  return n;
}

/** p50 / p99 / max of each command's latency (whole command, retries included). */
function latencySummary(
  latencies: ReadonlyMap<string, ReadonlyArray<[number, number]>>,
): Record<string, { p50: number; p99: number; max: number }> {
  const out: Record<string, { p50: number; p99: number; max: number }> = {};
  for (const [cmd, samples] of latencies) {
    const d = samples.map(([, ms]) => ms).sort((a, b) => a - b);
    const at = (q: number) => d[Math.min(d.length - 1, Math.floor(q * d.length))] ?? 0;
    out[cmd] = { p50: at(0.5), p99: at(0.99), max: d.at(-1) ?? 0 };
  }
  return out;
}
