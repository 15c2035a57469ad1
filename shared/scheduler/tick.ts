/**
 * The tick: under the scheduler lease, plan every due job over [cursor, now + period + margin) and move
 * the cursor. Duplicate or overlapping ticks are harmless: only the lease holder works, every launch is a
 * conditional put keyed by fire time, and `nextRunAt` only moves by compare-and-set.
 */
import { storeUnavailable } from '../aws/unavailable.ts';
import type { Context } from '../context.ts';
import { leaseName } from '../control/control-keys.ts';
import { stagingLeadSeconds } from '../dispatch/dispatch.ts';
import { recordTick } from '../metrics/metrics.ts';
import type { JobRecord } from '../ports.ts';
import { MAX_HOLD_MS } from '../timing.ts';
import { dueBefore, fireTimes, liveAgents, planJobs } from './plan.ts';

export interface TickReport {
  readonly leader: boolean;
  readonly paused: boolean;
  readonly windowStart: number | null;
  readonly windowEnd: number | null;
  readonly jobs: number;
  readonly planned: number;
  readonly resent: number;
  readonly missed: number;
  readonly failedSlots: number;
  /** Due jobs that could not be planned, each alone (see planIsolated); they are in `errors` too. */
  readonly isolated: number;
  /** Running executions whose agent stopped heartbeating, marked lost by this tick (shard 0 only). */
  readonly lost: number;
  /** Jobs moved from this shard to the one they belong to under the current shard count. */
  readonly moved: number;
  readonly errors: ReadonlyArray<{ job: string; error: string }>;
}

/** Due jobs planned together (their puts, sends and advances in bulk requests). */
const CHUNK_JOBS = 100;
/**
 * Chunks planned at once in one process, over all the shards ticked in it (`planSlots`). Each chunk has a
 * 100-item transaction in flight most of the time, and a store answers a queue of them one after another.
 */
const PARALLEL_CHUNKS = 3;
/** A chunk that failed for a transient reason (timeouts, throttling) is tried again whole this often. */
const TRANSIENT_RETRIES = 1;
/** The pause before such a retry (plus up to as much again of jitter), so the store can drain its queue. */
const TRANSIENT_PAUSE_MS = 1_000;
/** Jobs a leftover shard's tick moves to their shards (one query page, one conditional update each). */
const MOVE_PER_TICK = 200;

/**
 * A counting semaphore, first come first served. One per process (`planSlots`): the limit on chunks in
 * flight is shared by every shard tick running in the process, not granted to each. On AWS a shard tick is
 * an invocation of its own (the shard-tick queue delivers one message at a time), so nothing changes there;
 * but where several shards are ticked in one process (the in-process fan-out of the local stack and of a
 * tick function without the queue, a batch of shard-tick messages, the bench) they share one store client
 * and, locally, one DynamoDB Local. With a limit per tick, 16 shards put 48 transactions of 100 items in
 * flight at once: queued behind each other past the client's request timeout (5 s), every one timed out,
 * and each timed-out attempt, still executed by the store, was sent again by the SDK's retries and then by
 * the halving of `planIsolated` — the load grew with every retry (10,000 jobs over 16 shards: 892 s, 1,304
 * planned as new, 224 errors).
 */
export class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    this.free = size;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

const planSlots = new Slots(PARALLEL_CHUNKS);

/** Plans one due shard's window under that shard's lease (see coordinator.ts for who ticks which shard). */
export async function tick(ctx: Context, owner: string, shard = 0): Promise<TickReport> {
  const started = performance.now();
  const report = await tickUnderLease(ctx, owner, shard);
  recordTick(ctx.metrics, report, performance.now() - started);
  return report;
}

/** A tick's report before it has done anything; the tick fills it in as it goes. */
export function emptyTickReport() {
  return {
    leader: false,
    paused: false,
    windowStart: null as number | null,
    windowEnd: null as number | null,
    jobs: 0,
    planned: 0,
    resent: 0,
    missed: 0,
    failedSlots: 0,
    isolated: 0,
    lost: 0,
    moved: 0,
    errors: [] as { job: string; error: string }[],
  };
}

