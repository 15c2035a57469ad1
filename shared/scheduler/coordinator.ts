/**
 * The coordinator: one run per clock tick (on AWS the EventBridge rule, every minute). It decides which due
 * shards are ticked and has each ticked under its own lease and cursor (tick.ts): shard 0 in its own run,
 * the others fanned out (on AWS one SQS message per shard to the shard-tick queue, which invokes the tick
 * function once per message; locally in process). It takes no lease itself: two coordinators fan out twice,
 * and a shard's second tick is refused by the shard's lease or finds nothing left to plan.
 *
 * Resharding. Jobs are spread over `CRONPLANE_DUE_SHARDS` shards by name (JobsStore.dueShard). When the
 * count changes, a job keeps the shard it was written under until a planner moves it: planning it (its next
 * fire time is written together with its new shard), or a tick of a shard at or above the new count, which
 * moves what it holds to the new shards. So shards in [count, span) are still ticked, and `span` shrinks
 * only once such a shard is empty and RESHARD_GRACE_MS has passed since the count changed (a writer still
 * running with the old count, during a deployment, may put a job there). A job is never in no ticked shard,
 * and every planner of a fire time writes the same execution key, so a job seen by two shards while it
 * moves is still launched at most once per fire time.
 */
import type { Context } from '../context.ts';
import type { ShardLayout } from '../ports.ts';
import { type TickReport, tick } from './tick.ts';

/** The highest shard count the configuration accepts (shared/config.ts). */
export const MAX_SHARDS = 64;
/** How long shards above a new, smaller count are ticked even when found empty. */
export const RESHARD_GRACE_MS = 15 * 60_000;

/** Has the given shards (never 0) ticked somewhere else: SQS messages on AWS, in process locally. */
export type ShardFanOut = (shards: readonly number[], now: number) => Promise<void>;

export interface CoordinatorReport {
  readonly layout: ShardLayout;
  /** Shards handed to the fan-out (1 … span − 1). */
  readonly fannedOut: readonly number[];
  /** Shard 0's tick, run by the coordinator itself. */
  readonly shard0: TickReport;
  /** Why the other shards could not be handed out this round, or null. */
  readonly fanOutError: string | null;
}

/**
 * A round that found nothing to do: the lease taken, nothing due, nothing swept, moved or handed out, no
 * error. The tick function logs such a round at debug level only: one line a minute is ~$0.013 a month of
 * CloudWatch Logs for nothing (bench figure `cost`, variant idle-month); a round without the lease, a
 * paused scheduler and anything that did work are still logged.
 */
export function isIdleRound(report: CoordinatorReport): boolean {
  const t = report.shard0;
  return (
    t.leader &&
    !t.paused &&
    t.jobs === 0 &&
    t.planned + t.resent + t.lost + t.moved === 0 &&
    t.errors.length === 0 &&
    report.fannedOut.length === 0 &&
    report.fanOutError === null
  );
}

export async function coordinate(
  ctx: Context,
  owner: string,
  fanOut: ShardFanOut,
): Promise<CoordinatorReport> {
  const now = ctx.clock();
  const layout = await settleLayout(ctx, now);
  const others = Array.from({ length: layout.span - 1 }, (_, i) => i + 1);
  // Shard 0 does not wait for the others to be handed out, nor they for it; a failed hand-out is reported
  // (the next round hands those shards out again) and does not cost shard 0 its tick.
  const [shard0, sent] = await Promise.allSettled([
    tick(ctx, owner, 0),
    others.length > 0 ? fanOut(others, now) : Promise.resolve(),
  ]);
  if (shard0.status === 'rejected') throw shard0.reason;
  const fanOutError =
    sent.status === 'rejected'
      ? sent.reason instanceof Error
        ? sent.reason.message
        : String(sent.reason)
      : null;
  return { layout, fannedOut: others, shard0: shard0.value, fanOutError };
}

/** Fan-out without a queue: ticks the shards in this process, all at once. */
export function inProcessFanOut(ctx: Context, owner: string): ShardFanOut {
  return async (shards) => {
    await Promise.all(shards.map((shard) => tick(ctx, owner, shard)));
  };
}

/**
 * Reads the recorded layout and brings it in line with the configured count: a changed count widens
 * `span` to cover every shard that may still hold jobs; after the grace period, empty shards at the top
 * of [count, span) are dropped. Of two coordinators racing to change it, one writes; the other works with
 * what it computed, which covers at least the same shards.
 */
export async function settleLayout(ctx: Context, now: number): Promise<ShardLayout> {
  const count = ctx.config.dueShards;
  const stored = await ctx.control.getShardLayout();
  let next: ShardLayout;
  if (stored === null) {
    // First run (or a table from before the layout was recorded): any shard may hold jobs.
    next = { count, span: Math.max(count, await highestHoldingJobs(ctx, count, MAX_SHARDS)), changedAt: now };
  } else if (stored.count !== count) {
    next = { count, span: Math.max(count, stored.span, stored.count), changedAt: now };
  } else if (stored.span > count && now - stored.changedAt >= RESHARD_GRACE_MS) {
    next = { ...stored, span: Math.max(count, await highestHoldingJobs(ctx, count, stored.span)) };
  } else {
    return stored;
  }
  if (stored !== null && next.span === stored.span && next.count === stored.count) return stored;
  await ctx.control.putShardLayout(next, stored);
  return next;
}

/** One past the highest shard in [from, to) that holds a job, or `from` when none does. */
async function highestHoldingJobs(ctx: Context, from: number, to: number): Promise<number> {
  const shards = Array.from({ length: to - from }, (_, i) => from + i);
  const holding = await Promise.all(shards.map((s) => ctx.jobs.shardHoldsJobs(s)));
  let top = from;
  holding.forEach((h, i) => {
    if (h) top = from + i + 1;
  });
  return top;
}
