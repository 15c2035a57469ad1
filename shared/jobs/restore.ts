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
 *   existing jobs of the same name are overwritten. A job whose write fails is reported as failed and the
 *   others go on; its children in the file are not written (Dkron skips them silently; we report them).
 *
 * Where we differ, because Dkron is weak there: a `parent_job` that is not in the file but already
 * stored is fine (Dkron insists on finding it in the file); two jobs of the same name in one file are
 * an error (Dkron writes both, last wins); a `parent_job` cycle is an error.
 */
import type { Context } from '../context.ts';
import { PausedError, ValidationError } from '../errors.ts';
import { type JobDefinition, validateJob } from './job.ts';
import { type ApiJob, upsertJob } from './jobs-service.ts';

/** A job of the file that fails validation: `field` and `rule` as `POST /v1/jobs` reports them. */
export interface RestoreInvalid {
  readonly index: number;
  readonly name: string;
  readonly error: ValidationError;
}

/** One job's write, in write order. */
export type RestoreWrite =
  | {
      readonly index: number;
      readonly name: string;
      readonly outcome: 'written';
      readonly created: boolean;
      readonly job: ApiJob;
    }
  | { readonly index: number; readonly name: string; readonly outcome: 'failed'; readonly error: unknown }
  /** Not attempted: its parent in the file failed (Dkron's recursiveSetJob does not descend). */
  | { readonly index: number; readonly name: string; readonly outcome: 'skipped'; readonly parent: string };

export type RestoreOutcome =
  | { readonly rejected: true; readonly invalid: RestoreInvalid[] }
  | { readonly rejected: false; readonly writes: RestoreWrite[] };

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
async function check(
  ctx: Context,
  jobs: readonly unknown[],
): Promise<{ items: Item[]; invalid: RestoreInvalid[] }> {
  const invalid: RestoreInvalid[] = [];
  const items: Item[] = [];
  const firstIndex = new Map<string, number>();
  jobs.forEach((raw, index) => {
    try {
      const def = validateJob(raw);
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
  const inFile = new Map(items.map((i) => [i.def.name, i]));
  // A job named in the file but invalid is still "in the file": its children are not reported as well.
  const namedInFile = new Set(jobs.map(nameOf));
  const stored = new Map<string, boolean>();
  for (const item of items) {
    const parent = item.def.parent_job;
    if (!parent || namedInFile.has(parent)) continue;
    if (!stored.has(parent)) stored.set(parent, (await ctx.jobs.get(parent)) !== null);
    if (!stored.get(parent)) {
      invalid.push({
        index: item.index,
        name: item.def.name,
        error: new ValidationError(
          'parent_job',
          `must name a job in the file or an existing job (${parent} is neither)`,
        ),
      });
    }
  }
  for (const item of items) {
    const chain = [item.def.name];
    for (let p = inFile.get(item.def.parent_job); p; p = inFile.get(p.def.parent_job)) {
      chain.push(p.def.name);
      if (p === item) {
        invalid.push({
          index: item.index,
          name: item.def.name,
          error: new ValidationError('parent_job', `must not form a cycle (${chain.join(' → ')})`),
        });
        break;
      }
      if (chain.length > items.length) break; // a cycle above this job: reported on its own members
    }
  }
  invalid.sort((a, b) => a.index - b.index);
  return { items, invalid };
}

/** Parents first; otherwise the file's order. Only called on a file without cycles. */
function writeOrder(items: readonly Item[]): Item[] {
  const byName = new Map(items.map((i) => [i.def.name, i]));
  const order: Item[] = [];
  const placed = new Set<Item>();
  const place = (item: Item): void => {
    if (placed.has(item)) return;
    const parent = byName.get(item.def.parent_job);
    if (parent) place(parent);
    placed.add(item);
    order.push(item);
  };
  for (const item of items) place(item);
  return order;
}

/**
 * Validates the whole file, then (if it is all valid and the scheduler is not paused) writes the jobs,
 * parents first. Throws PausedError while paused, as every job write does.
 */
export async function restoreJobs(ctx: Context, jobs: readonly unknown[]): Promise<RestoreOutcome> {
  const { items, invalid } = await check(ctx, jobs);
  if (invalid.length > 0) return { rejected: true, invalid };
  if (await ctx.control.isPaused()) throw new PausedError('the scheduler is paused; unpause to change jobs');
  const writes: RestoreWrite[] = [];
  const notWritten = new Set<string>();
  for (const { index, raw, def } of writeOrder(items)) {
    const name = def.name;
    if (def.parent_job && notWritten.has(def.parent_job)) {
      notWritten.add(name);
      writes.push({ index, name, outcome: 'skipped', parent: def.parent_job });
      continue;
    }
    try {
      const { job, created } = await upsertJob(ctx, raw);
      writes.push({ index, name, outcome: 'written', created, job });
    } catch (error) {
      notWritten.add(name);
      writes.push({ index, name, outcome: 'failed', error });
    }
  }
  return { rejected: false, writes };
}
