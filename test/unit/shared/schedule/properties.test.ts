import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatDuration } from '../../../../shared/schedule/duration.ts';
import { parseSchedule, type Schedule, ScheduleError } from '../../../../shared/schedule/schedule.ts';
import { cronParserIncludes, DAY, HOUR, MINUTE, offsetOf, referenceFires, wallOf } from './helpers.ts';

const RUNS = { numRuns: 200 };

const ZONES = [
  'UTC',
  'America/New_York',
  'Europe/London',
  'Australia/Lord_Howe',
  'Asia/Kolkata',
  'America/Santiago',
  'Pacific/Chatham',
] as const;
const zone = fc.constantFrom(...ZONES);

// ---- cron field generators -------------------------------------------------------------------------

const int = (min: number, max: number) => fc.integer({ min, max });
const range = (min: number, max: number) =>
  fc.tuple(int(min, max), int(min, max)).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`);
const step = (min: number, max: number) =>
  fc
    .tuple(
      fc.oneof(fc.constant('*'), range(min, max), int(min, max).map(String)),
      int(1, Math.ceil((max - min) / 2)),
    )
    .map(([base, s]) => `${base}/${s}`);
const list = (min: number, max: number) =>
  fc.uniqueArray(int(min, max), { minLength: 2, maxLength: 4 }).map((v) => v.join(','));
const field = (min: number, max: number) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant('*') },
    { weight: 2, arbitrary: int(min, max).map(String) },
    { weight: 1, arbitrary: range(min, max) },
    { weight: 2, arbitrary: step(min, max) },
    { weight: 1, arbitrary: list(min, max) },
  );

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const second = field(0, 59);
const minute = field(0, 59);
const hour = field(0, 23);
const domPlain = fc.oneof(
  { weight: 4, arbitrary: field(1, 31) },
  { weight: 1, arbitrary: fc.constantFrom('?', 'L', '1,L') },
);
const domW = fc.oneof(
  int(1, 31).map((n) => `${n}W`),
  fc.constant('LW'),
);
const month = fc.oneof(
  { weight: 4, arbitrary: field(1, 12) },
  { weight: 1, arbitrary: fc.constantFrom(...MONTHS).map((m) => m.toLowerCase()) },
  { weight: 1, arbitrary: fc.constantFrom('JAN-JUN', 'mar-oct/2', 'FEB,AUG') },
);
const dow = fc.oneof(
  { weight: 4, arbitrary: fc.constant('*') },
  { weight: 1, arbitrary: fc.constant('?') },
  { weight: 1, arbitrary: int(0, 7).map(String) },
  { weight: 1, arbitrary: range(0, 7) },
  { weight: 1, arbitrary: list(0, 6) },
  { weight: 1, arbitrary: fc.constantFrom(...DAYS, 'MON-FRI', 'sat,sun', 'Wed') },
  { weight: 1, arbitrary: int(0, 7).map((d) => `${d}L`) },
  { weight: 1, arbitrary: fc.tuple(int(0, 7), int(1, 5)).map(([d, k]) => `${d}#${k}`) },
);

/** A 6-field cron and whether day-of-month uses W (then day-of-week is unrestricted). */
const cron6 = fc.oneof(
  fc.tuple(second, minute, hour, domPlain, month, dow).map((f) => ({ expr: f.join(' '), w: false })),
  fc
    .tuple(second, minute, hour, domW, month, fc.constantFrom('*', '?'))
    .map((f) => ({ expr: f.join(' '), w: true })),
);
const cron5 = fc.tuple(minute, hour, domPlain, month, dow).map((f) => f.join(' '));

/** 2026 DST transitions of the zones above (spring forward and fall back). */
const TRANSITIONS = [
  '2026-03-08T07:00:00Z', // New York
  '2026-11-01T06:00:00Z',
  '2026-03-29T01:00:00Z', // London
  '2026-10-25T01:00:00Z',
  '2026-10-03T15:30:00Z', // Lord Howe (30 minutes)
  '2026-04-04T15:00:00Z',
  '2026-09-06T04:00:00Z', // Santiago (at midnight)
  '2026-04-05T03:00:00Z',
  '2026-09-26T14:00:00Z', // Chatham (at 02:45 local)
  '2026-04-04T14:00:00Z',
].map(Date.parse);

