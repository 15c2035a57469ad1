/**
 * Reactions to finished executions: what the `events` Lambda does for every record of the Executions
 * table's stream (and what the local stream poller does with the same records).
 *
 * Only a transition from a non-terminal status to a terminal one is a "finish" (stream.ts); every other
 * record (our own bookkeeping writes, deletions, TTL) is ignored. For a finish, in this order:
 *
 * 1. counters: `success_count`/`last_success` or `error_count`/`last_error`, and the job's `status`
 *    computed over its group (`success`, `failed`, `partially_failed`);
 * 2. retry with exponential backoff while attempts remain (a new execution of the same group and slot,
 *    sent through the shared queue, so it may land on any matching agent);
 * 3. when the group is settled: its dependent jobs after a success, its `on_failure_job` after a failure;
 * 4. `Execution Finished` on the configured EventBridge bus;
 * 5. trim the job's history to the newest N finished-and-reacted executions (planned, running and
 *    unreacted ones are never deleted), and take up the job's finishes that never got their reaction;
 * 6. delete an ephemeral job after a successful run.
 *
 * What each step decides is in policy.ts (pure); launch.ts, publish.ts and retention.ts carry it out.
 *
 * Stream delivery is at least once, so every step is idempotent: the counters are written in one
 * transaction with a `countedAt` mark on the execution, new executions have ids derived from what
 * caused them (conditional puts), and a final `reactedAt` mark makes a redelivered record a no-op.
 * `reactedAt` also starts retention: a finished execution gets its TTL (`expiresAt`) only then.
 * A crash between the steps re-runs the not yet marked steps; at worst the event is published twice
 * (EventBridge is at-least-once anyway; the detail's `id` identifies the execution).
 */

import type { Context } from '../context.ts';
import { type Execution, TERMINAL } from '../executions/execution.ts';
import { recordFinish } from '../metrics/metrics.ts';
import type { JobRecord } from '../ports.ts';
import { type AgentsSnapshot, liveAgents } from '../scheduler/plan.ts';
import { launchFollowUps, launchRetry } from './launch.ts';
import { ephemeralFate, followUps, type Outcome, outcomeOf, summarizeGroup, willRetry } from './policy.ts';
import { publishFinished } from './publish.ts';
import { DEFAULT_KEEP_EXECUTIONS, retention } from './retention.ts';
import {
  changeFromStreamRecord,
  type ExecutionChange,
  finishedExecution,
  type StreamRecordLike,
  unreactedDeletion,
} from './stream.ts';

export interface ReactionOptions {
  /** EventBridge bus for `Execution Finished`; default `ctx.config.eventBus` (CRONPLANE_EVENT_BUS). */
  readonly eventBusName?: string | undefined;
  /** Executions kept per job; default `ctx.config.executionsKept` (CRONPLANE_EXECUTIONS_KEPT, 100). */
  readonly keepExecutions?: number | undefined;
  readonly log?: ((event: Record<string, unknown>) => void) | undefined;
}

export interface ReactionBatchResult {
  /** Finishes reacted to now. */
  readonly reacted: number;
  /** Records that were no finish, or whose reactions were already done. */
  readonly ignored: number;
  /**
   * The id of the first record that failed (processing stops there, as Lambda retries a stream batch
   * from the lowest failed sequence number on); empty when all went through.
   */
  readonly failed: string[];
}

/**
 * The single entry point of the Lambda handler and the local stream poller: records in stream order,
 * one after the other (a job's records stay in order), stopping at the first failure.
 */
export async function reactToStreamRecords(
  ctx: Context,
  records: readonly StreamRecordLike[],
  options: ReactionOptions = {},
): Promise<ReactionBatchResult> {
  return reactToChanges(ctx, records.map(changeFromStreamRecord), options);
}

export async function reactToChanges(
  ctx: Context,
  changes: readonly ExecutionChange[],
  options: ReactionOptions = {},
): Promise<ReactionBatchResult> {
  const batch = new BatchState(ctx);
  let reacted = 0;
  let ignored = 0;
  for (const change of changes) {
    try {
      const execution = finishedExecution(change);
      if (execution && (await reactToFinish(ctx, execution, options, batch))) reacted++;
      else ignored++;
      reportUnreactedDeletion(change, options);
    } catch (error) {
      options.log?.({
        msg: 'reaction failed',
        record: change.id,
        job: change.newImage?.jobName,
        execution: change.newImage?.executionId,
        error: error instanceof Error ? error.message : String(error),
      });
      return { reacted, ignored, failed: [change.id] };
    }
  }
  return { reacted, ignored, failed: [] };
}

function reportUnreactedDeletion(change: ExecutionChange, options: ReactionOptions): void {
  const removed = unreactedDeletion(change);
  if (!removed) return;
  options.log?.({
    msg: removed.finished ? 'execution deleted before its reaction' : 'planned execution deleted',
    level: 'warn',
    job: removed.jobName,
    execution: removed.executionId,
    status: removed.status,
  });
}

/** Lookups shared by the records of one batch. */
class BatchState {
  private jobs: Promise<JobRecord[]> | null = null;
  private agentsSnapshot: AgentsSnapshot | null = null;

  constructor(private readonly ctx: Context) {}

