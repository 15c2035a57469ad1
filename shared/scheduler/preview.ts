/** `GET /v1/schedule/preview`: the next N fire times of a schedule, with the same engine as the tick. */
import { ValidationError } from '../errors.ts';
import { isValidTimezone } from '../jobs/job.ts';
import { parseSchedule } from '../schedule/schedule.ts';
import { parseTime } from '../time.ts';

export const MAX_PREVIEW = 1000;

export function previewSchedule(
  q: { schedule?: string; timezone?: string; from?: string; count?: string; jobName?: string },
  now = Date.now(),
): { times: string[] } {
  if (!q.schedule) throw new ValidationError('schedule', 'is required');
  const timezone = q.timezone || 'UTC';
  if (!isValidTimezone(timezone))
    throw new ValidationError('timezone', `"${timezone}" is not an IANA time zone`);
  let from = now;
  if (q.from) {
    const t = parseTime(q.from);
    if (t === null) throw new ValidationError('from', 'must be an RFC 3339 time');
    from = t;
  }
  const count = q.count === undefined || q.count === '' ? 10 : Number(q.count);
  if (!Number.isInteger(count) || count < 1 || count > MAX_PREVIEW) {
    throw new ValidationError('count', `must be an integer from 1 to ${MAX_PREVIEW}`);
  }
  const schedule = parseSchedule(q.schedule, { timezone, jobName: q.jobName ?? 'preview' });
  const times: string[] = [];
  let t = schedule.next(from - 1);
  while (t !== null && times.length < count) {
    times.push(new Date(t).toISOString());
    t = schedule.next(t);
  }
  return { times };
}