/** Instants between 2000 and 2040, or within a day of a DST transition; not necessarily whole seconds. */
const instant = fc.oneof(
  fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) }),
  fc.tuple(fc.constantFrom(...TRANSITIONS), int(-26 * HOUR, 26 * HOUR)).map(([t, d]) => t + d),
);

/** Parses, or skips the case when the generated combination can never fire (e.g. 30 FEB). */
function parseOrSkip(expr: string, timezone: string): Schedule {
  try {
    return parseSchedule(expr, { timezone, jobName: 'prop' });
  } catch (e) {
    if (e instanceof ScheduleError && /never fire|duplicate/.test(`${e.rule} ${String(e.cause)}`)) {
      fc.pre(false);
    }
    throw e;
  }
}

function iterate(s: Schedule, from: number, to: number, limit: number): number[] {
  const out: number[] = [];
  let t = s.next(from - 1);
  while (t !== null && t < to && out.length < limit) {
    out.push(t);
    t = s.next(t);
  }
  return out;
}

// ---- independent day-of-month W oracle --------------------------------------------------------------

function isWeekday(y: number, m: number, d: number): boolean {
  const wd = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
  return wd >= 1 && wd <= 5;
}
/** The weekday of the month closest to day n (Quartz nW); null when n is past the month's end. */
function nearestWeekdayOracle(y: number, m: number, n: number): number | null {
  const dim = new Date(Date.UTC(y, m, 0)).getUTCDate();
  if (n > dim) return null;
  let best: number | null = null;
  for (let d = 1; d <= dim; d++) {
    if (isWeekday(y, m, d) && (best === null || Math.abs(d - n) < Math.abs(best - n))) best = d;
  }
  return best;
}
function lastWeekdayOracle(y: number, m: number): number {
  let d = new Date(Date.UTC(y, m, 0)).getUTCDate();
  while (!isWeekday(y, m, d)) d--;
  return d;
}

/** Whether a wall time matches a 6-field expression, by cron-parser (plus the W oracle above). */
function wallMatches(expr: string, w: boolean, wall: number): boolean {
  if (!w) return cronParserIncludes(expr, wall);
  const fields = expr.split(' ');
  const domField = fields[3] ?? '';
  fields[3] = '*';
  if (!cronParserIncludes(fields.join(' '), wall)) return false;
  const date = new Date(wall);
  const [y, m, d] = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
  return domField === 'LW'
    ? d === lastWeekdayOracle(y, m)
    : d === nearestWeekdayOracle(y, m, Number.parseInt(domField, 10));
}

// ---- properties --------------------------------------------------------------------------------------

