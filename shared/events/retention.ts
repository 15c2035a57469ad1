/**
 * Retention: keeps the newest `keep` executions of a job that are finished *and reacted to*, and deletes
 * older ones of those. Planned (`scheduled`), `running` and finished-but-unreacted executions are never
 * deleted and do not count towards `keep`: a stream consumer that lags behind (a lost attempt is marked
 * `CRONPLANE_LOST_AFTER_MS` after its last heartbeat, newer runs finish meanwhile) would otherwise find the
 * execution of its record gone and silently skip its retry, counters and event. `reactedAt` also starts
 * the TTL (`expiresAt`) of a finished execution.
 */
import type { Context } from '../context.ts';
import { TERMINAL } from '../executions/execution.ts';
import type { ExecutionKey } from '../ports.ts';

/** Dkron keeps the newest 100 executions per job. */
export const DEFAULT_KEEP_EXECUTIONS = 100;

/** A finish still unreacted this long after it ended is taken up by the next reaction of its job. */
export const STALE_REACTION_MS = 10 * 60_000;

/** Trims a job's history; returns how many executions were deleted. */
export async function trimExecutions(ctx: Context, jobName: string, keep: number): Promise<number> {
  return (await retention(ctx, jobName, keep)).deleted;
}

/** `trimExecutions`, also answering the job's finishes that ended long ago and still have no reaction. */
export async function retention(
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
