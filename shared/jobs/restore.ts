/**
 * Dkron's restore (`POST /v1/restore`): a backup file, a JSON array of jobs, written back through the
 * very validation and write path of `POST /v1/jobs` (upsertJob), parents before their children.
 *
 * Dkron's behaviour (dkron/api.go `restoreHandler`, dkron/job.go `generateJobTree`, dkron/agent.go
 * `recursiveSetJob`), which this keeps:
 * - Every job is validated before anything is written; one invalid job, or a child whose `parent_job`
 *   cannot be found, rejects the whole file with 400 and nothing is stored. (Dkron stops at the first and
 *   says nothing about it; we report every invalid job with its field and rule.)
 * - The jobs are then written parents first, whatever their order in the file (Dkron builds a tree), and
 *   existing jobs of the same name are overwritten.
 *
 * All or nothing, which Dkron is not: the checks cover everything a single write would refuse (parents,
 * cycles, the depth of a parent chain, the children of one parent, the size limits), so a valid file is
 * written whole; should a write still fail (a concurrent change, the store), what was written is put back
 * and the answer says so. At most LIMITS.restoreJobs jobs a file; one read of the stored jobs, no per-job
 * scan, writes 16 at a time per level of the tree, so 1,000 jobs fit in API Gateway's 29 s.
 *
 * Where we differ, because Dkron is weak there: a `parent_job` that is not in the file but already
 * stored is fine (Dkron insists on finding it in the file); two jobs of the same name in one file are
 * an error (Dkron writes both, last wins); a `parent_job` cycle is an error.
 */
import type { Context } from '../context.ts';
import { PausedError, ValidationError } from '../errors.ts';
import type { JobRecord } from '../ports.ts';
import { currentCaller } from './caller.ts';
import type { JobDefinition } from './definition.ts';
import { checkExecutorTrust } from './executor-config.ts';
import { firstFireAtOrAfter, validateJob } from './job.ts';
import { type ApiJob, refreshDependents, upsertJob } from './jobs-service.ts';
import { LIMITS } from './limits.ts';

/** A job of the file that fails validation: `field` and `rule` as `POST /v1/jobs` reports them. */
export interface RestoreInvalid {
  readonly index: number;
  readonly name: string;
  readonly error: ValidationError;
}

/** One job's write, in write order (parents first). */
export interface RestoreWrite {
  readonly index: number;
  readonly name: string;
  readonly outcome: 'written';
  readonly created: boolean;
  readonly job: ApiJob;
}

export type RestoreOutcome =
  | { readonly rejected: true; readonly invalid: RestoreInvalid[] }
  | { readonly rejected: false; readonly writes: RestoreWrite[]; readonly failed?: undefined }
  /** A write failed: what was written has been put back (`undone`), nothing of the file stays. */
  | {
      readonly rejected: false;
      readonly failed: { readonly index: number; readonly name: string; readonly error: unknown };
      readonly undone: { readonly restored: number; readonly notRestored: string[] };
    };

interface Item {
  readonly index: number;
  readonly raw: unknown;
  readonly def: JobDefinition;
}

function nameOf(raw: unknown): string {
  const name = (raw as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : '';
}

/** Dkron's generateJobTree, as checks: each job valid, names unique, every parent found, no cycles. */
function check(
  jobs: readonly unknown[],
  stored: ReadonlyMap<string, JobRecord>,
  config: Context['config'],
): { items: Item[]; invalid: RestoreInvalid[] } {
  const invalid: RestoreInvalid[] = [];
  const items: Item[] = [];
  const firstIndex = new Map<string, number>();
  jobs.forEach((raw, index) => {
    try {
      // Dkron restores a job whose executor config its executor would refuse (it fails at each run); we
      // do the same, but never one the stack's trust settings refuse (secrets path, worker targets).
      const def = validateJob(raw, { deferExecutorConfig: true });
      checkExecutorTrust(def, config);
      const seen = firstIndex.get(def.name);
      if (seen !== undefined)
        throw new ValidationError('name', `must be unique in the file (also job ${seen})`);
      firstIndex.set(def.name, index);
      items.push({ index, raw, def });
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      invalid.push({ index, name: nameOf(raw), error });
    }
  });
  const refuse = (item: Item, rule: string) =>
    invalid.push({ index: item.index, name: item.def.name, error: new ValidationError('parent_job', rule) });
  const inFile = new Map(items.map((i) => [i.def.name, i]));
  // A job named in the file but invalid is still "in the file": its children are not reported as well.
  const namedInFile = new Set(jobs.map(nameOf));
  // The parent of a job after the restore: the file's definition wins over the stored one.
  const parentOf = (name: string): string =>
    inFile.get(name)?.def.parent_job ?? stored.get(name)?.def.parent_job ?? '';
  const children = new Map<string, Set<string>>();
  for (const job of stored.values()) {
    if (job.def.parent_job && !inFile.has(job.name)) {
      children.set(job.def.parent_job, (children.get(job.def.parent_job) ?? new Set()).add(job.name));
    }
  }
  for (const item of items) {
    const parent = item.def.parent_job;
    if (!parent) continue;
    children.set(parent, (children.get(parent) ?? new Set()).add(item.def.name));
    if (!namedInFile.has(parent) && !stored.has(parent)) {
      refuse(item, `must name a job in the file or an existing job (${parent} is neither)`);
      continue;
    }
    // Walk up through the file and the stored jobs: a cycle, or a chain deeper than a single write allows.
    const chain = [item.def.name];
    for (let p = parent; p !== ''; p = parentOf(p)) {
      chain.push(p);
      if (p === item.def.name) {
        refuse(item, `must not form a cycle (${chain.join(' → ')})`);
        break;
      }
      if (chain.length > LIMITS.parentDepth) {
        refuse(item, `chain of parents is deeper than ${LIMITS.parentDepth}`);
        break;
      }
    }
  }
  for (const item of items) {
    const siblings = children.get(item.def.name)?.size ?? 0;
    if (siblings > LIMITS.children) {
      invalid.push({
        index: item.index,
        name: item.def.name,
        error: new ValidationError(
          'name',
          `would have ${siblings} child jobs; a job may have at most ${LIMITS.children}`,
        ),
      });
    }
  }
  invalid.sort((a, b) => a.index - b.index);
  return { items, invalid };
}

/** The file's jobs by depth (parents in an earlier level than their children); otherwise the file's order. */
function levels(items: readonly Item[]): Item[][] {
  const byName = new Map(items.map((i) => [i.def.name, i]));
  const depth = new Map<Item, number>();
  const depthOf = (item: Item): number => {
    const known = depth.get(item);
    if (known !== undefined) return known;
    const parent = byName.get(item.def.parent_job);
    // Only called on a file without cycles and with chains of at most LIMITS.parentDepth.
    const d = parent ? depthOf(parent) + 1 : 0;
    depth.set(item, d);
    return d;
  };
  const out: Item[][] = [];
  for (const item of items) {
    const d = depthOf(item);
    const level = out[d] ?? [];
    level.push(item);
    out[d] = level;
  }
  return out.filter((level) => level !== undefined);
}

/** Writes at once, per level of the tree. */
const WRITE_CONCURRENCY = 16;

async function eachLimited<T>(list: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < list.length) await fn(list[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, list.length) }, worker));
}

