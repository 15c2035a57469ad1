import { CronExpressionParser } from 'cron-parser';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../shared/errors.ts';
import { parseSchedule, ScheduleError } from '../../../../shared/schedule/schedule.ts';
import { DAY, HOUR, iso, MINUTE, ms } from './helpers.ts';

const WED = ms('2026-05-13T10:20:30Z'); // a Wednesday

function nextIso(expression: string, after: number | string, options = {}): string | null {
  return iso(parseSchedule(expression, options).next(typeof after === 'string' ? ms(after) : after));
}

function take(expression: string, after: string, count: number, options = {}): (string | null)[] {
  const s = parseSchedule(expression, options);
  const out: (string | null)[] = [];
  let t: number | null = ms(after);
  for (let i = 0; i < count && t !== null; i++) {
    t = s.next(t);
    out.push(iso(t));
  }
  return out;
}

describe('forms', () => {
  it.each([
    ['0 0 * * * *', 'cron'],
    ['*/5 * * * *', 'cron'],
    ['@daily', 'cron'],
    ['@every 10s', 'every'],
    ['@at 2026-12-01T10:00:00Z', 'at'],
    ['@manually', 'manually'],
  ])('%s is a %s schedule', (expression, kind) => {
    expect(parseSchedule(expression).kind).toBe(kind);
  });

  it('trims and collapses whitespace into `expression`', () => {
    const s = parseSchedule('  0   0 *\t* * *  ');
    expect(s.expression).toBe('0 0 * * * *');
    expect(iso(s.next(WED))).toBe('2026-05-13T11:00:00.000Z');
  });

  it('reads 5 fields as minute-first with second 0', () => {
    const five = parseSchedule('*/7 3-5 * * 1-5');
    const six = parseSchedule('0 */7 3-5 * * 1-5');
    expect(five.between(WED, WED + 14 * DAY)).toEqual(six.between(WED, WED + 14 * DAY));
    expect(five.between(WED, WED + 14 * DAY).length).toBeGreaterThan(100);
  });

  it.each([
    ['@yearly', '2027-01-01T00:00:00.000Z'],
    ['@annually', '2027-01-01T00:00:00.000Z'],
    ['@monthly', '2026-06-01T00:00:00.000Z'],
    ['@weekly', '2026-05-17T00:00:00.000Z'],
    ['@daily', '2026-05-14T00:00:00.000Z'],
    ['@midnight', '2026-05-14T00:00:00.000Z'],
    ['@hourly', '2026-05-13T11:00:00.000Z'],
    ['@minutely', '2026-05-13T10:21:00.000Z'],
  ])('%s', (expression, expected) => {
    expect(nextIso(expression, WED)).toBe(expected);
  });

  it('@minutely fires every minute at second 0', () => {
    const times = parseSchedule('@minutely').between(WED, WED + 5 * MINUTE);
    expect(times.map(iso)).toEqual([
      '2026-05-13T10:21:00.000Z',
      '2026-05-13T10:22:00.000Z',
      '2026-05-13T10:23:00.000Z',
      '2026-05-13T10:24:00.000Z',
      '2026-05-13T10:25:00.000Z',
    ]);
  });

  it('descriptors follow the time zone', () => {
    expect(nextIso('@daily', WED, { timezone: 'Asia/Tokyo' })).toBe('2026-05-13T15:00:00.000Z');
    expect(nextIso('@hourly', WED, { timezone: 'Asia/Kolkata' })).toBe('2026-05-13T10:30:00.000Z');
    expect(nextIso('@weekly', WED, { timezone: 'America/New_York' })).toBe('2026-05-17T04:00:00.000Z');
  });

  it('is case-insensitive for descriptors and names', () => {
    expect(nextIso('@DAILY', WED)).toBe('2026-05-14T00:00:00.000Z');
    expect(nextIso('@Every 1h', WED)).toBe('2026-05-13T11:00:00.000Z');
    const named = parseSchedule('0 0 12 * jan,Mar mon-FRI');
    const numeric = parseSchedule('0 0 12 * 1,3 1-5');
    const from = ms('2026-01-01T00:00:00Z');
    expect(named.between(from, from + 100 * DAY)).toEqual(numeric.between(from, from + 100 * DAY));
    // THU contains an H, which must not be read as a hash.
    for (const thursday of ['0 0 12 * * THU', '0 0 12 * * thu', '0 0 12 * * Thu', '0 0 12 * * 4']) {
      expect(nextIso(thursday, WED)).toBe('2026-05-14T12:00:00.000Z');
    }
    expect(nextIso('0 0 12 * * THU#3', WED)).toBe('2026-05-21T12:00:00.000Z');
    expect(nextIso('0 0 12 * * tue-THU', WED)).toBe('2026-05-13T12:00:00.000Z');
    expect(parseSchedule('0 0 0 l * *').between(from, from + 365 * DAY)).toEqual(
      parseSchedule('0 0 0 L * *').between(from, from + 365 * DAY),
    );
  });

  it('treats an empty or missing time zone as UTC', () => {
    expect(nextIso('@daily', WED, { timezone: '' })).toBe('2026-05-14T00:00:00.000Z');
    expect(nextIso('@daily', WED, { timezone: 'utc' })).toBe('2026-05-14T00:00:00.000Z');
    expect(nextIso('@daily', WED, { timezone: 'Etc/UTC' })).toBe('2026-05-14T00:00:00.000Z');
  });
});

