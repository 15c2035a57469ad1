/**
 * Reactions to finished executions: what the `events` Lambda does for every record of the Executions
 * table's stream (and what the local stream poller does with the same records).
 *
 * Only a transition from a non-terminal status to a terminal one (TERMINAL in execution.ts) is a
 * "finish"; every other record (our own bookkeeping writes, deletions, TTL) is ignored. For a finish:
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
 * Stream delivery is at least once, so every step is idempotent: the counters are written in one
 * transaction with a `countedAt` mark on the execution, new executions have ids derived from what
 * caused them (conditional puts), and a final `reactedAt` mark makes a redelivered record a no-op.
 * `reactedAt` also starts retention: a finished execution gets its TTL (`expiresAt`) only then.
 * A crash between the steps re-runs the not yet marked steps; at worst the event is published twice
 * (EventBridge is at-least-once anyway; the detail's `id` identifies the execution).
 *
 * Which statuses count: `succeeded` is a success; `failed`, `timeout` and `lost` are errors (they are
 * retried and lead to `on_failure_job`); `cancelled` (a user or `replace` stopped it) and `skipped`
 * (it never ran: `forbid`, pause, job changed) count as neither and change no status.
 */

import { createHash } from 'node:crypto';
import { PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Context } from '../context.ts';
import {
  type Execution,
  type ExecutionStatus,
  executionIdFor,
  fromItem,
  groupIdFor,
  TERMINAL,
  type Trigger,
  toApi,
} from '../executions/execution.ts';
import type { ExecutionKey } from '../executions/executions-store.ts';
import type { JobRecord } from '../jobs/jobs-store.ts';
import { recordFinish } from '../metrics/metrics.ts';
import { parseDuration } from '../schedule/duration.ts';
import { type AgentsSnapshot, launchFireTimes, liveAgents } from '../scheduler/plan.ts';

/** Dkron keeps the newest 100 executions per job. */
export const DEFAULT_KEEP_EXECUTIONS = 100;
/** Retry delays stop growing here (also SQS's maximum message delay). */
export const MAX_RETRY_DELAY_MS = 15 * 60_000;
export const EVENT_SOURCE = 'cronplane';
export const EVENT_DETAIL_TYPE = 'Execution Finished';
/** EventBridge refuses entries over 256 KB; the execution's output is cut to its tail to stay below. */
const MAX_EVENT_BYTES = 240_000;

export interface ReactionOptions {
  /** EventBridge bus for `Execution Finished`; default `ctx.config.eventBus` (CRONPLANE_EVENT_BUS). */
  readonly eventBusName?: string | undefined;
  /** Executions kept per job; default `ctx.config.executionsKept` (CRONPLANE_EXECUTIONS_KEPT, 100). */
  readonly keepExecutions?: number | undefined;
  readonly log?: ((event: Record<string, unknown>) => void) | undefined;
}

// ---------------------------------------------------------------------------------------------------
// Pure parts

export type Outcome = 'success' | 'error' | 'neutral';

/** succeeded → success; failed, timeout, lost → error; cancelled, skipped (and non-terminal) → neutral. */
export function outcomeOf(status: ExecutionStatus): Outcome {
  if (status === 'succeeded') return 'success';
  if (status === 'failed' || status === 'timeout' || status === 'lost') return 'error';
  return 'neutral';
}

function isTerminal(status: unknown): boolean {
  return typeof status === 'string' && TERMINAL.has(status as ExecutionStatus);
}

/** A finish: the new image is terminal and the old one (if any) was not. */
export function isTerminalTransition(oldStatus: unknown, newStatus: unknown): boolean {
  return isTerminal(newStatus) && !isTerminal(oldStatus);
}

/** Delay before attempt n+1 after attempt n failed: backoff · 2^(n−1), at most 15 minutes. */
export function retryDelayMs(backoffMs: number, failedAttempt: number): number {
  const exponent = Math.min(Math.max(failedAttempt - 1, 0), 40);
  return Math.min(MAX_RETRY_DELAY_MS, Math.max(0, backoffMs) * 2 ** exponent);
}