  /** Jobs whose `parent_job` is `name` (one scan per batch; a parent_job index would avoid it). */
  async childrenOf(name: string): Promise<JobRecord[]> {
    this.jobs ??= this.ctx.jobs.list();
    this.jobs.catch(() => {
      this.jobs = null;
    });
    return (await this.jobs)
      .filter((j) => j.def.parent_job === name)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  agents(now: number): AgentsSnapshot {
    this.agentsSnapshot ??= liveAgents(this.ctx, now);
    return this.agentsSnapshot;
  }
}

type Log = (msg: string, extra?: Record<string, unknown>) => void;

/** What the steps of one finish share. */
interface Finish {
  readonly ctx: Context;
  readonly e: Execution;
  readonly options: ReactionOptions;
  readonly batch: BatchState;
  readonly now: number;
  readonly outcome: Outcome;
  /** Another attempt follows (also the event's `will_retry`). */
  readonly retrying: boolean;
  readonly log: Log;
}

/** Runs every reaction to one finished execution; false when they were already done (or it is gone). */
async function reactToFinish(
  ctx: Context,
  e: Execution,
  options: ReactionOptions,
  batch: BatchState,
  catchUp = true,
): Promise<boolean> {
  const log: Log = (msg, extra = {}) =>
    options.log?.({ msg, job: e.jobName, execution: e.executionId, status: e.status, ...extra });
  const marks = await ctx.executions.reactionMarks(e.jobName, e.executionId);
  if (!marks) {
    // Retention keeps every unreacted execution and TTL starts only at `reactedAt`, so only an explicit
    // delete (the job, or its history, removed by a user) gets here: said, not silently skipped.
    log('finished execution deleted before its reaction', { level: 'warn', outcome: outcomeOf(e.status) });
    return false;
  }
  if (marks.reactedAt !== null) return false;
  const now = ctx.clock();
  const job = await ctx.jobs.get(e.jobName);
  const finish: Finish = {
    ctx,
    e,
    options,
    batch,
    now,
    outcome: outcomeOf(e.status),
    retrying: willRetry(e, job),
    log,
  };

  const dependentJobs = job ? await reactInJob(finish, job, marks.countedAt !== null) : [];
  await publish(finish);
  await retainAndCatchUp(finish, catchUp);
  await settleEphemeral(finish, job, dependentJobs.length);

  await ctx.executions.markReacted(e, finish.now);
  // After the mark: a redelivered record finds it and returns above, so a finish is counted once.
  recordFinish(ctx.metrics, e, finish.retrying);
  return true;
}

/**
 * Steps 1–3, while the job exists: counters and status, the retry, the dependent-job list, and what the
 * settled group starts. Returns the job's dependent jobs.
 */
async function reactInJob(f: Finish, job: JobRecord, counted: boolean): Promise<JobRecord[]> {
  const { ctx, e, now } = f;
  if (f.outcome !== 'neutral' && !counted) {
    await ctx.jobs.countResultOnce(e, f.outcome, e.finishedAt ?? now, now);
  }
  const summary = summarizeGroup(await ctx.executions.listGroup(e.jobName, e.group), job.def.retries);
  if (summary.status !== '') await ctx.jobs.setStatusFromGroup(job.name, summary.status, e.group);

  if (f.retrying) {
    await launchRetry(ctx, job, e, now);
    f.log('retry scheduled', { attempt: e.attempt + 1 });
  }

  const children = await syncDependentJobs(f, job);
  await launchFollowUps(
    ctx,
    { job, execution: e, children },
    followUps(job, e, summary, now),
    now,
    f.batch,
    f.log,
  );
  return children;
}

/** The job's `dependent_jobs` (shown by the API) follow the jobs that name it as `parent_job`. */
async function syncDependentJobs(f: Finish, job: JobRecord): Promise<JobRecord[]> {
  const children = await f.batch.childrenOf(job.name);
  const childNames = children.map((c) => c.name);
  if (childNames.join('\n') !== job.dependentJobs.join('\n'))
    await f.ctx.jobs.setDependentJobs(job.name, childNames);
  return children;
}

/** Step 4: `Execution Finished`, when a bus is configured. */
async function publish(f: Finish): Promise<void> {
  const eventBusName = f.options.eventBusName ?? f.ctx.config.eventBus;
  if (!eventBusName) return;
  if (!(await publishFinished(f.ctx, f.e, eventBusName, f.retrying)))
    f.log('event not published: event bus not found', { bus: eventBusName });
}

/**
 * Step 5: retention; and a finish whose own record never got its reaction through (the consumer gave up
 * on it, or it was delivered while the store was down) is taken up here, by the next finish of the same
 * job (not recursively: a late reaction takes up nothing further).
 */
async function retainAndCatchUp(f: Finish, catchUp: boolean): Promise<void> {
  const { ctx, e, options } = f;
  const keep = options.keepExecutions ?? ctx.config.executionsKept ?? DEFAULT_KEEP_EXECUTIONS;
  const kept = await retention(ctx, e.jobName, keep);
  if (!catchUp) return;
  for (const key of kept.stale) {
    if (key.executionId === e.executionId) continue;
    const missed = await ctx.executions.get(key.jobName, key.executionId);
    if (missed && TERMINAL.has(missed.status) && (await reactToFinish(ctx, missed, options, f.batch, false)))
      options.log?.({ msg: 'late reaction', job: missed.jobName, execution: missed.executionId });
  }
}

/** Step 6: an ephemeral job goes after a successful run, unless other jobs depend on it. */
async function settleEphemeral(f: Finish, job: JobRecord | null, dependentJobs: number): Promise<void> {
  const fate = ephemeralFate(job, f.outcome, dependentJobs);
  if (job === null || fate === null) return;
  if (fate === 'keep') f.log('ephemeral job kept: it has dependent jobs');
  else if (await f.ctx.jobs.deleteIfCreatedBy(job.name, f.e.finishedAt ?? f.now))
    f.log('ephemeral job deleted');
}
