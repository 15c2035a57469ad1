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
 * single-shard rate as what one shard tick does alone.
 */
import { createContext } from '../../shared/context.ts';
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
    ddb.reset();
    sqs.reset();
    const cpu0 = cpuSnapshot();
    const began = performance.now();
    const perShard = await Promise.all(
      Array.from({ length: o.shards }, async (_, shard) => {
        const start = performance.now();
        const report: TickReport = await tick(ctx, `bench-shard-${shard}`, shard);
        const wallMs = performance.now() - start;
        return {
          shard,
          jobs: report.jobs,
          planned: report.planned,
          errors: report.errors.length,
          wall_ms: Math.round(wallMs),
          launches_per_s: Math.round((report.planned / Math.max(wallMs, 1)) * 1000),
        };
      }),
    );
    const wallMs = Math.round(performance.now() - began);
    const planned = perShard.reduce((n, s) => n + s.planned, 0);
    const requests = ddb.total() + sqs.total();
    emit('tick_cost', {
      due: o.due,
      shards: o.shards,
      planned,
      errors: perShard.reduce((n, s) => n + s.errors, 0),
      dynamodb_requests: ddb.total(),
      sqs_requests: sqs.total(),
      requests_per_launch: planned > 0 ? Number((requests / planned).toFixed(3)) : null,
      by_command: ddb.byCommand(),
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
    });
  } finally {
    await stopStack(stack);
  }
}
