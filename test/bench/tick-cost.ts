/**
 * Figure `tick_cost`: DynamoDB (and SQS) requests and wall time of ONE tick with N jobs defined, of which
 * `due` are due in the tick's window. The rest: a third due in a year, a third `@manually`, a third
 * disabled (the last two carry no nextRunAt, so the sparse `byDue` index never lists them).
 *
 * Each size gets a fresh local stack with no agents and the ticker timer effectively off; the tick runs
 * with its own context (own clients, so only its requests are counted) and a fixed clock two seconds
 * before a whole hour H, so that the due jobs (`@every 1h`, nextRunAt = H) fall in [cursor, now + 7 s).
 * A second tick at now + 1 s finds nothing due: `tick_cost_idle` is the constant part.
 */
import { createContext } from '../../shared/context.ts';
import type { JobDefinition } from '../../shared/jobs/definition.ts';
import { validateJob } from '../../shared/jobs/job.ts';
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
  quantiles,
  type RequestMeter,
  startStack,
  stopStack,
} from './support.ts';

export interface TickCostOptions {
  readonly sizes: readonly number[];
  readonly due: number;
}

const HOUR = 3_600_000;
const YEAR = 365 * 24 * HOUR;

export async function tickCost(o: TickCostOptions): Promise<void> {
  for (const size of o.sizes) await oneSize(size, Math.min(o.due, size));
}

async function oneSize(defined: number, due: number): Promise<void> {
  progress(`tick_cost: ${defined} jobs defined, ${due} due`);
  const stack = await startStack({ agents: [], tickIntervalMs: 24 * HOUR });
  try {
    const H = Math.ceil((Date.now() + 2 * HOUR) / HOUR) * HOUR;
    let clock = H - 2_000;
    const ctx = createContext(stack.env, () => clock);

    const base = (name: string, extra: Record<string, unknown> = {}): JobDefinition =>
      validateJob({ name, schedule: '@every 1h', executor_config: { command: 'true' }, ...extra });
    const kinds = {
      due: base('kind-due'),
      later: base('kind-later'),
      manual: base('kind-manual', { schedule: '@manually' }),
      disabled: base('kind-disabled', { disabled: true }),
    };
    const items: Array<Record<string, unknown>> = [];
    const now = Date.now();
    for (let i = 0; i < defined; i++) {
      const name = `job-${String(i).padStart(6, '0')}`;
      if (i < due) {
        items.push(jobItem(ctx, { ...kinds.due, name }, H, now));
        continue;
      }
      const k = i % 3;
      if (k === 0) items.push(jobItem(ctx, { ...kinds.later, name }, H + YEAR, now));
      else if (k === 1) items.push(jobItem(ctx, { ...kinds.manual, name }, null, now));
      else items.push(jobItem(ctx, { ...kinds.disabled, name }, null, now));
    }
    // Interleave due and other jobs, so that the table's key order does not favour either.
    items.sort((a, b) => hash(String(a.name)) - hash(String(b.name)));
    const t0 = Date.now();
    await batchPut(ctx, ctx.config.tables.jobs, items, 8, (n) =>
      progress(`  seeded ${n}/${defined} (${Math.round((n / (Date.now() - t0)) * 1000)} items/s)`),
    );
    const seedMs = Date.now() - t0;
    progress(`  seeded ${defined} jobs in ${(seedMs / 1000).toFixed(1)} s`);

    const ddb = meterDynamo(ctx.clients, 'bench-tick');
    const sqs = meter([ctx.clients.sqs.middlewareStack], 'bench-tick-sqs');
    const measure = async (figure: string) => {
      ddb.reset();
      sqs.reset();
      ddb.timing = true;
      sqs.timing = true;
      const cpu0 = cpuSnapshot();
      const began = performance.now();
      const report: TickReport = await tick(ctx, 'bench-tick');
      const wallMs = Math.round(performance.now() - began);
      const cpu = cpuBetween(cpu0, cpuSnapshot());
      emit(figure, {
        defined,
        due,
        commands: ddb.total(),
        attempts: ddb.totalAttempts(),
        by_command: ddb.byCommand(),
        sqs_by_command: sqs.byCommand(),
        wall_ms: wallMs,
        latency_ms: latencySummary([ddb, sqs]),
        cpu_cores_used: cpu,
        leader: report.leader,
        jobs_read: report.jobs,
        planned: report.planned,
        resent: report.resent,
        errors: report.errors.length,
        seed_ms: seedMs,
      });
      if (report.errors.length > 0) progress(`  tick errors: ${JSON.stringify(report.errors.slice(0, 3))}`);
    };
    await measure('tick_cost');
    clock += 1_000;
    await measure('tick_cost_idle');
  } finally {
    await stopStack(stack);
  }
}

/** p50/p95 per command (requests of the tick only), for telling emulator latency from tick logic. */
function latencySummary(
  meters: readonly RequestMeter[],
): Record<string, { p50: number | null; p95: number | null }> {
  const out: Record<string, { p50: number | null; p95: number | null }> = {};
  for (const m of meters) {
    for (const [cmd, samples] of m.latencies) {
      const q = quantiles(samples.map(([, d]) => d));
      out[cmd] = { p50: q.p50, p95: q.p95 };
    }
  }
  return out;
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
