/**
 * Planning one job over a window: the single function used by the tick and by the write path.
 *
 * Order matters for crash safety. Executions are put first (conditional on their fire-time-derived id),
 * then sent, and only then is the job's `nextRunAt` advanced (compare-and-set on its old value). A crash
 * at any point leaves `nextRunAt` where it was, so the next planner re-plans the same fire times: the puts
 * find the executions already there, and any still `scheduled` are sent again (the outbox). A second
 * delivery is harmless because an agent runs an execution only through the `scheduled → running` claim.
 */
import { liveMembers } from '../agents/liveness.ts';
import type { Context } from '../context.ts';
import { type LaunchMessage, type LiveMembers, tagsSatisfy } from '../dispatch/dispatch.ts';
import { executionIdFor, groupIdFor, type Trigger } from '../executions/execution.ts';
import { isAgentless } from '../executors/registry.ts';
import { jobSchedule, withinExpiry } from '../jobs/job.ts';
import { parseTags } from '../jobs/tags.ts';
import type { JobRecord, NewExecution } from '../ports.ts';
import { parseDuration } from '../schedule/duration.ts';
import type { Schedule } from '../schedule/schedule.ts';

/** Never an unbounded burst: at most this many fire times of one job per planning pass. */
export const MAX_FIRES_PER_PASS = 500;
/** Counting missed fire times stops here (the count is then a lower bound). */
const MAX_MISSED_COUNT = 10_000;
/** A fire time this far in the past when planned was missed: it runs as `catchup`. */
const LATE_TOLERANCE_MS = 1_000;

export interface PlanResult {
  planned: number;
  resent: number;
  missed: number;
  failedSlots: number;
  advanced: boolean;
}

/** Live agents, read at most once per planning pass. */
export function liveAgents(ctx: Context, now: number): LiveMembers {
  let cached: ReturnType<LiveMembers> | null = null;
  return () => {
    cached ??= ctx.agents.list().then((all) => liveMembers(all, now));
    return cached;
  };
}

/**
 * How many slots one launch of this job has: 1 untagged; every live match, or `:N` of them — never more
 * than there are live matching agents (Dkron's rule: `web:300` with 3 web agents runs on those 3), so a
 * large count cannot turn one fire time into hundreds of writes that no agent could take. With no live
 * match there is one slot, which ends `failed` with the reason.
 */
/** A job launched as one slot per fire time whatever the fleet: no tag selector, or agentless. */
export function runsOneSlot(def: JobRecord['def']): boolean {
  return Object.keys(parseTags(def.tags).selector).length === 0 || isAgentless(def);
}

async function slotsFor(job: JobRecord, agents: LiveMembers): Promise<{ slots: number; live: number }> {
  if (runsOneSlot(job.def)) return { slots: 1, live: 1 };
  const { selector, count } = parseTags(job.def.tags);
  const live = (await agents()).filter((a) => tagsSatisfy(a.tags, selector)).length;
  return { slots: Math.max(1, Math.min(count ?? live, live)), live };
}

export async function planJob(
  ctx: Context,
  job: JobRecord,
  windowEnd: number,
  now: number,
  agents: LiveMembers = liveAgents(ctx, now),
): Promise<PlanResult> {
  const [result] = await planJobs(ctx, [job], windowEnd, now, agents);
  return result!;
}

/** Which fire times of a job to launch in this pass, where its `nextRunAt` goes, how many were missed. */
interface FirePlan {
  readonly times: number[];
  readonly next: number | null;
  readonly missed: number;
}

/** A job with a fire time before `windowEnd`: one this pass plans. */
export function dueBefore(job: JobRecord, windowEnd: number): job is JobRecord & { nextRunAt: number } {
  return job.nextRunAt !== null && job.nextRunAt < windowEnd;
}

/** Fire plans by job record, for the round they were computed for (the tick counts them before planning). */
const firePlans = new WeakMap<JobRecord, { windowEnd: number; now: number; plan: FirePlan }>();

/** The fire times this pass launches for `job` (computed once per record and round). */
export function fireTimes(job: JobRecord & { nextRunAt: number }, windowEnd: number, now: number): number[] {
  return firePlanOf(job, windowEnd, now).times;
}

function firePlanOf(job: JobRecord & { nextRunAt: number }, windowEnd: number, now: number): FirePlan {
  const known = firePlans.get(job);
  if (known && known.windowEnd === windowEnd && known.now === now) return known.plan;
  const plan = firePlan(job, windowEnd, now);
  firePlans.set(job, { windowEnd, now, plan });
  return plan;
}