/**
 * Validates the whole file, then (if it is all valid and the scheduler is not paused) writes the jobs,
 * parents first. All or nothing: should a write fail (a concurrent change, the store), the jobs already
 * written are put back as they were (created ones deleted) and the outcome is `failed`. Throws
 * PausedError while paused, as every job write does.
 */
export async function restoreJobs(ctx: Context, jobs: readonly unknown[]): Promise<RestoreOutcome> {
  if (jobs.length > LIMITS.restoreJobs) {
    return {
      rejected: true,
      invalid: [
        {
          index: LIMITS.restoreJobs,
          name: nameOf(jobs[LIMITS.restoreJobs]),
          error: new ValidationError(
            'name',
            `a restore takes at most ${LIMITS.restoreJobs} jobs (this file has ${jobs.length}); split the file`,
          ),
        },
      ],
    };
  }
  // One read of the stored jobs serves every check and every write's "previous" (no per-job reads).
  const stored = new Map((await ctx.jobs.list()).map((j) => [j.name, j]));
  const { items, invalid } = check(jobs, stored, ctx.config);
  if (invalid.length > 0) return { rejected: true, invalid };
  if (await ctx.control.isPaused()) throw new PausedError('the scheduler is paused; unpause to change jobs');
  const writes: RestoreWrite[] = [];
  const done: Array<{ previous: JobRecord | null; written: ApiJob }> = [];
  const state: { failure: { item: Item; error: unknown } | null } = { failure: null };
  for (const level of levels(items)) {
    await eachLimited(level, WRITE_CONCURRENCY, async (item) => {
      if (state.failure) return;
      const previous = stored.get(item.def.name) ?? null;
      try {
        const { job, created } = await upsertJob(ctx, item.raw, {
          batch: { previous, deferExecutorConfig: true },
        });
        done.push({ previous, written: job });
        writes.push({ index: item.index, name: item.def.name, outcome: 'written', created, job });
      } catch (error) {
        state.failure ??= { item, error };
      }
    });
    if (state.failure) break;
  }
  const { failure } = state;
  if (failure) {
    const undone = await undo(ctx, done);
    const { item, error } = failure;
    return { rejected: false, failed: { index: item.index, name: item.def.name, error }, undone };
  }
  await refreshDependents(ctx, [
    ...new Set(items.flatMap((i) => [i.def.parent_job, stored.get(i.def.name)?.def.parent_job ?? ''])),
  ]);
  const order = new Map(
    levels(items)
      .flat()
      .map((item, k) => [item.index, k]),
  );
  writes.sort((a, b) => order.get(a.index)! - order.get(b.index)!);
  return { rejected: false, writes };
}

/** Puts back what a failed restore wrote: created jobs deleted, overwritten ones as they were. */
async function undo(
  ctx: Context,
  done: ReadonlyArray<{ previous: JobRecord | null; written: ApiJob }>,
): Promise<{ restored: number; notRestored: string[] }> {
  const notRestored: string[] = [];
  const now = ctx.clock();
  // Children before parents: the reverse of the write order.
  for (const { previous, written } of [...done].reverse()) {
    try {
      if (previous === null) {
        await ctx.jobs.delete(written.name);
        await ctx.executions.deleteForJob(written.name);
      } else {
        // The history records the put-back as a change of its own.
        await ctx.jobs.putDefinition(
          previous.def,
          firstFireAtOrAfter(previous.def, now),
          written.version,
          now,
          {
            by: currentCaller(),
            action: 'updated',
          },
        );
      }
    } catch {
      notRestored.push(written.name);
    }
  }
  return { restored: done.length - notRestored.length, notRestored };
}
