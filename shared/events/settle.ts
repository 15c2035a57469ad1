/**
 * The reactions' last writes for one job's finishes, without a transaction (one would bill each of its
 * items twice: 4 write units for a finish and its job, against 2 here):
 *
 * 1. the job (JobsStore.settleCounts): its counters, last success/error and status, and `settling` — the
 *    finishes counted by this and earlier settles whose `countedAt` is not known written — conditional on
 *    `settleSeq` as read, so two consumers of one record, or a settle and a late reaction, never both count;
 * 2. each execution (ExecutionsStore.markReacted): `reactedAt` (with its TTL: retention starts here) and
 *    `countedAt`, conditional on `reactedAt` absent.
 *
 * A finish is counted when it is in `settling` or has `countedAt` (it leaves `settling` only at a later
 * settle of the job that saw its `countedAt`, written through this context or read), so a delivery that
 * died between 1 and 2 is not counted again by the next one, which writes its marks. That holds because
 * the job was read before the marks: when neither shows a finish counted and `settleSeq` has not moved
 * since, nobody counted it (`known`, and the finishes' `counted`). A write that loses reads the job, then
 * the marks, again.
 */
import type { Context } from '../context.ts';
import type { JobRecord, SettledFinish } from '../ports.ts';

/** Rounds of a settle whose job write lost to another settle of the job before it gives up (and is retried). */
const SETTLE_ROUNDS = 8;
/** Executions remembered per context as marked counted through it. */
const MARKED_REMEMBERED = 10_000;

/** Per context: `jobName/executionId` of the finishes whose `countedAt` it wrote, oldest first. */
const markedThrough = new WeakMap<Context, Set<string>>();

/** Counts (not neutral) and not counted by an earlier delivery (no `countedAt`). */
function counts(f: SettledFinish): boolean {
  return f.outcome !== 'neutral' && !f.counted;
}

/**
 * `known` is the job as read before the finishes' marks (null: gone), `counted` of each finish from marks
 * read after it. Finishes reacted to meanwhile are left out; the rest is written without the status (a
 * newer group set it) or without the job (gone). Answers the finishes it marked.
 */
export async function settleFinishes(
  ctx: Context,
  jobName: string,
  known: JobRecord | null,
  finishes: readonly SettledFinish[],
  status: { readonly status: string; readonly group: string } | null,
  now: number,
): Promise<SettledFinish[]> {
  let job = known;
  let rest = [...finishes];
  let withStatus = status;
  for (let round = 1; job !== null && !(await settleJob(ctx, job, rest, withStatus)); round++) {
    if (round >= SETTLE_ROUNDS) throw new Error(`job ${jobName}: ${round} settles lost to others in a row`);
    const tried = job.settleSeq;
    job = await ctx.jobs.get(jobName);
    const marks = await ctx.executions.reactionMarksMany(
      rest.map((f) => ({ jobName, executionId: f.executionId })),
    );
    // Reacted to meanwhile (another delivery of its record), or deleted: not this settle's any more.
    rest = rest.flatMap((f) => {
      const m = marks.get(`${jobName}/${f.executionId}`);
      return m && m.reactedAt === null ? [{ ...f, counted: m.countedAt !== null }] : [];
    });
    if (job?.settleSeq === tried) withStatus = null; // nobody else settled: a newer group set the status
  }
  const marked = await Promise.all(
    rest.map(async (f) => {
      const counting = counts(f);
      if (!(await ctx.executions.markReacted({ jobName, executionId: f.executionId }, counting, now)))
        return [];
      if (counting) remember(ctx, `${jobName}/${f.executionId}`);
      return [f];
    }),
  );
  return marked.flat();
}

/** Step 1: false when another settle of the job (or a newer group, or its deletion) came first. */
async function settleJob(
  ctx: Context,
  job: JobRecord,
  finishes: readonly SettledFinish[],
  status: { readonly status: string; readonly group: string } | null,
): Promise<boolean> {
  const inBatch = new Set(finishes.map((f) => f.executionId));
  const before = new Set(job.settling);
  const open = await notCountMarked(
    ctx,
    job.name,
    job.settling.filter((id) => !inBatch.has(id)),
  );
  const counting = finishes.filter((f) => counts(f) && !before.has(f.executionId));
  const settling = [...open, ...finishes.filter(counts).map((f) => f.executionId)];
  const same = settling.length === before.size && settling.every((id) => before.has(id));
  if (counting.length === 0 && status === null && same) return true;
  return ctx.jobs.settleCounts(job, counting, status, settling);
}

/** Of these executions in a job's `settling`, those still without `countedAt` (gone ones are left out). */
async function notCountMarked(ctx: Context, jobName: string, ids: readonly string[]): Promise<string[]> {
  const known = markedThrough.get(ctx);
  const unknown = ids.filter((id) => !known?.has(`${jobName}/${id}`));
  if (unknown.length === 0) return [];
  const marks = await ctx.executions.reactionMarksMany(
    unknown.map((executionId) => ({ jobName, executionId })),
  );
  return unknown.filter((id) => {
    const m = marks.get(`${jobName}/${id}`);
    return m !== undefined && m.countedAt === null;
  });
}

function remember(ctx: Context, key: string): void {
  const known = markedThrough.get(ctx) ?? new Set<string>();
  markedThrough.set(ctx, known);
  known.add(key);
  if (known.size > MARKED_REMEMBERED) known.delete(known.values().next().value!);
}