export interface GroupSummary {
  /** Every slot's latest attempt is terminal and none of them still has a retry coming. */
  readonly settled: boolean;
  /** Over the slots whose latest attempt is terminal: '' when none succeeded or failed. */
  readonly status: '' | 'success' | 'failed' | 'partially_failed';
  readonly succeeded: number;
  readonly failed: number;
  /** The latest finish time of the slots' latest attempts. */
  readonly settledAt: number | null;
}

/**
 * Dkron's job status over one group (all slots and retries of one trigger): the latest attempt of each
 * slot decides; some succeeded and some failed → `partially_failed`. A failed slot whose attempt is
 * within `retries` expects a retry, so the group is not settled yet.
 */
export function summarizeGroup(
  executions: ReadonlyArray<Pick<Execution, 'slot' | 'attempt' | 'status' | 'finishedAt'>>,
  retries: number,
): GroupSummary {
  const latest = new Map<number, Pick<Execution, 'slot' | 'attempt' | 'status' | 'finishedAt'>>();
  for (const e of executions) {
    const seen = latest.get(e.slot);
    if (!seen || e.attempt > seen.attempt) latest.set(e.slot, e);
  }
  let settled = latest.size > 0;
  let succeeded = 0;
  let failed = 0;
  let settledAt: number | null = null;
  for (const e of latest.values()) {
    if (!TERMINAL.has(e.status)) {
      settled = false;
      continue;
    }
    const outcome = outcomeOf(e.status);
    if (outcome === 'success') succeeded++;
    if (outcome === 'error') {
      failed++;
      if (e.attempt <= retries) settled = false;
    }
    if (e.finishedAt !== null) settledAt = Math.max(settledAt ?? 0, e.finishedAt);
  }
  const status =
    succeeded > 0 && failed > 0 ? 'partially_failed' : succeeded > 0 ? 'success' : failed > 0 ? 'failed' : '';
  return { settled, status, succeeded, failed, settledAt };
}

/**
 * The group of executions that a settled parent group causes: derived only from the parent (job, group)
 * and when it settled, so a redelivered record finds the same group and its conditional puts create
 * nothing twice. `d` = dependent job, `f` = on-failure job; hashed so chains do not grow the id.
 */
export function derivedGroupId(
  kind: 'dependent' | 'on_failure',
  parent: { jobName: string; group: string },
  at: number,
) {
  const hash = createHash('sha256').update(`${parent.jobName}/${parent.group}`).digest('hex').slice(0, 16);
  return groupIdFor(at, `${kind === 'dependent' ? 'd' : 'f'}${hash}`);
}

/**
 * The `Execution Finished` entry: detail = the execution's API JSON, output cut to fit EventBridge, plus
 * `will_retry`: whether another attempt follows. A rule on `will_retry: [false]` hears of a failure once,
 * when it is final, not at every attempt (infra/lib/notifications.ts).
 */
export function finishedEvent(e: Execution, eventBusName: string, willRetry = false): PutEventsRequestEntry {
  let limit: number | undefined;
  for (;;) {
    const detail = JSON.stringify({ ...toApi(e, limit), will_retry: willRetry });
    if (Buffer.byteLength(detail) <= MAX_EVENT_BYTES || limit === 0) {
      return {
        EventBusName: eventBusName,
        Source: EVENT_SOURCE,
        DetailType: EVENT_DETAIL_TYPE,
        Resources: [],
        Detail: detail,
        Time: new Date(e.finishedAt ?? e.scheduledAt),
      };
    }
    limit = limit === undefined ? 64_000 : Math.floor(limit / 2);
  }
}

// ---------------------------------------------------------------------------------------------------
// Stream records

/**
 * One record of the Executions stream, in the shape shared by Lambda's `DynamoDBRecord` and the
 * DynamoDB Streams API's `Record` (images still in DynamoDB JSON).
 */