async function tickUnderLease(ctx: Context, owner: string, shard: number): Promise<TickReport> {
  const now = ctx.clock();
  const report = emptyTickReport();
  const leaseMs = Math.max(ctx.config.tickPeriodMs, 30_000);
  const lease = await ctx.control.acquireLease(leaseName(shard), owner, now, leaseMs);
  if (!lease) return report;
  report.leader = true;
  let advanceTo: number | null = null;
  try {
    // While paused nothing is planned and the cursor is held; catch-up decides about the gap later.
    if (await ctx.control.isPaused()) {
      report.paused = true;
      return report;
    }
    // The cursor comes with the lease (its item holds both); only a table from before that reads it apart.
    const cursor = lease.cursorAt ?? (await ctx.control.getCursor(shard)) ?? now;
    const windowEnd = Math.max(cursor, now + ctx.config.tickPeriodMs + ctx.config.tickMarginMs);
    report.windowStart = cursor;
    report.windowEnd = windowEnd;
    const agents = liveAgents(ctx, now);
    // Read the due jobs first (index only, fire-time order): how many launch in each second decides how
    // early that second's launches are staged for the agents.
    const due: JobRecord[] = [];
    try {
      for await (const job of ctx.jobs.due(shard, windowEnd)) {
        if (ctx.clock() >= lease.expiresAtMs) break;
        due.push(job);
      }
    } catch (error) {
      // The store still unavailable after the read's own retries: plan what was read. The jobs not read
      // keep their `nextRunAt` (planning starts there, not at the cursor), so the next tick's read has them.
      if (!isTransient(error)) throw error;
      const message = error instanceof Error ? error.message : String(error);
      report.errors.push({
        job: '',
        error: `reading the due jobs: ${message} (the rest left for the next tick)`,
      });
    }
    report.jobs = due.length;
    // Every fire time of the window counts, not only each job's first: 100 jobs `@every 1s` put 100
    // launches in each of its seconds.
    const perSecond = new Map<number, number>();
    for (const job of due) {
      if (!dueBefore(job, windowEnd)) continue;
      let times: number[];
      try {
        times = fireTimes(job, windowEnd, now);
      } catch {
        continue; // a definition that cannot be planned: its chunk isolates it (planIsolated)
      }
      for (const t of times) {
        const second = Math.floor(Math.max(t, now) / 1000);
        perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
      }
    }
    const leadFor = (fireAt: number) => stagingLeadSeconds(perSecond.get(Math.floor(fireAt / 1000)) ?? 0);
    const round: Round = { ctx, windowEnd, now, agents, leadFor, leaseEnd: lease.expiresAtMs, report };
    const inFlight = new Set<Promise<void>>();
    // The earliest are planned first, in chunks, a few chunks at a time (per process: `planSlots`).
    for (let i = 0; i < due.length; i += CHUNK_JOBS) {
      await planSlots.acquire();
      // A holder whose lease ran out stops: a newer holder may be working the same window.
      if (ctx.clock() >= lease.expiresAtMs) {
        planSlots.release();
        break;
      }
      const jobs = due.slice(i, i + CHUNK_JOBS);
      const p: Promise<void> = planIsolated(round, jobs)
        .catch((error: unknown) => {
          const message = error instanceof Error ? error.message : String(error);
          for (const job of jobs) report.errors.push({ job: job.name, error: message });
        })
        .finally(() => {
          inFlight.delete(p);
          planSlots.release();
        });
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    // One sweep per round is enough: shard 0 is ticked every round, whatever the shard count.
    if (shard === 0) report.lost = await sweepLost(ctx, now);
    // A shard left over from a larger shard count hands what it still holds to the shards it now belongs
    // to (coordinator.ts): a job whose fire time is far off would otherwise keep it alive until then.
    if (shard >= ctx.config.dueShards && ctx.clock() < lease.expiresAtMs) {
      report.moved = await ctx.jobs.moveOutOfShard(shard, MOVE_PER_TICK);
    }
    // Jobs that failed to plan keep their `nextRunAt`, so the next tick tries them again whatever the
    // cursor: one bad job must not hold the cursor (and the write path's planning) for everyone.
    if (
      report.planned + report.resent > 0 ||
      report.errors.length === 0 ||
      due.length > report.errors.length
    ) {
      if (ctx.clock() < lease.expiresAtMs) advanceTo = windowEnd;
    }
    return report;
  } finally {
    // One write ends the round: the lease released and, when the window was planned, the cursor moved.
    await ctx.control.endRound(leaseName(shard), lease, advanceTo);
  }
}

type Report = {
  planned: number;
  resent: number;
  missed: number;
  failedSlots: number;
  isolated: number;
  errors: { job: string; error: string }[];
};

/** What every chunk of one tick's round is planned with, and the report it adds to. */
interface Round {
  readonly ctx: Context;
  readonly windowEnd: number;
  readonly now: number;
  readonly agents: ReturnType<typeof liveAgents>;
  readonly leadFor: (fireAt: number) => number;
  /** The lease's end: a holder whose lease ran out stops. */
  readonly leaseEnd: number;
  readonly report: Report;
}

/**
 * Plans a chunk of due jobs in bulk; should that fail, halves it and tries again, down to single jobs, so one
 * job that cannot be planned (a poison definition, a key the store refuses) is isolated and the others launch
 * on time. The isolated job keeps its `nextRunAt` (retried at the next tick, never silently dropped) and
 * carries the reason (`plan_error` on the job). A lease that ran out stops the search.
 *
 * A transient failure (a timeout, throttling: `isTransient`) says the store is overloaded, not that a job is
 * bad: halving would only multiply the requests (a chunk of 100 becomes up to 199 plannings) and add to the
 * overload. Such a chunk is tried again whole after a pause, and if it still fails its jobs are reported and
 * left for the next tick (they keep their `nextRunAt`; planning is idempotent), without a `plan_error`.
 */
async function planIsolated(
  round: Round,
  jobs: readonly JobRecord[],
  transientRetries = TRANSIENT_RETRIES,
): Promise<void> {
  const { ctx, windowEnd, now, agents, leadFor, leaseEnd, report } = round;
  try {
    const results = await planJobs(ctx, jobs, windowEnd, now, agents, leadFor);
    for (const r of results) {
      report.planned += r.planned;
      report.resent += r.resent;
      report.missed += r.missed;
      report.failedSlots += r.failedSlots;
    }
    await Promise.all(jobs.filter((j) => j.planError !== null).map((j) => ctx.jobs.clearPlanError(j.name)));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (isTransient(error)) {
      if (transientRetries > 0 && ctx.clock() < leaseEnd) {
        await sleep(TRANSIENT_PAUSE_MS * (1 + Math.random()));
        return planIsolated(round, jobs, transientRetries - 1);
      }
      for (const job of jobs) {
        report.errors.push({ job: job.name, error: `${message} (transient: left for the next tick)` });
      }
      return;
    }
    if (jobs.length === 1 || ctx.clock() >= leaseEnd) {
      for (const job of jobs) {
        report.errors.push({ job: job.name, error: message });
        report.isolated++;
        await ctx.jobs.recordPlanError(job.name, `could not be planned: ${message}`, now).catch(() => {}); // the store may be what failed: the tick's report still has it
      }
      return;
    }
    const half = Math.ceil(jobs.length / 2);
    await planIsolated(round, jobs.slice(0, half));
    await planIsolated(round, jobs.slice(half));
  }
}

/**
 * Beyond `storeUnavailable` (time-outs, throttling, the store's own failures): names and codes that say
 * "not now" to a planning transaction — a conflict with another writer, other throttling names, an aborted
 * connection.
 */
const TRANSIENT_NAMES = new Set([
  'Throttling',
  'RequestThrottled',
  'RequestThrottledException',
  'TransactionConflictException',
  'TransactionInProgressException',
  'InternalFailure',
  'ServiceUnavailableException',
]);
const TRANSIENT_CODES = new Set(['ECONNABORTED']);
/** Cancellation reasons of a transaction that say "not now" rather than "not this item". */
const TRANSIENT_REASONS = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
]);

