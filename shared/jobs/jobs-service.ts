/**
 * The job write path and queries behind the API and CLI. A write stores the definition, then plans the
 * job's fire times up to the tick's cursor with the same planner the tick uses, so a new `@every 2s`
 * job starts within seconds instead of at the next tick; planned executions of the old definition that
 * no longer apply are skipped with the reason.
 *
 * Every write is checked against the stack's trust settings (secrets path, worker allow-list:
 * checkExecutorTrust) and recorded with the caller's identity (caller.ts) in the job's history.
 */

import { randomBytes } from 'node:crypto';
import type { Context } from '../context.ts';
import {
  DependentJobsError,
  NotFoundError,
  ParentNotFoundError,
  PausedError,
  ValidationError,
} from '../errors.ts';
import { type Execution, toApi as executionToApi, groupIdFor } from '../executions/execution.ts';
import type { JobChange, JobRecord } from '../ports.ts';
import { launchFireTimes, liveAgents, planJob } from '../scheduler/plan.ts';
import { toRfc3339 } from '../time.ts';
import { currentCaller } from './caller.ts';
import { checkExecutorTrust } from './executor-config.ts';
import { firstFireAtOrAfter, validateJob } from './job.ts';
import { LIMITS } from './limits.ts';

export function jobToApi(job: JobRecord) {
  return {
    // Dkron's UI (react-admin) keys every record by `id`.
    id: job.name,
    ...job.def,
    starts_at: job.def.starts_at,
    expires_at: job.def.expires_at,
    dependent_jobs: job.dependentJobs.length > 0 ? job.dependentJobs : null,
    status: job.status,
    next: toRfc3339(job.nextRunAt),
    success_count: job.successCount,
    error_count: job.errorCount,
    missed_count: job.missedCount,
    last_success: toRfc3339(job.lastSuccess),
    last_error: toRfc3339(job.lastError),
    version: job.version,
    created_at: toRfc3339(job.createdAt || null),
    created_by: job.createdBy || null,
    updated_at: toRfc3339(job.updatedAt || null),
    updated_by: job.updatedBy || null,
    // Why the planner could not plan the job at its last try (it is retried at every tick), else null.
    plan_error: job.planError,
    plan_error_at: toRfc3339(job.planErrorAt),
  };
}

export type ApiJob = ReturnType<typeof jobToApi>;

function changeToApi(c: JobChange) {
  return { version: c.version, at: toRfc3339(c.at), by: c.by, action: c.action };
}

/** One job with its change history (oldest first; the list leaves the history out). */
export function jobWithHistoryToApi(job: JobRecord) {
  return { ...jobToApi(job), history: job.history.map(changeToApi) };
}

async function requireJob(ctx: Context, name: string): Promise<JobRecord> {
  const job = await ctx.jobs.get(name);
  if (!job) throw new NotFoundError(`job ${name} not found`);
  return job;
}

export async function getJob(ctx: Context, name: string) {
  return jobWithHistoryToApi(await requireJob(ctx, name));
}

/** Create or replace (Dkron: POST, PATCH and PUT all replace; counters are kept). */
export async function upsertJob(
  ctx: Context,
  input: unknown,
  options: {
    nameFromPath?: string;
    /**
     * Restore: the caller has checked parents, cycles and children for the whole file and refreshes the
     * parents' `dependent_jobs` once at the end (one read of the jobs instead of one per job).
     */
    batch?: { readonly previous: JobRecord | null; readonly deferExecutorConfig?: boolean };
    /** The identity recorded in the job's history; default: the current request's (caller.ts). */
    caller?: string;
  } = {},
) {
  const def = validateJob(input, { deferExecutorConfig: options.batch?.deferExecutorConfig });
  checkExecutorTrust(def, ctx.config);
  if (options.nameFromPath !== undefined && options.nameFromPath !== def.name) {
    throw new ValidationError('name', `must match the job name in the path (${options.nameFromPath})`);
  }
  if (await ctx.control.isPaused()) throw new PausedError('the scheduler is paused; unpause to change jobs');
  if (!options.batch) {
    if (def.parent_job) {
      const parent = await ctx.jobs.get(def.parent_job);
      if (!parent) throw new ParentNotFoundError(def.parent_job);
      if (parent.dependentJobs.length >= LIMITS.children && !parent.dependentJobs.includes(def.name)) {
        throw new ValidationError(
          'parent_job',
          `${def.parent_job} already has the most child jobs a job may have (${LIMITS.children})`,
        );
      }
    }
    await refuseParentCycle(ctx, def.name, def.parent_job);
  }
  const now = ctx.clock();
  const previous = options.batch ? options.batch.previous : await ctx.jobs.get(def.name);
  const job = await ctx.jobs.putDefinition(def, firstFireAtOrAfter(def, now), previous, now, {
    by: options.caller ?? currentCaller(),
    action: previous === null ? 'created' : 'updated',
  });
  await replan(ctx, job, now);
  // The parents' `dependent_jobs`: the new one gains this job, an old one it left loses it.
  if (!options.batch) await refreshDependents(ctx, [def.parent_job, previous?.def.parent_job ?? '']);
  const fresh = (await ctx.jobs.get(job.name)) ?? job;
  return { job: jobToApi(fresh), created: previous === null };
}