export interface StreamRecordLike {
  readonly eventID?: string | undefined;
  readonly eventName?: string | undefined;
  readonly dynamodb?:
    | {
        readonly SequenceNumber?: string | undefined;
        readonly NewImage?: Readonly<Record<string, object>> | undefined;
        readonly OldImage?: Readonly<Record<string, object>> | undefined;
      }
    | undefined;
}

/** A change of one execution item, images already unmarshalled. */
export interface ExecutionChange {
  /** The record's sequence number: Lambda's batch item identifier, the poller's checkpoint. */
  readonly id: string;
  readonly oldImage?: Record<string, unknown> | undefined;
  readonly newImage?: Record<string, unknown> | undefined;
}

function unmarshallImage(
  image: Readonly<Record<string, object>> | undefined,
): Record<string, unknown> | undefined {
  return image ? unmarshall(image as unknown as Parameters<typeof unmarshall>[0]) : undefined;
}

export function changeFromStreamRecord(record: StreamRecordLike): ExecutionChange {
  return {
    id: record.dynamodb?.SequenceNumber ?? record.eventID ?? '',
    oldImage: unmarshallImage(record.dynamodb?.OldImage),
    newImage: unmarshallImage(record.dynamodb?.NewImage),
  };
}

/** The finished execution of a change, or null when the change is not a finish. */
export function finishedExecution(change: ExecutionChange): Execution | null {
  const next = change.newImage;
  if (!next || !isTerminalTransition(change.oldImage?.status, next.status)) return null;
  return fromItem(next);
}

/**
 * A deletion (REMOVE record: TTL, retention, a user) of an execution whose reactions were not done: a
 * planned or running one, or a finish without `reactedAt`. Retention and TTL no longer do that, so what
 * is left is a deleted job or history; it is reported (logged) rather than passing unseen. Null when
 * the change is no such deletion.
 */
