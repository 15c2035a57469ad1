/**
 * Reactions to finished executions: what the `events` Lambda does for every record of the Executions
 * table's stream (and what the local stream poller does with the same records).
 *
 * Only a transition from a non-terminal status to a terminal one is a "finish" (stream.ts); every other
 * record (our own bookkeeping writes, deletions, TTL) is ignored. A batch of finishes is taken in two
 * phases. First, finish by finish in stream order, what it starts or announces:
 *
 * 1. a retry with exponential backoff while attempts remain (a new execution of the same group and slot,
 *    sent through the shared queue, so it may land on any matching agent);
 * 2. when the group is settled: its dependent jobs after a success, its `on_failure_job` after a failure;
 * 3. `Execution Finished` on the configured EventBridge bus;
 * 4. an ephemeral job's deletion after a successful run.
 *
 * Then, per job, the last writes (settle.ts): one update of the job — `success_count`/
 * `last_success` or `error_count`/`last_error` added up for the batch's finishes, and the job's `status`
 * computed over the newest group (`success`, `failed`, `partially_failed`) — then every finish marked
 * `reactedAt` (and `countedAt`), one update each. Last, retention trims
 * the job's history to the newest N finished-and-reacted executions (planned, running and unreacted ones
 * are never deleted) and takes up the job's finishes that never got their reaction.
 *
 * What each step decides is in policy.ts (pure); launch.ts, publish.ts and retention.ts carry it out.
 *
 * Stream delivery is at least once, so every step is idempotent: new executions have ids derived from
 * what caused them (conditional puts), a finish with `reactedAt` is a no-op, and the job's update keeps
 * the finishes it counted (`settling`) until their `countedAt` is seen, under an optimistic lock
 * (`settleSeq`), so a finish is counted once. A crash before the marks re-runs the steps (at worst the
 * event is published twice: EventBridge is at-least-once anyway; the detail's `id` identifies the
 * execution). `reactedAt` also starts retention: a finished execution gets its TTL (`expiresAt`) only
 * then. No transaction: one would bill each item twice (4 write units a finish instead of 2), and the
 * events function was the largest writer per execution (README, Cost).
 */

