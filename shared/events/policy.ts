/**
 * What a finish leads to, decided from the finished execution, its job and its group alone: whether it
 * counts, whether another attempt follows and when, what the settled group starts, and what becomes of
 * an ephemeral job. Pure, so that the rules are tested without a store; reactions.ts carries them out.
 *
 * Which statuses count: `succeeded` is a success; `failed`, `timeout` and `lost` are errors (they are
 * retried and lead to `on_failure_job`); `cancelled` (a user or `replace` stopped it) and `skipped`
 * (it never ran: `forbid`, pause, job changed) count as neither and change no status.
 */
import { createHash } from 'node:crypto';
import {
  type Execution,
  type ExecutionStatus,
  executionIdFor,
  groupIdFor,
  TERMINAL,
} from '../executions/execution.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import { DEFAULT_RETRY_BACKOFF } from '../jobs/job.ts';
import { parseDuration } from '../schedule/duration.ts';

/** Retry delays stop growing here (also SQS's maximum message delay). */
export const MAX_RETRY_DELAY_MS = 15 * 60_000;

export type Outcome = 'success' | 'error' | 'neutral';

/** succeeded → success; failed, timeout, lost → error; cancelled, skipped (and non-terminal) → neutral. */
export function outcomeOf(status: ExecutionStatus): Outcome {
  if (status === 'succeeded') return 'success';
  if (status === 'failed' || status === 'timeout' || status === 'lost') return 'error';
  return 'neutral';
}

/** The parts of a job the policy reads. */
export interface JobPolicy {
  readonly name: string;
  readonly def: Pick<JobDefinition, 'retries' | 'retry_backoff' | 'on_failure_job' | 'ephemeral'>;
}

/**
 * Whether another attempt of the slot follows: an error while attempts remain. Also the event's
 * `will_retry`: a notification rule on `will_retry: [false]` hears of a failure once, when it is final.
 * A deleted job (null) is not retried.
 */
export function willRetry(e: Pick<Execution, 'status' | 'attempt'>, job: JobPolicy | null): boolean {
  return job !== null && outcomeOf(e.status) === 'error' && e.attempt <= job.def.retries;
}

/** Delay before attempt n+1 after attempt n failed: backoff · 2^(n−1), at most 15 minutes. */
export function retryDelayMs(backoffMs: number, failedAttempt: number): number {
  const exponent = Math.min(Math.max(failedAttempt - 1, 0), 40);
  return Math.min(MAX_RETRY_DELAY_MS, Math.max(0, backoffMs) * 2 ** exponent);
}

export interface RetryPlan {
  readonly attempt: number;
  readonly executionId: string;
  readonly scheduledAt: number;
}

/**
 * The next attempt: same group and slot, due after the backoff counted from the failure's finish time
 * (so a redelivered record computes the same time and id).
 */
export function retryPlan(
  e: Pick<Execution, 'group' | 'slot' | 'attempt' | 'finishedAt'>,
  job: JobPolicy,
  now: number,
): RetryPlan {
  const backoff = parseDuration(job.def.retry_backoff || DEFAULT_RETRY_BACKOFF, 'retry_backoff');
  const attempt = e.attempt + 1;
  return {
    attempt,
    executionId: executionIdFor(e.group, e.slot, attempt),
    scheduledAt: (e.finishedAt ?? now) + retryDelayMs(backoff, e.attempt),
  };
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

export interface FollowUps {
  /** The group the dependent jobs are launched in (the group settled with a success), else null. */
  readonly dependents: string | null;
  /** The `on_failure_job` and its group (the group settled with a failure), else null. */
  readonly onFailure: { readonly job: string; readonly group: string } | null;
}

/**
 * What a group starts once it is settled (nothing before): its dependent jobs after a success, the job's
 * `on_failure_job` after a failure (both when it partially failed); a job is never its own fallback.
 */
export function followUps(
  job: JobPolicy,
  e: Pick<Execution, 'jobName' | 'group' | 'finishedAt'>,
  summary: GroupSummary,
  now: number,
): FollowUps {
  if (!summary.settled) return { dependents: null, onFailure: null };
  const at = summary.settledAt ?? e.finishedAt ?? now;
  const fallback = job.def.on_failure_job;
  return {
    dependents: summary.succeeded > 0 ? derivedGroupId('dependent', e, at) : null,
    onFailure:
      summary.failed > 0 && fallback && fallback !== job.name
        ? { job: fallback, group: derivedGroupId('on_failure', e, at) }
        : null,
  };
}

/**
 * Dkron: an ephemeral job is deleted after a successful run, but kept while other jobs depend on it.
 * Null when the finish does not concern that rule.
 */
export function ephemeralFate(
  job: JobPolicy | null,
  outcome: Outcome,
  dependentJobs: number,
): 'delete' | 'keep' | null {
  if (!job?.def.ephemeral || outcome !== 'success') return null;
  return dependentJobs > 0 ? 'keep' : 'delete';
}