describe('cron properties', () => {
  it('next(t) > t, and each fire time is its own successor: next(f - 1) === f', () => {
    fc.assert(
      fc.property(cron6, zone, instant, ({ expr }, tz, t) => {
        const s = parseOrSkip(expr, tz);
        const f = s.next(t);
        expect(f).not.toBeNull();
        if (f === null) return;
        expect(f).toBeGreaterThan(t);
        expect(f % 1000).toBe(0);
        expect(s.next(f - 1)).toBe(f);
      }),
      RUNS,
    );
  });

  it('next is monotonic', () => {
    fc.assert(
      fc.property(cron6, zone, instant, int(0, 3 * DAY), ({ expr }, tz, t1, delta) => {
        const s = parseOrSkip(expr, tz);
        const t2 = t1 + delta;
        const n1 = s.next(t1);
        const n2 = s.next(t2);
        expect(n1).not.toBeNull();
        expect(n2).not.toBeNull();
        expect(n1 ?? 0).toBeLessThanOrEqual(n2 ?? 0);
        // Nothing fires in (t1, n1), so if n1 is past t2 both calls see the same next fire.
        if ((n1 ?? 0) > t2) expect(n2).toBe(n1);
      }),
      RUNS,
    );
  });

  it('between(a, b) equals iterating next from a - 1, and splits at any point', () => {
    fc.assert(
      fc.property(
        cron6,
        zone,
        instant,
        int(1, 3 * DAY),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (c, tz, a, len, cut) => {
          const s = parseOrSkip(c.expr, tz);
          const b = a + len;
          const limit = 100;
          const all = s.between(a, b, limit);
          expect(all).toEqual(iterate(s, a, b, limit));
          for (let i = 1; i < all.length; i++) expect(all[i]).toBeGreaterThan(all[i - 1] ?? 0);
          for (const f of all) {
            expect(f).toBeGreaterThanOrEqual(a);
            expect(f).toBeLessThan(b);
          }
          if (all.length < limit) {
            const m = a + Math.floor(len * cut);
            expect([...s.between(a, m, limit), ...s.between(m, b, limit)]).toEqual(all);
          }
        },
      ),
      RUNS,
    );
  });

  it('every fire time matches the fields in wall time, except fires moved to the end of a DST gap', () => {
    fc.assert(
      fc.property(cron6, zone, instant, (c, tz, a) => {
        const s = parseOrSkip(c.expr, tz);
        for (const f of s.between(a, a + 30 * DAY, 30)) {
          if (wallMatches(c.expr, c.w, wallOf(f, tz))) continue;
          // A gap-shifted fire: f is the instant the clock jumped forward.
          expect(offsetOf(f - 1, tz)).toBeLessThan(offsetOf(f, tz));
        }
      }),
      RUNS,
    );
  });

  it('finds exactly the fire times of a brute-force walk (5-field crons, 6-hour windows)', () => {
    fc.assert(
      fc.property(cron5, zone, instant, (expr, tz, t) => {
        const from = Math.floor(t / MINUTE) * MINUTE;
        // The brute force needs a start outside a repeated (fall-back) interval.
        fc.pre(offsetOf(from - 3 * HOUR, tz) <= offsetOf(from, tz));
        const s = parseOrSkip(expr, tz);
        const to = from + 6 * HOUR;
        const expected = referenceFires((w) => cronParserIncludes(`0 ${expr}`, w), tz, from, to);
        expect(s.between(from, to)).toEqual(expected);
      }),
      { numRuns: 100 },
    );
  });

  it('a 5-field cron is the 6-field cron with second 0', () => {
    fc.assert(
      fc.property(cron5, zone, instant, (expr, tz, t) => {
        const five = parseOrSkip(expr, tz);
        const six = parseOrSkip(`0 ${expr}`, tz);
        expect(five.between(t, t + 2 * DAY, 50)).toEqual(six.between(t, t + 2 * DAY, 50));
      }),
      RUNS,
    );
  });
});

describe('@every properties', () => {
  const interval = fc.oneof(int(1_000, 120_000), int(1_000, 3 * DAY));
  const anchor = fc.integer({ min: -1e13, max: 1e13 });

  it('fire times are exactly anchor + k * interval, the first one after t', () => {
    fc.assert(
      fc.property(interval, anchor, instant, zone, (step, anchorMs, t, tz) => {
        const s = parseSchedule(`@every ${formatDuration(step)}`, { anchorMs, timezone: tz });
        const f = s.next(t);
        expect(f).not.toBeNull();
        if (f === null) return;
        expect(f).toBeGreaterThan(t);
        expect(f - step).toBeLessThanOrEqual(t);
        expect(Math.abs((f - anchorMs) % step)).toBe(0);
        const times = s.between(t + 1, t + 20 * step + 1);
        expect(times.length).toBeGreaterThanOrEqual(20);
        expect(times[0]).toBe(f);
        for (let i = 1; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBe(step);
        expect(times).toEqual(iterate(s, t + 1, t + 20 * step + 1, 10_000));
      }),
      RUNS,
    );
  });
});