import type { Context } from '../context.ts';
import type { LiveMembers } from '../dispatch/dispatch.ts';
import { type Execution, TERMINAL } from '../executions/execution.ts';
import { recordFinish } from '../metrics/metrics.ts';
import type { JobRecord, ReactionMarks, SettledFinish } from '../ports.ts';
import { liveAgents, runsOneSlot } from '../scheduler/plan.ts';
import { launchFollowUps, launchRetry } from './launch.ts';
import { ephemeralFate, followUps, type Outcome, outcomeOf, summarizeGroup, willRetry } from './policy.ts';
import { publishFinished } from './publish.ts';
import { DEFAULT_KEEP_EXECUTIONS, retention } from './retention.ts';
import { settleFinishes } from './settle.ts';
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
  const finishes: Array<{ readonly id: string; readonly e: Execution }> = [];
  let ignored = 0;
  for (const change of changes) {
    reportUnreactedDeletion(change, options);
    const e = finishedExecution(change);
    if (e) finishes.push({ id: change.id, e });
    else ignored++;
  }
  const done = await reactToFinishes(ctx, finishes, options, new BatchState(ctx), true);
  return {
    reacted: done.reacted,
    ignored: ignored + done.ignored,
    failed: done.failedAt === null ? [] : [finishes[done.failedAt]!.id],
  };
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
  private readonly children = new Map<string, Promise<Map<string, JobRecord>>>();
  private agentsSnapshot: LiveMembers | null = null;
  private readonly marks = new Map<string, ReactionMarks>();
  private readonly jobRecords = new Map<string, JobRecord | null>();

  constructor(private readonly ctx: Context) {}

  /**
   * Reads the jobs of these finishes, then their reaction marks, one BatchGetItem each per 100: the jobs
   * first, as the last write's count-once rule needs (settle.ts).
   */
  async prefetch(executions: readonly Execution[]): Promise<void> {
    if (executions.length === 0) return;
    const jobs = await this.ctx.jobs.getMany(executions.map((e) => e.jobName));
    const marks = await this.ctx.executions.reactionMarksMany(executions);
    for (const [key, m] of marks) this.marks.set(key, m);
    for (const e of executions) {
      this.jobRecords.set(e.jobName, jobs.get(e.jobName) ?? null);
    }
  }

  /** The marks read with the batch (the finish's own, before this batch wrote anything), else read now. */
  async marksOf(e: Execution): Promise<ReactionMarks | null> {
    const key = `${e.jobName}/${e.executionId}`;
    const known = this.marks.get(key);
    this.marks.delete(key); // a second look (a late reaction) reads again
    return known ?? this.ctx.executions.reactionMarks(e.jobName, e.executionId);
  }

  async job(name: string): Promise<JobRecord | null> {
    if (!this.jobRecords.has(name)) this.jobRecords.set(name, await this.ctx.jobs.get(name));
    return this.jobRecords.get(name) ?? null;
  }

  /** The job was deleted by a reaction (ephemeral). */
  forgetJob(name: string): void {
    this.jobRecords.set(name, null);
  }

  /**
   * The jobs whose `parent_job` is this job: those its `dependent_jobs` names (the API keeps that list as
   * children are written and deleted: refreshDependents) that still name it, read once per batch. It was a
   * scan of every job per batch, a cost that grew with the account, not with the finishes.
   */
  async childrenOf(parent: JobRecord): Promise<JobRecord[]> {
    if (parent.dependentJobs.length === 0) return [];
    let read = this.children.get(parent.name);
    if (!read) {
      read = this.ctx.jobs.getMany(parent.dependentJobs);
      this.children.set(parent.name, read);
      read.catch(() => this.children.delete(parent.name));
    }
    return [...(await read).values()]
      .filter((j) => j.def.parent_job === parent.name)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  agents(now: number): LiveMembers {
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

/** A finish whose reactions are carried out, waiting for the last write (counters, status, marks). */
interface Prepared {
  /** Its place in the batch. */
  readonly index: number;
  readonly finish: Finish;
  /** Counted by an earlier delivery that died before its reaction was marked. */
  readonly counted: boolean;
  /** The status its group gives the job ('' when none). */
  readonly status: string;
}

/** Jobs whose last writes go out together. */
const SETTLE_CONCURRENCY = 8;

/**
 * Reacts to a batch of finishes in two phases. First, for each finish in stream order, everything that
 * starts or announces something: the retry, the dependent jobs or `on_failure_job` of a settled group,
 * `Execution Finished`, an ephemeral job's deletion — each idempotent (ids derived from the cause). Then,
 * per job, the last writes: the counts added to the job's counters and its status set (one update), then
 * every finish marked reacted (and counted) — so a redelivered record finds its reaction done and nothing
 * is counted twice (settle.ts). Retention then trims each job once.
 * Answers the index of the first finish whose reaction is not done (Lambda redelivers from it), or null.
 */
async function reactToFinishes(
  ctx: Context,
  finishes: ReadonlyArray<{ readonly id: string; readonly e: Execution }>,
  options: ReactionOptions,
  batch: BatchState,
  catchUp: boolean,
): Promise<{ reacted: number; ignored: number; failedAt: number | null }> {
  let failedAt: number | null = null;
  const fail = (index: number, error: unknown) => {
    const e = finishes[index]?.e;
    options.log?.({
      msg: 'reaction failed',
      record: finishes[index]?.id,
      job: e?.jobName,
      execution: e?.executionId,
      error: error instanceof Error ? error.message : String(error),
    });
    failedAt = failedAt === null ? index : Math.min(failedAt, index);
  };
  let ignored = 0;
  const prepared: Prepared[] = [];
  try {
    await batch.prefetch(finishes.map((f) => f.e));
    for (const [index, { e }] of finishes.entries()) {
      try {
        const p = await prepareFinish(ctx, e, index, options, batch);
        if (p) prepared.push(p);
        else ignored++;
      } catch (error) {
        fail(index, error);
        break;
      }
    }
  } catch (error) {
    if (finishes.length > 0) fail(0, error);
  }

  const byJob = new Map<string, Prepared[]>();
  for (const p of prepared) byJob.set(p.finish.e.jobName, [...(byJob.get(p.finish.e.jobName) ?? []), p]);
  const jobs = [...byJob];
  let reacted = 0;
  const trimmed: string[] = [];
  for (let i = 0; i < jobs.length; i += SETTLE_CONCURRENCY) {
    await Promise.all(
      jobs.slice(i, i + SETTLE_CONCURRENCY).map(async ([jobName, ps]) => {
        try {
          const settled = new Set(
            (
              await settleFinishes(
                ctx,
                jobName,
                await batch.job(jobName),
                ps.map(settledFinish),
                statusOf(ps),
                ctx.clock(),
              )
            ).map((f) => f.executionId),
          );
          for (const p of ps) {
            if (!settled.has(p.finish.e.executionId)) {
              ignored++;
              continue;
            }
            reacted++;
            // After the mark: a redelivered record finds it and stops early, so a finish is counted once.
            recordFinish(ctx.metrics, p.finish.e, p.finish.retrying);
          }
          if (await trimDue(batch, jobName, ps, keepOf(ctx, options))) trimmed.push(jobName);
        } catch (error) {
          fail(Math.min(...ps.map((p) => p.index)), error);
        }
      }),
    );
  }
  for (const jobName of trimmed) await retainAndCatchUp(ctx, jobName, options, batch, catchUp);
  return { reacted, ignored, failedAt };
}

function settledFinish(p: Prepared): SettledFinish {
  const { e, outcome, now } = p.finish;
  return { executionId: e.executionId, outcome, counted: p.counted, finishedAt: e.finishedAt ?? now };
}

/** The job's status after these finishes: that of the newest group among them that gives one. */
function statusOf(ps: readonly Prepared[]): { status: string; group: string } | null {
  let best: { status: string; group: string } | null = null;
  for (const p of ps) {
    if (p.status !== '' && (best === null || p.finish.e.group >= best.group))
      best = { status: p.status, group: p.finish.e.group };
  }
  return best;
}

function keepOf(ctx: Context, options: ReactionOptions): number {
  return options.keepExecutions ?? ctx.config.executionsKept ?? DEFAULT_KEEP_EXECUTIONS;
}

/**
 * Whether these finishes bring the job's history to a trim. Reading a job's history costs a query over
 * all of it, so with `keep` ≥ 20 it is trimmed once every keep/10 counted finishes (the history holds
 * between `keep` and `keep` + keep/10 reacted finishes); a smaller `keep`, a job that is gone and a
 * neutral finish (skipped, cancelled: not counted) trim every time.
 */
async function trimDue(batch: BatchState, jobName: string, ps: readonly Prepared[], keep: number) {
  const step = Math.max(1, Math.floor(keep / 10));
  const job = await batch.job(jobName);
  if (step === 1 || job === null || ps.some((p) => p.finish.outcome === 'neutral')) return true;
  const before = job.successCount + job.errorCount;
  const counted = ps.filter((p) => !p.counted).length;
  return Math.floor((before + counted) / step) > Math.floor(before / step);
}

/** Reads what one finish needs and carries out its reactions; null when they were already done. */
async function prepareFinish(
  ctx: Context,
  e: Execution,
  index: number,
  options: ReactionOptions,
  batch: BatchState,
): Promise<Prepared | null> {
  const log: Log = (msg, extra = {}) =>
    options.log?.({ msg, job: e.jobName, execution: e.executionId, status: e.status, ...extra });
  const marks = await batch.marksOf(e);
  if (!marks) {
    // Retention keeps every unreacted execution and TTL starts only at `reactedAt`, so only an explicit
    // delete (the job, or its history, removed by a user) gets here: said, not silently skipped.
    log('finished execution deleted before its reaction', { level: 'warn', outcome: outcomeOf(e.status) });
    return null;
  }
  if (marks.reactedAt !== null) return null;
  const job = await batch.job(e.jobName);
  const finish: Finish = {
    ctx,
    e,
    options,
    batch,
    now: ctx.clock(),
    outcome: outcomeOf(e.status),
    retrying: willRetry(e, job),
    log,
  };
  const { status, children } = job ? await reactInJob(finish, job) : { status: '', children: [] };
  await publish(finish);
  if (await settleEphemeral(finish, job, children.length)) batch.forgetJob(e.jobName);
  return { index, finish, counted: marks.countedAt !== null, status };
}

/**
 * Steps 2–3, while the job exists: the retry, the dependent-job list, and what the settled group starts.
 * Returns the status the group gives the job and the job's dependent jobs.
 */
async function reactInJob(f: Finish, job: JobRecord): Promise<{ status: string; children: JobRecord[] }> {
  const { ctx, e, now } = f;
  const group = aloneInGroup(e, job) ? [e] : await ctx.executions.listGroup(e.jobName, e.group);
  const summary = summarizeGroup(group, job.def.retries);

  if (f.retrying) {
    await launchRetry(ctx, job, e, now);
    f.log('retry scheduled', { attempt: e.attempt + 1 });
  }

  const children = await f.batch.childrenOf(job);
  await launchFollowUps(
    ctx,
    { job, execution: e, children },
    followUps(job, e, summary, now),
    now,
    f.batch,
    f.log,
  );
  return { status: summary.status, children };
}

/**
 * The finish is its group's only execution, so the group need not be read (a query a finish): the first
 * attempt of a one-slot job without retries, planned for the job's version as it is now (an edit may
 * have changed its tags or retries since).
 */
function aloneInGroup(e: Execution, job: JobRecord): boolean {
  return (
    e.attempt === 1 &&
    e.slot === 0 &&
    job.def.retries === 0 &&
    e.jobVersion === job.version &&
    runsOneSlot(job.def)
  );
}

/** Step 4: `Execution Finished`, when a bus is configured (a success only when every finish is published). */
async function publish(f: Finish): Promise<void> {
  const eventBusName = f.options.eventBusName ?? f.ctx.config.eventBus;
  if (!eventBusName) return;
  if (f.ctx.config.publishFinished === 'failures' && f.e.status === 'succeeded') return;
  if (!(await publishFinished(f.ctx, f.e, eventBusName, f.retrying)))
    f.log('event not published: event bus not found', { bus: eventBusName });
}

/**
 * Step 5: retention, after the batch's marks (so the finishes just reacted to count among the kept); and a
 * finish whose own record never got its reaction through (the consumer gave up on it, or it was delivered
 * while the store was down) is taken up here, by a later finish of the same job (not recursively: a late
 * reaction takes up nothing further). Neither holds up the batch: what fails here is done at the job's
 * next trim.
 */
async function retainAndCatchUp(
  ctx: Context,
  jobName: string,
  options: ReactionOptions,
  batch: BatchState,
  catchUp: boolean,
): Promise<void> {
  try {
    const kept = await retention(ctx, jobName, keepOf(ctx, options));
    if (!catchUp) return;
    for (const key of kept.stale) {
      const missed = await ctx.executions.get(key.jobName, key.executionId);
      if (!missed || !TERMINAL.has(missed.status)) continue;
      const late = await reactToFinishes(ctx, [{ id: key.executionId, e: missed }], options, batch, false);
      if (late.reacted > 0)
        options.log?.({ msg: 'late reaction', job: missed.jobName, execution: missed.executionId });
    }
  } catch (error) {
    options.log?.({
      msg: 'retention failed',
      level: 'warn',
      job: jobName,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** Step 6: an ephemeral job goes after a successful run, unless other jobs depend on it; true if it went. */
async function settleEphemeral(f: Finish, job: JobRecord | null, dependentJobs: number): Promise<boolean> {
  const fate = ephemeralFate(job, f.outcome, dependentJobs);
  if (job === null || fate === null) return false;
  if (fate === 'keep') {
    f.log('ephemeral job kept: it has dependent jobs');
    return false;
  }
  if (!(await f.ctx.jobs.deleteIfCreatedBy(job.name, f.e.finishedAt ?? f.now))) return false;
  f.log('ephemeral job deleted');
  return true;
}