/** A job may not become its own ancestor: a → b → a would run forever, each success launching the other. */
async function refuseParentCycle(ctx: Context, name: string, parent: string): Promise<void> {
  const chain = [name];
  for (let p = parent; p !== ''; ) {
    chain.push(p);
    if (p === name) throw new ValidationError('parent_job', `would make a cycle (${chain.join(' → ')})`);
    p = (await ctx.jobs.get(p))?.def.parent_job ?? '';
    if (chain.length > LIMITS.parentDepth) {
      throw new ValidationError('parent_job', `chain of parents is deeper than ${LIMITS.parentDepth}`);
    }
  }
}

/** The names of the jobs whose `parent_job` is `parent`, sorted. */
function childrenIn(jobs: readonly JobRecord[], parent: string): string[] {
  return jobs
    .filter((j) => j.def.parent_job === parent)
    .map((j) => j.name)
    .sort((a, b) => a.localeCompare(b));
}

async function childrenOf(ctx: Context, parent: string): Promise<string[]> {
  return childrenIn(await ctx.jobs.list(), parent);
}

/** Rounds of refreshDependents' read-write-read. */
const REFRESH_ROUNDS = 5;

/**
 * Dkron's server-maintained `dependent_jobs` of these parents ('' for none), brought up to date when a child
 * is written or deleted, from a read of the jobs. The events reactions launch a parent's children from this
 * list, so it must not miss one: of two children of one parent written at once, each sets the list from its
 * own read and the later set wins, so a writer reads again after its set and sets again what changed
 * meanwhile (the last set is always followed by a read that includes every child written before it).
 */
export async function refreshDependents(ctx: Context, parents: readonly string[]): Promise<void> {
  let stale = [...new Set(parents)].filter((p) => p !== '');
  for (let round = 0; round < REFRESH_ROUNDS && stale.length > 0; round++) {
    const jobs = await ctx.jobs.list(true);
    const stored = new Map(jobs.map((j) => [j.name, j.dependentJobs.join('\n')]));
    stale = stale.filter((p) => stored.has(p) && stored.get(p) !== childrenIn(jobs, p).join('\n'));
    for (const parent of stale) await ctx.jobs.setDependentJobs(parent, childrenIn(jobs, parent));
  }
}

/** Plans [now, cursor) for a job just written and skips its stale planned executions. */
async function replan(ctx: Context, job: JobRecord, now: number): Promise<void> {
  const cursor = await ctx.control.getCursor(ctx.jobs.dueShard(job.name));
  if (cursor !== null && cursor > now) await planJob(ctx, job, cursor, now);
  const pending = await ctx.executions.listForJob(job.name, { fromId: groupIdFor(now - 3_600_000) });
  for (const e of pending) {
    if (e.status === 'scheduled' && e.jobVersion !== job.version) {
      await ctx.executions.end(
        e,
        'scheduled',
        'skipped',
        job.def.disabled ? 'job disabled' : 'job changed after planning',
        now,
      );
    }
  }
}

