/**
 * Pure planning logic. Planning against storage (`planJob`, `launchFireTimes`, backfill) is tested
 * against the real emulators in test/integration/planning.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parseSchedule } from '../../../../shared/schedule/schedule.ts';
import { newestStart } from '../../../../shared/scheduler/plan.ts';

describe('newestStart', () => {
  const every = parseSchedule('@every 1s');

  it('matches a plain count on short backlogs', () => {
    expect(newestStart(every, 0, 10_000, 3)).toEqual({ start: 7_000, dropped: 7 });
    expect(newestStart(every, 0, 10_000, 20)).toEqual({ start: 0, dropped: 0 });
    expect(newestStart(every, 0, 10_000, 0)).toEqual({ start: 10_000, dropped: 10 });
  });

  it('finds the newest fire times of a backlog longer than the count limit', () => {
    const end = 50_000_000; // 50,000 fire times
    expect(newestStart(every, 0, end, 3)).toEqual({ start: end - 3_000, dropped: 10_000 });
    expect(newestStart(every, 0, end, 0).start).toBe(end);
    const cron = parseSchedule('*/7 * * * * *');
    const { start } = newestStart(cron, 0, 86_400_000, 2);
    expect(cron.between(start!, 86_400_000)).toHaveLength(2);
  });
});
