/**
 * Backfill: launch every fire time of a job's schedule in [from, to) now, e.g. after an outage longer
 * than the catch-up window or for a job created late.
 *
 * Executions get the same ids as scheduled ones (`groupIdFor(fireTime)` + slot + attempt 1), put only if
 * absent, so a backfill over fire times already launched (by the scheduler, catch-up or an earlier
 * backfill) creates nothing new: at most one launch per fire time. New ones carry trigger `backfill` and
 * are sent without delay (their fire time is past, so the agent does not hold them).
 *
 * Rules (each refusal is a 400 naming the field):
 *  - `from` and `to` are RFC 3339 times (or Dkron's `2006-01-02T15:04`), `from < to`;
 *  - `to` is not after now: future fire times belong to the scheduler;
 *  - `from` is within the execution retention period (older executions would expire at once, and with
 *    them the record that makes a repeated backfill idempotent);
 *  - at most MAX_BACKFILL_FIRES fire times per request (the error names `to`: shorten the range);
 *  - only fire times inside the job's [starts_at, expires_at] are fire times of the job;
 *  - the job must have a schedule (`@manually` and dependent-only jobs have no fire times).
 * Like a manual run, backfill ignores `disabled` (it is an explicit request). While the scheduler is
 * paused it is refused (503), like job writes: agents would only skip the launches.
 */
import type { Context } from '../context.ts';
import { NotFoundError, PausedError, ValidationError } from '../errors.ts';
import { jobSchedule } from '../jobs/job.ts';
import { parseTime } from '../time.ts';
import { launchFireTimes } from './plan.ts';

export const MAX_BACKFILL_FIRES = 1000;

export interface BackfillInput {
  readonly from?: unknown;
  readonly to?: unknown;
}

export interface BackfillResult {
  readonly job: string;
  /** Executions created (and sent) by this request. */
  readonly launched: number;
  /** Executions of fire times in the range that existed already: not launched again. */
  readonly existing: number;
  /** Executions created but failed at once because no live agent matches the job's tags. */
  readonly failed: number;
  /** Ids of the executions launched by this request. */
  readonly executions: string[];
}

function timeField(input: BackfillInput, field: 'from' | 'to'): number {
  const raw = input[field];
  if (raw === undefined || raw === null || raw === '') throw new ValidationError(field, 'is required');
  const t = typeof raw === 'string' ? parseTime(raw) : null;
  if (t === null) {
    throw new ValidationError(
      field,
      'must be an RFC 3339 time (e.g. 2026-01-02T15:04:05Z) or 2006-01-02T15:04',
    );
  }
  return t;
}

export async function backfillJob(ctx: Context, name: string, input: BackfillInput): Promise<BackfillResult> {
  const from = timeField(input, 'from');
  const to = timeField(input, 'to');
  if (from >= to) throw new ValidationError('to', 'must be after from');
  const now = ctx.clock();
  if (to > now) {
    throw new ValidationError('to', `must not be in the future (now is ${new Date(now).toISOString()})`);
  }
  const oldest = now - ctx.config.retentionDays * 86_400_000;
  if (from < oldest) {
    throw new ValidationError(
      'from',
      `must be within the execution retention period (${ctx.config.retentionDays} days, not before ${new Date(oldest).toISOString()})`,
    );
  }

  const job = await ctx.jobs.get(name);
  if (!job) throw new NotFoundError(`job ${name} not found`);
  const schedule = jobSchedule(job.def);
  if (schedule.kind === 'manually') {
    throw new ValidationError(
      'schedule',
      `job ${name} has no schedule (@manually or dependent only): nothing to backfill`,
    );
  }
  if (await ctx.control.isPaused()) throw new PausedError('the scheduler is paused; unpause to backfill');

  // Only fire times within [starts_at, expires_at] are the job's.
  const startsAt = job.def.starts_at ? (parseTime(job.def.starts_at) ?? from) : from;
  const expiresAt = job.def.expires_at ? parseTime(job.def.expires_at) : null;
  const start = Math.max(from, startsAt);
  const end = expiresAt === null ? to : Math.min(to, expiresAt + 1);
  const times = schedule.between(start, end, MAX_BACKFILL_FIRES + 1);
  if (times.length > MAX_BACKFILL_FIRES) {
    throw new ValidationError(
      'to',
      `the range holds more than ${MAX_BACKFILL_FIRES} fire times; at most ${MAX_BACKFILL_FIRES} per request: split it (a \`to\` of ${new Date(times[MAX_BACKFILL_FIRES] ?? end).toISOString()} keeps ${MAX_BACKFILL_FIRES})`,
    );
  }
  const launch = await launchFireTimes(ctx, job, times, now, () => 'backfill');
  return {
    job: name,
    launched: launch.created.length,
    existing: launch.existing,
    failed: launch.failedSlots,
    executions: launch.created,
  };
}