describe('cron features', () => {
  it('L: last day of the month', () => {
    expect(take('0 0 0 L * *', '2028-01-15T00:00:00Z', 3)).toEqual([
      '2028-01-31T00:00:00.000Z',
      '2028-02-29T00:00:00.000Z',
      '2028-03-31T00:00:00.000Z',
    ]);
  });

  it('nL: last given weekday of the month', () => {
    expect(take('0 0 0 * * 5L', '2026-05-01T00:00:00Z', 2)).toEqual([
      '2026-05-29T00:00:00.000Z',
      '2026-06-26T00:00:00.000Z',
    ]);
  });

  it('n#k: k-th given weekday of the month', () => {
    expect(take('0 0 9 * * 1#2', '2026-06-01T10:00:00Z', 2)).toEqual([
      '2026-06-08T09:00:00.000Z',
      '2026-07-13T09:00:00.000Z',
    ]);
    expect(take('0 0 9 * * MON#1', '2026-06-01T10:00:00Z', 1)).toEqual(['2026-07-06T09:00:00.000Z']);
  });

  it('nW: nearest weekday within the month', () => {
    // 2026: Feb 15 is a Sunday → Mon 16; Aug 15 a Saturday → Fri 14; Mar 15 a Sunday → Mon 16.
    expect(take('0 0 12 15W * *', '2026-02-01T00:00:00Z', 2)).toEqual([
      '2026-02-16T12:00:00.000Z',
      '2026-03-16T12:00:00.000Z',
    ]);
    expect(nextIso('0 0 12 15W * *', '2026-08-01T00:00:00Z')).toBe('2026-08-14T12:00:00.000Z');
    // Aug 1 2026 is a Saturday: 1W does not go back into July, it moves to Monday the 3rd.
    expect(nextIso('0 0 12 1W * *', '2026-07-31T00:00:00Z')).toBe('2026-08-03T12:00:00.000Z');
    // May 31 2026 is a Sunday and the last day: 31W moves back to Friday the 29th.
    expect(nextIso('0 0 12 31W * *', '2026-05-01T00:00:00Z')).toBe('2026-05-29T12:00:00.000Z');
    // 31W has no fire in 30-day months.
    expect(nextIso('0 0 12 31W * *', '2026-06-01T00:00:00Z')).toBe('2026-07-31T12:00:00.000Z');
  });

  it('LW: last weekday of the month', () => {
    expect(take('0 0 12 LW * *', '2026-01-01T00:00:00Z', 5)).toEqual([
      '2026-01-30T12:00:00.000Z',
      '2026-02-27T12:00:00.000Z',
      '2026-03-31T12:00:00.000Z',
      '2026-04-30T12:00:00.000Z',
      '2026-05-29T12:00:00.000Z',
    ]);
  });

  it('W items combine with other day-of-month items', () => {
    expect(take('0 0 12 1,15W * *', '2026-02-01T12:00:00Z', 3)).toEqual([
      '2026-02-16T12:00:00.000Z',
      '2026-03-01T12:00:00.000Z',
      '2026-03-16T12:00:00.000Z',
    ]);
  });

  it('restricted day-of-month and day-of-week combine with OR (Vixie, Dkron, cron-parser)', () => {
    // The 13th, and every Friday.
    const days = parseSchedule('0 0 0 13 * 5')
      .between(ms('2026-03-01T00:00:00Z'), ms('2026-04-01T00:00:00Z'))
      .map((t) => new Date(t).getUTCDate());
    expect(days).toEqual([6, 13, 20, 27]);
    const days2 = parseSchedule('0 0 0 14 * 5')
      .between(ms('2026-03-01T00:00:00Z'), ms('2026-04-01T00:00:00Z'))
      .map((t) => new Date(t).getUTCDate());
    expect(days2).toEqual([6, 13, 14, 20, 27]);
    // `?` does not restrict.
    expect(
      parseSchedule('0 0 0 14 * ?').between(ms('2026-03-01T00:00:00Z'), ms('2026-04-01T00:00:00Z')).map(iso),
    ).toEqual(['2026-03-14T00:00:00.000Z']);
  });

  it('ranges, steps and lists', () => {
    expect(
      parseSchedule('10-20/5,45 0 * * * *')
        .between(ms('2026-01-01T00:00:00Z'), ms('2026-01-01T00:02:00Z'))
        .map(iso),
    ).toEqual([
      '2026-01-01T00:00:10.000Z',
      '2026-01-01T00:00:15.000Z',
      '2026-01-01T00:00:20.000Z',
      '2026-01-01T00:00:45.000Z',
    ]);
  });

  it('a rare expression still finds its next fire time (Feb 29)', () => {
    expect(nextIso('0 0 0 29 2 *', '2026-03-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
    expect(nextIso('0 0 0 29 2 *', '2096-03-01T00:00:00Z')).toBe('2104-02-29T00:00:00.000Z');
  });
});

describe('@every', () => {
  it('is aligned to the UTC epoch by default', () => {
    expect(nextIso('@every 1h', WED)).toBe('2026-05-13T11:00:00.000Z');
    expect(nextIso('@every 1h30m', 0)).toBe('1970-01-01T01:30:00.000Z');
    expect(parseSchedule('@every 1.5s').next(0)).toBe(1_500);
    expect(parseSchedule('@every 1s').next(-1)).toBe(0);
  });

  it('is anchored at anchorMs', () => {
    const anchorMs = ms('2026-01-01T00:05:00Z');
    expect(nextIso('@every 1h', WED, { anchorMs })).toBe('2026-05-13T11:05:00.000Z');
    expect(nextIso('@every 1h', anchorMs - 1, { anchorMs })).toBe('2026-01-01T00:05:00.000Z');
    expect(nextIso('@every 1h', anchorMs, { anchorMs })).toBe('2026-01-01T01:05:00.000Z');
    // Before the anchor the same grid continues backwards.
    expect(nextIso('@every 1h', anchorMs - 2 * HOUR, { anchorMs })).toBe('2025-12-31T23:05:00.000Z');
  });

  it('lists a 60 s window of @every 1s quickly', () => {
    const s = parseSchedule('@every 1s');
    const from = ms('2026-05-13T10:00:00Z');
    const started = performance.now();
    const times = s.between(from, from + 60_000);
    expect(performance.now() - started).toBeLessThan(50);
    expect(times).toHaveLength(60);
    expect(times[0]).toBe(from);
    expect(times[59]).toBe(from + 59_000);
    expect(s.between(from, from + 60_000, 10)).toEqual(times.slice(0, 10));
  });
});

describe('@at', () => {
  it.each([
    ['@at 2026-12-01T10:00:00Z', '2026-12-01T10:00:00.000Z'],
    ['@at 2026-12-01t10:00:00z', '2026-12-01T10:00:00.000Z'],
    ['@at 2026-12-01 10:00:00Z', '2026-12-01T10:00:00.000Z'],
    ['@at 2026-12-01T10:00:00+02:00', '2026-12-01T08:00:00.000Z'],
    ['@at 2026-12-01T10:00:00-05:30', '2026-12-01T15:30:00.000Z'],
    ['@at 2026-12-01T10:00:00.123456Z', '2026-12-01T10:00:00.123Z'],
    ['@at 2026-12-01T10:00', '2026-12-01T10:00:00.000Z'],
    ['@at 2028-02-29T00:00:00Z', '2028-02-29T00:00:00.000Z'],
  ])('%s', (expression, expected) => {
    expect(nextIso(expression, 0)).toBe(expected);
  });

  it('reads a time without offset as wall time in the time zone', () => {
    expect(nextIso('@at 2026-12-01T10:00', 0, { timezone: 'Asia/Tokyo' })).toBe('2026-12-01T01:00:00.000Z');
    expect(nextIso('@at 2026-07-01T10:00:00', 0, { timezone: 'Europe/London' })).toBe(
      '2026-07-01T09:00:00.000Z',
    );
    // With an offset the time zone does not matter.
    expect(nextIso('@at 2026-12-01T10:00:00Z', 0, { timezone: 'Asia/Tokyo' })).toBe(
      '2026-12-01T10:00:00.000Z',
    );
  });

  it('fires once', () => {
    const s = parseSchedule('@at 2026-12-01T10:00:00Z');
    const at = ms('2026-12-01T10:00:00Z');
    expect(s.next(at - 1)).toBe(at);
    expect(s.next(at)).toBeNull();
    expect(s.next(at + DAY)).toBeNull();
    expect(s.between(at, at + 1)).toEqual([at]);
    expect(s.between(at - DAY, at)).toEqual([]);
    expect(s.between(at + 1, at + DAY)).toEqual([]);
  });
});

describe('@manually', () => {
  it('never fires', () => {
    const s = parseSchedule('@manually');
    expect(s.next(0)).toBeNull();
    expect(s.next(WED)).toBeNull();
    expect(s.between(0, WED)).toEqual([]);
  });
});

describe('between', () => {
  it('is half-open, ascending and limited', () => {
    const s = parseSchedule('0 * * * * *');
    const from = ms('2026-05-13T10:00:00Z');
    expect(s.between(from, from + 3 * MINUTE)).toEqual([from, from + MINUTE, from + 2 * MINUTE]);
    expect(s.between(from, from + 3 * MINUTE, 2)).toEqual([from, from + MINUTE]);
    expect(s.between(from, from + 3 * MINUTE, 0)).toEqual([]);
    expect(s.between(from, from + 3 * MINUTE, 1.5)).toEqual([from]);
    expect(parseSchedule('@every 1m').between(from, from + 3 * MINUTE, 1.5)).toEqual([from]);
    expect(s.between(from, from)).toEqual([]);
    expect(s.between(from + MINUTE, from)).toEqual([]);
    expect(s.between(from + 0.5, from + MINUTE + 0.5)).toEqual([from + MINUTE]);
  });

  it('defaults to at most 10,000 fire times', () => {
    expect(parseSchedule('* * * * * *').between(0, 30 * DAY)).toHaveLength(10_000);
  });

  it('answers 1,000 next() calls on a time-zoned cron quickly', () => {
    const s = parseSchedule('0 */5 9-17 * * MON-FRI', { timezone: 'Europe/London' });
    let t: number | null = ms('2026-01-01T00:00:00Z');
    const started = performance.now();
    for (let i = 0; i < 1_000 && t !== null; i++) t = s.next(t);
    expect(performance.now() - started).toBeLessThan(500);
    expect(iso(t)).toBe('2026-01-14T11:15:00.000Z');
  });
});

describe('~ and H (hashed by job name)', () => {
  const minuteOf = (expression: string, jobName?: string): number[] => {
    const s = parseSchedule(expression, { jobName });
    const from = ms('2026-05-13T10:00:00Z');
    return [...new Set(s.between(from, from + HOUR).map((t) => new Date(t).getUTCMinutes()))];
  };

  it('is stable for a job name, and ~ is the same as H', () => {
    const tilde = minuteOf('0 ~ * * * *', 'billing-report');
    expect(tilde).toHaveLength(1);
    expect(minuteOf('0 H * * * *', 'billing-report')).toEqual(tilde);
    expect(minuteOf('0 h * * * *', 'billing-report')).toEqual(tilde);
    expect(minuteOf('~ * * * *', 'billing-report')).toEqual(tilde);
    // The value is cron-parser's H with the job name as hashSeed.
    const direct = CronExpressionParser.parse('0 H * * * *', { hashSeed: 'billing-report' }).fields.minute
      .values;
    expect(tilde).toEqual(direct);
  });

  it('spreads different job names over the field', () => {
    const minutes = new Set(Array.from({ length: 60 }, (_, i) => minuteOf('0 ~ * * * *', `job-${i}`)[0]));
    expect(minutes.size).toBeGreaterThan(25);
  });

  it('stays within each field, and day-of-month stays within 1-28 so it fires every month', () => {
    const year = ms('2026-01-01T00:00:00Z');
    for (let i = 0; i < 40; i++) {
      const jobName = `job-${i}`;
      const time = parseSchedule('~ ~ ~ * * *', { jobName }).next(year);
      expect(time).not.toBeNull();
      const monthly = parseSchedule('0 0 0 ~ * *', { jobName }).between(year, year + 365 * DAY);
      expect(monthly).toHaveLength(12);
      const day = new Date(monthly[0] ?? 0).getUTCDate();
      expect(day).toBeGreaterThanOrEqual(1);
      expect(day).toBeLessThanOrEqual(28);
      expect(monthly.every((t) => new Date(t).getUTCDate() === day)).toBe(true);
      const weekly = parseSchedule('0 0 0 * * ~', { jobName }).between(year, year + 28 * DAY);
      expect(weekly).toHaveLength(4);
      expect(new Set(weekly.map((t) => new Date(t).getUTCDay())).size).toBe(1);
    }
  });

  it('~/15 spreads a step (Dkron docs example)', () => {
    const minutes = minuteOf('0 ~/15 * * * *', 'sync');
    expect(minutes).toHaveLength(4);
    const first = minutes[0] ?? -1;
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThan(15);
    expect(minutes).toEqual([first, first + 15, first + 30, first + 45]);
  });

  it('is deterministic without a job name too (fixed seed, never random)', () => {
    expect(minuteOf('0 ~ * * * *')).toEqual(minuteOf('0 H * * * *'));
    expect(minuteOf('0 ~ * * * *')).toEqual(minuteOf('0 h * * * *'));
  });
});

describe('errors', () => {
  it.each([
    ['', /is empty/],
    ['   ', /is empty/],
    ['* * * *', /5 fields .* or 6 fields .*got 4/],
    ['* * * * * * *', /got 7/],
    ['60 0 * * * *', /6-field cron: second must be 0-59, got '60'/],
    ['0 60 * * * *', /6-field cron: minute must be 0-59, got '60'/],
    ['60 * * * *', /5-field cron: minute must be 0-59, got '60'/],
    ['0 0 24 * * *', /6-field cron: hour must be 0-23, got '24'/],
    ['0 0 0 32 * *', /6-field cron: day-of-month must be 1-31/],
    ['0 0 0 0 * *', /day-of-month must be 1-31/],
    ['0 0 0 L-2 * *', /day-of-month must be/],
    ['0 0 0 * 13 *', /6-field cron: month must be 1-12 or JAN-DEC, got '13'/],
    ['0 0 0 * FOO *', /month must be 1-12 or JAN-DEC, got 'FOO'/],
    ['0 0 0 * * 8', /day-of-week must be 0-7 or SUN-SAT/],
    ['0 0 0 * * FUNDAY', /day-of-week must be/],
    ['0 0 0 * * 1#6', /day-of-week must be/],
    ['0 0 0 * * L', /day-of-week must be/],
    ['0 */0 * * * *', /minute must be 0-59, got '\*\/0' \(a step must be at least 1\)/],
    ['1-5,3 * * * * *', /second must be 0-59, got '1-5,3' \(a value is listed twice\)/],
    ['0 0 5-2 * * *', /hour must be 0-23, got '5-2' \(a range must go from low to high\)/],
    ['0 0 0 * * 1#2,3', /day-of-week .*n#k takes one weekday/],
    ['0 0 0 1-5W * *', /W follows a single day/],
    ['0 0 0 32W * *', /day-of-month/],
    ['0 0 W * * *', /hour must be 0-23/],
    ['0 0 0 30 2 *', /never fire/],
    ['0 0 0 31 4,6,9,11 *', /never fire/],
    ['0 0 0 31W 2 *', /never fire/],
    ['@foo', /unknown descriptor @foo/],
    ['@secondly', /unknown descriptor @secondly/],
    ['@every', /@every needs a duration/],
    ['@every 500ms', /@every needs a duration of at least 1s/],
    ['@every 0s', /at least 1s/],
    ['@every -5s', /at least 1s/],
    ['@every 1d', /@every needs a Go duration .*unknown unit 'd'/],
    ['@every soon', /@every needs a Go duration/],
    ['@at', /@at needs an RFC 3339 date-time/],
    ['@at tomorrow', /@at needs an RFC 3339 date-time.*got 'tomorrow'/],
    ['@at 2026-12-01', /RFC 3339/],
    ['@at 2026-13-01T00:00:00Z', /month must be 01-12/],
    ['@at 2026-02-29T00:00:00Z', /day must be 01-28/],
    ['@at 2026-12-01T24:00:00Z', /hour must be 00-23/],
    ['@at 2026-12-01T10:00:60Z', /second must be 00-59/],
    ['@at 2026-12-01T10:00:00+25:00', /offset/],
    ['@daily now', /@daily takes no argument/],
    ['@manually please', /@manually takes no argument/],
  ])('%j', (expression, rule) => {
    let error: unknown;
    try {
      parseSchedule(expression);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ScheduleError);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ScheduleError).field).toBe('schedule');
    expect((error as ScheduleError).rule).toMatch(rule);
    expect((error as ScheduleError).message).toBe(`schedule: ${(error as ScheduleError).rule}`);
  });

  it.each(['Mars/Olympus', 'Europe/Londn', '+02:00', 'GMT+2', 'not a zone'])(
    'timezone %j is a ValidationError on field timezone',
    (timezone) => {
      let error: unknown;
      try {
        parseSchedule('@daily', { timezone });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).not.toBeInstanceOf(ScheduleError);
      expect((error as ValidationError).field).toBe('timezone');
      expect((error as ValidationError).rule).toMatch(/is not an IANA time zone/);
    },
  );

  it('a bad timezone is reported for every form', () => {
    for (const expression of ['0 0 * * * *', '@every 1h', '@at 2026-12-01T10:00:00Z', '@manually']) {
      expect(() => parseSchedule(expression, { timezone: 'Nowhere/Special' })).toThrowError(
        expect.objectContaining({ field: 'timezone' }),
      );
    }
  });

  it('rejects a bad anchor', () => {
    expect(() => parseSchedule('@every 1h', { anchorMs: 1.5 })).toThrowError(
      expect.objectContaining({ field: 'anchorMs' }),
    );
    expect(() => parseSchedule('@every 1h', { anchorMs: Number.NaN })).toThrowError(
      expect.objectContaining({ field: 'anchorMs' }),
    );
  });

  it('rejects NaN instants', () => {
    expect(() => parseSchedule('@daily').next(Number.NaN)).toThrow(RangeError);
    expect(() => parseSchedule('@every 1h').between(Number.NaN, 0)).toThrow(RangeError);
  });
});