export function unreactedDeletion(
  change: ExecutionChange,
): { jobName: string; executionId: string; status: string; finished: boolean } | null {
  const old = change.oldImage;
  if (change.newImage || !old || typeof old.reactedAt === 'number') return null;
  return {
    jobName: String(old.jobName),
    executionId: String(old.executionId),
    status: String(old.status),
    finished: isTerminal(old.status),
  };
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
      const removed = unreactedDeletion(change);
      if (removed) {
        options.log?.({
          msg: removed.finished ? 'execution deleted before its reaction' : 'planned execution deleted',
          level: 'warn',
          job: removed.jobName,
          execution: removed.executionId,
          status: removed.status,
        });
      }
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

// ---------------------------------------------------------------------------------------------------
// One finish

function keepExecutionsFor(ctx: Context, options: ReactionOptions): number {
  return options.keepExecutions ?? ctx.config.executionsKept ?? DEFAULT_KEEP_EXECUTIONS;
}

/** Runs every reaction to one finished execution; false when they were already done (or it is gone). */
async function reactToFinish(
  ctx: Context,
  e: Execution,
  options: ReactionOptions,
  batch: BatchState,
  catchUp = true,
) {
  const log = (msg: string, extra: Record<string, unknown> = {}) =>
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
  const outcome = outcomeOf(e.status);

  const job = await ctx.jobs.get(e.jobName);
  const willRetry = job !== null && outcome === 'error' && e.attempt <= job.def.retries;
  if (job) {
    if (outcome !== 'neutral' && marks.countedAt === null) {
      await ctx.jobs.countResultOnce(e, outcome, e.finishedAt ?? now, now);
    }
    const summary = summarizeGroup(await ctx.executions.listGroup(e.jobName, e.group), job.def.retries);
    if (summary.status !== '') await ctx.jobs.setStatusFromGroup(job.name, summary.status, e.group);

    if (willRetry) {
      await retry(ctx, job, e, now);
      log('retry scheduled', { attempt: e.attempt + 1 });
    }

    const children = await batch.childrenOf(job.name);
    const childNames = children.map((c) => c.name);
    if (childNames.join('\n') !== job.dependentJobs.join('\n'))
      await ctx.jobs.setDependentJobs(job.name, childNames);

    if (summary.settled) {
      const at = summary.settledAt ?? e.finishedAt ?? now;
      const cause = (kind: TriggeredBy['kind']): TriggeredBy => ({
        kind,
        job: job.name,
        group: e.group,
        executionId: e.executionId,
      });
      if (summary.succeeded > 0) {
        const group = derivedGroupId('dependent', e, at);
        for (const child of children) {
          if (child.def.disabled) {
            log('dependent job disabled, not run', { child: child.name });
            continue;
          }
          await launchJob(
            ctx,
            child,
            { group, trigger: 'dependent', triggeredBy: cause('parent_job') },
            now,
            batch,
          );
          log('dependent job launched', { child: child.name, group });
        }
      }
      const fallbackName = job.def.on_failure_job;
      if (summary.failed > 0 && fallbackName && fallbackName !== job.name) {
        const fallback = await ctx.jobs.get(fallbackName);
        if (!fallback) log('on_failure_job not found', { fallback: fallbackName });
        else if (fallback.def.disabled) log('on_failure_job disabled, not run', { fallback: fallbackName });
        else {
          const group = derivedGroupId('on_failure', e, at);
          await launchJob(
            ctx,
            fallback,
            { group, trigger: 'dependent', triggeredBy: cause('on_failure_job') },
            now,
            batch,
          );
          log('on_failure_job launched', { fallback: fallbackName, group });
        }
      }
    }
  }

  const eventBusName = options.eventBusName ?? ctx.config.eventBus;
  if (eventBusName) {
    try {
      await publishFinished(ctx, e, eventBusName, willRetry);
    } catch (error) {
      // A missing bus is a configuration error that redelivery cannot fix: it must not hold up the
      // retries and dependent jobs of every later record. Anything else is retried with the record.
      if (!(error instanceof Error && error.name === 'ResourceNotFoundException')) throw error;
      log('event not published: event bus not found', { bus: eventBusName });
    }
  }

  const kept = await retention(ctx, e.jobName, keepExecutionsFor(ctx, options));
  // A finish whose own record never got its reaction through (the consumer gave up on it, or it was
  // delivered while the store was down) is taken up here, by the next finish of the same job.
  if (catchUp) {
    for (const key of kept.stale) {
      if (key.executionId === e.executionId) continue;
      const missed = await ctx.executions.get(key.jobName, key.executionId);
      if (missed && TERMINAL.has(missed.status) && (await reactToFinish(ctx, missed, options, batch, false)))
        options.log?.({ msg: 'late reaction', job: missed.jobName, execution: missed.executionId });
    }
  }

  // Dkron: an ephemeral job is deleted after a successful run, but not while other jobs depend on it.
  if (job?.def.ephemeral && outcome === 'success') {
    const children = await batch.childrenOf(job.name);
    if (children.length > 0) log('ephemeral job kept: it has dependent jobs');
    else if (await ctx.jobs.deleteIfCreatedBy(job.name, e.finishedAt ?? now)) log('ephemeral job deleted');
  }

  await ctx.executions.markReacted(e, now);
  // After the mark: a redelivered record finds it and returns above, so a finish is counted once.
  recordFinish(ctx.metrics, e, willRetry);
  return true;
}

/** The next attempt of the same group and slot, sent to the same queue, due after the backoff. */
async function retry(ctx: Context, job: JobRecord, e: Execution, now: number): Promise<void> {
  const backoff = parseDuration(job.def.retry_backoff || '10s', 'retry_backoff');
  const attempt = e.attempt + 1;
  // From the failure's finish time, so a redelivered record computes the same time.
  const scheduledAt = (e.finishedAt ?? now) + retryDelayMs(backoff, e.attempt);
  const queueUrl = e.queueUrl || (await ctx.dispatch.queueForJob(job.def));
  const executionId = executionIdFor(e.group, e.slot, attempt);
  const existing = await ctx.executions.createScheduled(
    {
      jobName: job.name,
      executionId,
      group: e.group,
      slot: e.slot,
      attempt,
      trigger: 'retry',
      scheduledAt,
      jobVersion: job.version,
      queueUrl,
    },
    now,
  );
  // Already there from an earlier delivery: send again only while it still waits (the outbox rule).
  if (existing !== null && existing.status !== 'scheduled') return;
  await ctx.dispatch.send(
    queueUrl,
    [{ jobName: job.name, executionId, scheduledAt: existing?.scheduledAt ?? scheduledAt }],
    now,
  );
}

/** Why a `dependent` execution was launched (stored on it as `triggeredBy`). */
export interface TriggeredBy {
  readonly kind: 'parent_job' | 'on_failure_job';
  readonly job: string;
  readonly group: string;
  readonly executionId: string;
}

/**
 * Launches a job now in the given group: one slot when untagged or agentless, else one per live matching
 * agent or `:N` (as the planner does); a slot that no live agent can take ends `failed` with the reason. Conditional
 * puts make a second launch of the same group a no-op (still-`scheduled` executions are re-sent).
 */
export async function launchJob(
  ctx: Context,
  job: JobRecord,
  launch: { group: string; trigger: Trigger; triggeredBy?: TriggeredBy },
  now: number,
  batch?: { agents(now: number): AgentsSnapshot },
): Promise<string[]> {
  // The same launch path as the planner (slots, live-agent check, queue, outbox), under a derived group.
  const result = await launchFireTimes(
    ctx,
    job,
    [now],
    now,
    () => launch.trigger,
    batch?.agents(now) ?? liveAgents(ctx, now),
    {
      groupFor: () => launch.group,
      extra: launch.triggeredBy ? { triggeredBy: launch.triggeredBy } : {},
    },
  );
  return result.created;
}

async function publishFinished(
  ctx: Context,
  e: Execution,
  eventBusName: string,
  willRetry: boolean,
): Promise<void> {
  const out = await ctx.clients.eventbridge.send(
    new PutEventsCommand({ Entries: [finishedEvent(e, eventBusName, willRetry)] }),
  );
  if ((out.FailedEntryCount ?? 0) > 0) {
    const entry = out.Entries?.[0];
    throw new Error(
      `EventBridge refused the event: ${entry?.ErrorCode ?? ''} ${entry?.ErrorMessage ?? ''}`.trim(),
    );
  }
}

/**
 * Retention: keeps the newest `keep` executions of a job that are finished *and reacted to*, and deletes
 * older ones of those. Planned (`scheduled`), `running` and finished-but-unreacted executions are never
 * deleted and do not count towards `keep`: a stream consumer that lags behind (a lost attempt is marked
 * ~90 s after its fire time, newer runs finish meanwhile) would otherwise find the execution of its
 * record gone and silently skip its retry, counters and event. Returns how many were deleted.
 */
export async function trimExecutions(ctx: Context, jobName: string, keep: number): Promise<number> {
  return (await retention(ctx, jobName, keep)).deleted;
}

/** A finish still unreacted this long after it ended is taken up by the next reaction of its job. */
export const STALE_REACTION_MS = 10 * 60_000;

/** `trimExecutions`, also answering the job's finishes that ended long ago and still have no reaction. */
async function retention(
  ctx: Context,
  jobName: string,
  keep: number,
): Promise<{ deleted: number; stale: ExecutionKey[] }> {
  const all = await ctx.executions.listKeysForJob(jobName);
  const reacted = all.filter((e) => TERMINAL.has(e.status) && e.reactedAt !== null);
  const old = reacted.slice(Math.max(0, keep));
  const deleted = old.length > 0 ? await ctx.executions.deleteMany(old) : 0;
  const staleBefore = ctx.clock() - STALE_REACTION_MS;
  const stale = all.filter(
    (e) =>
      TERMINAL.has(e.status) && e.reactedAt === null && e.finishedAt !== null && e.finishedAt < staleBefore,
  );
  return { deleted, stale };
}