export async function toggleJob(ctx: Context, name: string, caller = currentCaller()): Promise<ApiJob> {
  const job = await requireJob(ctx, name);
  if (await ctx.control.isPaused()) throw new PausedError('the scheduler is paused; unpause to change jobs');
  const def = { ...job.def, disabled: !job.def.disabled };
  const now = ctx.clock();
  const updated = await ctx.jobs.putDefinition(def, firstFireAtOrAfter(def, now), job, now, {
    by: caller,
    action: def.disabled ? 'disabled' : 'enabled',
  });
  await replan(ctx, updated, now);
  return jobToApi((await ctx.jobs.get(name)) ?? updated);
}

export async function deleteJob(ctx: Context, name: string): Promise<ApiJob> {
  const job = await requireJob(ctx, name);
  const children = await childrenOf(ctx, name);
  if (children.length > 0) {
    // Dkron answers 404 to any delete it refuses; pydkron takes every other status for success.
    throw new DependentJobsError(
      `job ${name} has dependent jobs (${children.join(', ')}); delete them first`,
    );
  }
  await ctx.jobs.delete(name);
  await ctx.executions.deleteForJob(name);
  await refreshDependents(ctx, [job.def.parent_job]);
  return jobToApi(job);
}

/**
 * Run now, bypassing `disabled` (Dkron's POST /v1/jobs/{job}); answers at once with the group. Fans out
 * like a scheduled launch, and fails at once with the reason when no live agent matches the tags.
 */
export async function runJob(ctx: Context, name: string) {
  const job = await requireJob(ctx, name);
  const now = ctx.clock();
  const group = groupIdFor(now, `m${randomBytes(3).toString('hex')}`);
  const result = await launchFireTimes(ctx, job, [now], now, () => 'manual', liveAgents(ctx, now), {
    groupFor: () => group,
  });
  const executions = (await ctx.executions.listForJob(name, { fromId: group })).filter(
    (e) => e.group === group,
  );
  return {
    job: jobToApi(job),
    group,
    executions: executions.map((e) => e.executionId),
    failed: result.failedSlots,
  };
}

const SORTABLE = [
  'name',
  'displayname',
  'schedule',
  'success_count',
  'error_count',
  'last_success',
  'last_error',
  'next',
] as const;
/** What `_sort` of GET /v1/jobs takes: the fields above, and `id` (the name) as Dkron's UI sends. */
export const JOB_SORT_FIELDS = ['id', ...SORTABLE] as const;

export interface ListQuery {
  sort?: string;
  order?: string;
  q?: string;
  metadata?: Record<string, string>;
  /** Jobs whose tag has this value (a fan-out count is ignored: `role=web` matches `web:2`). */
  tags?: Record<string, string>;
  status?: string;
  disabled?: string;
  start?: number;
  end?: number;
}

/** Dkron's list semantics: filter, sort, then slice; the total counts after filtering. */
export async function listJobs(
  ctx: Context,
  query: ListQuery = {},
): Promise<{ total: number; jobs: ApiJob[] }> {
  // Dkron's default and its UI's `_sort=id` sort by name (the id).
  const sort = query.sort === undefined || query.sort === 'id' ? 'name' : query.sort;
  if (!(SORTABLE as readonly string[]).includes(sort)) {
    throw new ValidationError('_sort', `must be one of ${SORTABLE.join(', ')}`);
  }
  const order = (query.order ?? 'ASC').toUpperCase();
  if (order !== 'ASC' && order !== 'DESC') throw new ValidationError('_order', 'must be ASC or DESC');
  let jobs = (await ctx.jobs.list()).map(jobToApi);
  if (query.q) {
    const q = query.q.toLowerCase();
    jobs = jobs.filter((j) => j.name.includes(q) || j.displayname.toLowerCase().includes(q));
  }
  for (const [k, v] of Object.entries(query.metadata ?? {})) jobs = jobs.filter((j) => j.metadata[k] === v);
  for (const [k, v] of Object.entries(query.tags ?? {})) {
    jobs = jobs.filter((j) => j.tags[k] === v || j.tags[k]?.replace(/:\d+$/, '') === v);
  }
  if (query.status) {
    jobs = jobs.filter((j) => (query.status === 'untriggered' ? j.status === '' : j.status === query.status));
  }
  if (query.disabled !== undefined) jobs = jobs.filter((j) => String(j.disabled) === query.disabled);
  const key = sort as (typeof SORTABLE)[number];
  jobs.sort((a, b) => {
    const x = a[key] ?? '';
    const y = b[key] ?? '';
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return order === 'ASC' ? c : -c;
  });
  const total = jobs.length;
  return { total, jobs: jobs.slice(query.start ?? 0, query.end ?? undefined) };
}

