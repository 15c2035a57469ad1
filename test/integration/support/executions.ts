/** Executions written straight to the store, as the planner and an agent would: what the store tests build on. */
import type { Context } from '../../../shared/context.ts';
import {
  type Execution,
  executionIdFor,
  groupIdFor,
  type Trigger,
} from '../../../shared/executions/execution.ts';
import type { NewExecution } from '../../../shared/ports.ts';

/** A planned execution of `jobName` at `fireAt` (slot 0, attempt 1, a schedule, job version 1 unless given). */
export function plannedExecution(
  ctx: Context,
  jobName: string,
  fireAt: number,
  over: { slot?: number; attempt?: number; trigger?: Trigger; jobVersion?: number } = {},
): NewExecution {
  const group = groupIdFor(fireAt);
  const slot = over.slot ?? 0;
  const attempt = over.attempt ?? 1;
  return {
    jobName,
    executionId: executionIdFor(group, slot, attempt),
    group,
    slot,
    attempt,
    trigger: over.trigger ?? 'schedule',
    scheduledAt: fireAt,
    jobVersion: over.jobVersion ?? 1,
    queueUrl: ctx.config.defaultQueueUrl,
  };
}

/**
 * Writes `planned` as `scheduled` and claims it for a pretend agent `agentId` at `at`; throws when refused.
 * With `index`, the claim puts the run into `byActive` (as a claim from a message delivered before does).
 */
export async function claimedExecution(
  ctx: Context,
  planned: NewExecution,
  agentId: string,
  at: number,
  options: { index?: boolean } = {},
): Promise<Execution> {
  if ((await ctx.executions.createScheduled(planned, Date.now())) !== null) {
    throw new Error(`execution ${planned.executionId} exists already`);
  }
  const e = (await ctx.executions.get(planned.jobName, planned.executionId))!;
  const claim = await ctx.executions.claim(e, { agentId, nodeName: agentId }, at, options);
  if (!claim.claimed) throw new Error(`claim refused: ${claim.why}`);
  return claim.execution;
}