/** Whether a planning failure is the store's load (try again later, whole), not something about the jobs. */
export function isTransient(error: unknown): boolean {
  if (storeUnavailable(error)) return true;
  if (typeof error !== 'object' || error === null) return false;
  const e = error as {
    name?: unknown;
    code?: unknown;
    CancellationReasons?: ReadonlyArray<{ Code?: unknown }>;
  };
  if (typeof e.name === 'string' && TRANSIENT_NAMES.has(e.name)) return true;
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  if (e.name === 'TransactionCanceledException' && Array.isArray(e.CancellationReasons)) {
    // Transient only when no item was refused for a reason of its own (a failed condition, a bad item).
    const codes = e.CancellationReasons.map((r) => r.Code).filter((c) => c !== undefined && c !== 'None');
    return codes.length > 0 && codes.every((c) => typeof c === 'string' && TRANSIENT_REASONS.has(c));
  }
  return false;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Belt and braces for agent loss: normally the next agent to receive the reappearing message marks the
 * execution lost, but if the message went to the dead-letter queue nobody would. Nothing stays
 * `running` forever.
 */
async function sweepLost(ctx: Context, now: number): Promise<number> {
  let lost = 0;
  // Silent longer than lostAfterMs means claimed (its first beat) longer ago, and a claim comes at most
  // MAX_HOLD_MS before the fire time: younger fire times need not be read (the index is keys only).
  const scheduledBefore = now - ctx.config.lostAfterMs + MAX_HOLD_MS;
  for (const e of await ctx.executions.listActive({ scheduledBefore })) {
    if (e.status !== 'running') continue;
    const age = now - (e.heartbeatAt ?? e.startedAt ?? now);
    if (age <= ctx.config.lostAfterMs) continue;
    if (
      await ctx.executions.markLost(
        e,
        now,
        `agent ${e.agentId} stopped heartbeating ${Math.round(age / 1000)} s ago`,
      )
    ) {
      await ctx.control.releaseLock(e.jobName, e.executionId);
      lost++;
    }
  }
  return lost;
}