function firePlan(job: JobRecord & { nextRunAt: number }, windowEnd: number, now: number): FirePlan {
  const schedule = jobSchedule(job.def);
  const catchupStart = now - parseDuration(job.def.catchup_window, 'catchup_window');
  let missed = 0;
  let from: number | null = job.nextRunAt;
  if (from < catchupStart) {
    missed = schedule.between(from, catchupStart, MAX_MISSED_COUNT).length;
    from = schedule.next(catchupStart - 1);
  }
  // Of the fire times already past, only the newest `catchup_max` run; older ones count as missed.
  const lateEnd = now - LATE_TOLERANCE_MS;
  if (from !== null && from < lateEnd) {
    const kept = newestStart(schedule, from, lateEnd, job.def.catchup_max);
    missed += kept.dropped;
    from = kept.start;
  }
  const times = from === null ? [] : schedule.between(from, windowEnd, MAX_FIRES_PER_PASS);
  const inWindow = times.filter((t) => withinExpiry(job.def, t));
  const last = times.at(-1);
  let next: number | null = last === undefined ? from : schedule.next(last);
  if (inWindow.length < times.length || (next !== null && !withinExpiry(job.def, next))) next = null;
  return { times: inWindow, next, missed };
}

/**
 * Plans many jobs over one window in three bulk steps — put every execution, send every message, then
 * advance every `nextRunAt` — so a burst of due jobs costs a few dozen requests, not three per job. The
 * order per job is the same as planning it alone, so crash safety is unchanged.
 */
export async function planJobs(
  ctx: Context,
  jobs: readonly JobRecord[],
  windowEnd: number,
  now: number,
  agents: LiveMembers = liveAgents(ctx, now),
  leadFor?: (fireAt: number) => number,
): Promise<PlanResult[]> {
  const results: PlanResult[] = jobs.map(() => ({
    planned: 0,
    resent: 0,
    missed: 0,
    failedSlots: 0,
    advanced: false,
  }));
  const work = jobs.flatMap((job, i) =>
    dueBefore(job, windowEnd) ? [{ i, job, plan: firePlanOf(job, windowEnd, now) }] : [],
  );
  const trigger = (t: number): Trigger => (t < now - LATE_TOLERANCE_MS ? 'catchup' : 'schedule');
  const launches = await launchMany(
    ctx,
    work.map(({ job, plan }) => ({ job, times: plan.times, triggerFor: trigger })),
    now,
    agents,
    leadFor,
  );
  const advanced = await ctx.jobs.advanceNextRunMany(
    work.map(({ job, plan }) => ({ job, next: plan.next, missed: plan.missed })),
  );
  work.forEach(({ i, plan }, k) => {
    const launch = launches[k]!;
    results[i] = {
      planned: launch.created.length,
      resent: launch.resent,
      missed: plan.missed,
      failedSlots: launch.failedSlots,
      advanced: advanced[k]!,
    };
  });
  return results;
}

/**
 * Where the newest `keep` fire times in [from, end) start (null when none is left), and how many fire
 * times come before that start (counting stops at MAX_MISSED_COUNT). `between` stops at its limit, so
 * when [from, end) holds more than MAX_MISSED_COUNT fire times the start is found by bisection instead
 * of by indexing a truncated list (which would start the catch-up in the middle of the backlog).
 */
export function newestStart(
  schedule: Schedule,
  from: number,
  end: number,
  keep: number,
): { start: number | null; dropped: number } {
  const late = schedule.between(from, end, MAX_MISSED_COUNT);
  if (late.length < MAX_MISSED_COUNT) {
    const dropped = Math.max(0, late.length - keep);
    if (dropped === 0) return { start: from, dropped };
    return { start: late[dropped] ?? schedule.next(end - 1), dropped };
  }
  // Invariant: [lo, end) holds more than `keep` fire times, [hi, end) at most `keep`.
  let lo = from;
  let hi = end;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (schedule.between(mid, end, keep + 1).length > keep) lo = mid;
    else hi = mid;
  }
  // A fire time sits at `lo` and exactly `keep` follow it before `end`.
  const start = schedule.next(lo);
  return { start, dropped: schedule.between(from, start ?? end, MAX_MISSED_COUNT).length };
}

