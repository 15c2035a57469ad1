/**
 * The executions a finish launches: the retry of its slot, and the dependent and `on_failure_job` runs
 * of a settled group. Ids derive from what caused them (policy.ts), and every put is conditional, so a
 * redelivered record creates nothing twice; executions still `scheduled` are sent again (the outbox rule).
 */
import type { Context } from '../context.ts';
import type { LiveMembers } from '../dispatch/dispatch.ts';
import type { Execution, Trigger } from '../executions/execution.ts';
import type { JobRecord } from '../ports.ts';
import { launchFireTimes, liveAgents } from '../scheduler/plan.ts';
import { type FollowUps, retryPlan } from './policy.ts';

/** Why a `dependent` execution was launched (stored on it as `triggeredBy`). */
interface TriggeredBy {
  readonly kind: 'parent_job' | 'on_failure_job';
  readonly job: string;
  readonly group: string;
  readonly executionId: string;
}

/** The live agents, looked up once for all launches of a batch. */
export interface AgentsLookup {
  agents(now: number): LiveMembers;
}

type Log = (msg: string, extra?: Record<string, unknown>) => void;

/** The next attempt of the same group and slot, sent to the same queue, due after the backoff. */
export async function launchRetry(ctx: Context, job: JobRecord, e: Execution, now: number): Promise<void> {
  const { attempt, executionId, scheduledAt } = retryPlan(e, job, now);
  const queueUrl = e.queueUrl || (await ctx.dispatch.queueForJob(job.def, liveAgents(ctx, now)));
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
    ctx.clock,
  );
}

/**
 * Launches what a settled group starts (policy.ts `followUps`): each enabled dependent job, then the
 * `on_failure_job` if it exists and is enabled. A disabled or missing one is logged, not run.
 */
export async function launchFollowUps(
  ctx: Context,
  parent: { job: JobRecord; execution: Execution; children: readonly JobRecord[] },
  next: FollowUps,
  now: number,
  batch: AgentsLookup,
  log: Log,
): Promise<void> {
  const { job, execution: e } = parent;
  /** A `dependent` execution of `target` in `group`, remembering which finish caused it. */
  const launch = (target: JobRecord, group: string, kind: TriggeredBy['kind']) =>
    launchJob(
      ctx,
      target,
      {
        group,
        trigger: 'dependent',
        triggeredBy: { kind, job: job.name, group: e.group, executionId: e.executionId },
      },
      now,
      batch,
    );
  if (next.dependents !== null) {
    const group = next.dependents;
    for (const child of parent.children) {
      if (child.def.disabled) {
        log('dependent job disabled, not run', { child: child.name });
        continue;
      }
      await launch(child, group, 'parent_job');
      log('dependent job launched', { child: child.name, group });
    }
  }
  if (next.onFailure !== null) {
    const { job: fallbackName, group } = next.onFailure;
    const fallback = await ctx.jobs.get(fallbackName);
    if (!fallback) log('on_failure_job not found', { fallback: fallbackName });
    else if (fallback.def.disabled) log('on_failure_job disabled, not run', { fallback: fallbackName });
    else {
      await launch(fallback, group, 'on_failure_job');
      log('on_failure_job launched', { fallback: fallbackName, group });
    }
  }
}

/**
 * Launches a job now in the given group: one slot when untagged or agentless, else one per live matching
 * agent or `:N` (as the planner does); a slot that no live agent can take ends `failed` with the reason. Conditional
 * puts make a second launch of the same group a no-op (still-`scheduled` executions are re-sent).
 */
async function launchJob(
  ctx: Context,
  job: JobRecord,
  launch: { group: string; trigger: Trigger; triggeredBy?: TriggeredBy },
  now: number,
  batch?: AgentsLookup,
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