/** `_sort` keys of GET /v1/jobs/{job}/executions; `id` is the fire-time order the ids are stored in. */
const EXECUTION_SORT: Record<string, ((e: Execution) => number | string) | null> = {
  id: null,
  scheduled_at: (e) => e.scheduledAt,
  started_at: (e) => e.startedAt ?? 0,
  finished_at: (e) => e.finishedAt ?? 0,
  attempt: (e) => e.attempt,
  status: (e) => e.status,
  node_name: (e) => e.nodeName ?? '',
};
export const EXECUTION_SORT_FIELDS = Object.keys(EXECUTION_SORT) as [string, ...string[]];

/**
 * A job's executions, as Dkron lists them: what ran, runs or was due, newest first. Launches planned
 * ahead of their fire time (`scheduled`, fire time still to come) are left out, as Dkron has no such
 * thing; `planned` includes them. `total` counts before `limit`.
 */
export async function listExecutions(
  ctx: Context,
  name: string,
  query: { order?: string; sort?: string; outputSizeLimit?: number; limit?: number; planned?: boolean } = {},
) {
  await requireJob(ctx, name);
  const order = (query.order ?? 'DESC').toUpperCase();
  if (order !== 'ASC' && order !== 'DESC') throw new ValidationError('_order', 'must be ASC or DESC');
  const sort = query.sort ?? 'id';
  if (!Object.hasOwn(EXECUTION_SORT, sort)) {
    throw new ValidationError('_sort', `must be one of ${Object.keys(EXECUTION_SORT).join(', ')}`);
  }
  const now = ctx.clock();
  const items = (await ctx.executions.listForJob(name, { newestFirst: order === 'DESC' })).filter(
    (e) => query.planned || e.status !== 'scheduled' || e.scheduledAt <= now,
  );
  const key = EXECUTION_SORT[sort];
  if (key) {
    const sign = order === 'ASC' ? 1 : -1;
    // Stable: equal keys keep the fire-time order.
    items.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      return x < y ? -sign : x > y ? sign : 0;
    });
  }
  const page = items.slice(0, query.limit);
  return {
    total: items.length,
    executions: page.map((e) => executionToApi(e, outputLimitFor(page, query.outputSizeLimit))),
  };
}

/**
 * Lambda answers at most 6 MB, and a list of 100 executions with full outputs (up to 256 KB each) is more:
 * then each output is cut to its tail, an equal share of this budget, and marked `output_truncated` (one
 * execution's full output stays at GET …/executions/{id}, and beyond that at its `output_url`).
 */
export const LIST_OUTPUT_BUDGET = 4_000_000;

function outputLimitFor(page: readonly Execution[], requested: number | undefined): number | undefined {
  const total = page.reduce((sum, e) => sum + Math.min(e.output.length, requested ?? Infinity), 0);
  if (total <= LIST_OUTPUT_BUDGET) return requested;
  return Math.min(requested ?? Infinity, Math.floor(LIST_OUTPUT_BUDGET / page.length));
}

export async function getExecution(ctx: Context, name: string, id: string) {
  const e = await ctx.executions.get(name, id);
  if (!e) throw new NotFoundError(`execution ${id} of job ${name} not found`);
  return executionToApi(e);
}

/** DELETE /v1/jobs/{job}/executions: removes the executions and resets the counters, as Dkron does. */
export async function clearExecutions(ctx: Context, name: string) {
  await requireJob(ctx, name);
  const removed = await ctx.executions.deleteForJob(name);
  await ctx.jobs.resetResults(name);
  return { job: jobToApi(await requireJob(ctx, name)), removed };
}