export interface LaunchOptions {
  /** The group id of a fire time; default `groupIdFor(t)`. Manual and dependent runs bring their own. */
  readonly groupFor?: (fireAt: number) => string;
  /** Extra attributes stored on each new execution (e.g. what triggered it). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** What launching a list of fire times did. */
export interface LaunchResult {
  /** Executions created and sent by this call. */
  readonly created: string[];
  /** Slots of the fire times that already had an execution: nothing new was created for them. */
  readonly existing: number;
  /** Of those, the ones still `scheduled`, sent again (the outbox). */
  readonly resent: number;
  /** Slots created but ended `failed` at once because no live agent can take them. */
  readonly failedSlots: number;
}

/**
 * Launches fire times of a job: one `scheduled` execution per slot, its id derived from the fire time
 * (`groupIdFor(t)`), put only if absent, then one send for the new ones and for those still `scheduled`
 * (the outbox). A fire time launched before is never launched again. Shared by the planner and backfill.
 */
export async function launchFireTimes(
  ctx: Context,
  job: JobRecord,
  times: readonly number[],
  now: number,
  triggerFor: (fireAt: number) => Trigger,
  agents: LiveMembers = liveAgents(ctx, now),
  options: LaunchOptions = {},
): Promise<LaunchResult> {
  const [result] = await launchMany(ctx, [{ job, times, triggerFor, options }], now, agents);
  return result!;
}

/** One job's fire times to launch, for `launchMany`. */
export interface LaunchRequest {
  readonly job: JobRecord;
  readonly times: readonly number[];
  readonly triggerFor: (fireAt: number) => Trigger;
  readonly options?: LaunchOptions;
}

/** `launchFireTimes` for many jobs: one bulk put of all their executions, then one bulk send. */
export async function launchMany(
  ctx: Context,
  requests: readonly LaunchRequest[],
  now: number,
  agents: LiveMembers = liveAgents(ctx, now),
  leadFor?: (fireAt: number) => number,
): Promise<LaunchResult[]> {
  const results = requests.map(() => ({ created: [] as string[], existing: 0, resent: 0, failedSlots: 0 }));
  type Slot = { r: number; fresh: NewExecution; live: number };
  const slots: Slot[] = [];
  for (const [r, { job, times, triggerFor, options = {} }] of requests.entries()) {
    if (times.length === 0) continue;
    const { slots: count, live } = await slotsFor(job, agents);
    const queueUrl = await ctx.dispatch.queueForJob(job.def, agents);
    for (const t of times) {
      const trigger = triggerFor(t);
      const group = options.groupFor?.(t) ?? groupIdFor(t);
      for (let slot = 0; slot < count; slot++) {
        const fresh: NewExecution = {
          jobName: job.name,
          executionId: executionIdFor(group, slot, 1),
          group,
          slot,
          attempt: 1,
          trigger,
          scheduledAt: t,
          jobVersion: job.version,
          queueUrl,
          ...(options.extra ?? {}),
        };
        slots.push({ r, fresh, live });
      }
    }
  }
  const existing = await ctx.executions.createScheduledMany(
    slots.map((s) => s.fresh),
    now,
  );
  const byQueue = new Map<string, LaunchMessage[]>();
  await Promise.all(
    slots.map(async ({ r, fresh, live }, k) => {
      const job = requests[r]!.job;
      const result = results[r]!;
      const found = existing[k];
      if (!found && fresh.slot >= live) {
        const reason =
          live === 0
            ? `no live agent matches tags ${JSON.stringify(job.def.tags)}`
            : `only ${live} live agent(s) match tags ${JSON.stringify(job.def.tags)}`;
        await ctx.executions.end(fresh, 'scheduled', 'failed', reason, now);
        result.failedSlots++;
        return;
      }
      if (!found) {
        result.created.push(fresh.executionId);
      } else {
        result.existing++;
        if (found.status !== 'scheduled') return;
        // Planned by a newer version of the job than our copy (a stale read): that planner owns it.
        if (found.jobVersion > job.version) return;
        if (found.jobVersion !== job.version && !(await ctx.executions.retarget(found, job.version))) return;
        result.resent++;
      }
      const messages = byQueue.get(fresh.queueUrl) ?? [];
      messages.push({ jobName: job.name, executionId: fresh.executionId, scheduledAt: fresh.scheduledAt });
      byQueue.set(fresh.queueUrl, messages);
    }),
  );
  await Promise.all(
    [...byQueue].map(([queueUrl, messages]) => ctx.dispatch.send(queueUrl, messages, ctx.clock, leadFor)),
  );
  return results;
}
