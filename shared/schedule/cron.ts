/**
 * Cron expressions as a matcher over wall times (naive local date-times, see zoned-time.ts).
 *
 * cron-parser does the parsing: field syntax, ranges, steps, lists, month/day names, `L` (last day of
 * month, `nL` last weekday n of month), `n#k` (k-th weekday n), `?`, and `H` hashed values seeded with
 * `hashSeed`. This module adds what it lacks or does differently from what we need:
 *  - exactly 5 fields (minute first, second = 0) or 6 fields (Dkron's `sec min hour dom month dow`);
 *    cron-parser would silently pad shorter input and reads an empty string as "every minute";
 *  - Dkron's `~`, which is rewritten to cron-parser's `H` (so `~`, `~/15`, `~(0-29)` all work), with the
 *    job name as the hash seed (a fixed seed when there is none: never Math.random). A bare `H`/`~` in
 *    day-of-month picks from 1-28 (so it occurs every month, as Jenkins does), in day-of-week from 0-6;
 *  - `W` in day-of-month (`15W` nearest weekday to the 15th within the month, `LW` last weekday),
 *    which cron-parser does not support;
 *  - case-insensitive input (`l`, `w`, `h`, `mon`); month and day names are turned into numbers here,
 *    before `~` becomes `H` (cron-parser would otherwise see the H of `THU`);
 *  - error messages that name the offending field;
 *  - iteration: the fields are expanded once and matched over wall times here, because the engine maps
 *    wall times to instants itself (cron-parser's own DST handling does not follow our rules).
 *
 * Day matching follows cron-parser (and Vixie cron / Dkron): when both day-of-month and day-of-week are
 * restricted a day matches if either does; a field written as `*` or `?` does not restrict.
 */
import { CronExpressionParser } from 'cron-parser';
import { ScheduleError } from './errors.ts';
import { SECOND, wallMs, wallParts } from './zoned-time.ts';

const FIELD_NAMES = ['second', 'minute', 'hour', 'day-of-month', 'month', 'day-of-week'] as const;
const FIELD_RULES = [
  '0-59',
  '0-59',
  '0-23',
  '1-31, L, LW or nW',
  '1-12 or JAN-DEC',
  '0-7 or SUN-SAT (also nL and n#k)',
] as const;
const DOM = 3;
const MONTH = 4;
const DOW = 5;
const MONTHS: Readonly<Record<string, number>> = Object.fromEntries(
  ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'].map((m, i) => [
    m,
    i + 1,
  ]),
);
const DAYS: Readonly<Record<string, number>> = Object.fromEntries(
  ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'].map((d, i) => [d, i]),
);

/** Seed for `H`/`~` when the schedule has no job name: fixed, so values never change between calls. */
const DEFAULT_HASH_SEED = 'cronplane';
/** How far ahead a search may look before it decides an expression has no further fire time. */
const HORIZON_YEARS = 100;
const MAX_YEAR = 275_000;

export interface CronMatcher {
  readonly fieldCount: 5 | 6;
  /** The first matching wall time at or after `fromWall` (rounded up to a whole second), or null. */
  nextWall(fromWall: number): number | null;
  /** Whether a wall time (whole second) matches every field. */
  matches(wall: number): boolean;
}

export function parseCron(text: string, options: { jobName?: string } = {}): CronMatcher {
  const raw = text
    .trim()
    .split(/\s+/)
    .filter((f) => f !== '');
  if (raw.length !== 5 && raw.length !== 6) {
    throw new ScheduleError(
      `cron needs 5 fields (min hour dom month dow) or 6 fields (sec min hour dom month dow), got ${raw.length}`,
    );
  }
  const fieldCount: 5 | 6 = raw.length === 5 ? 5 : 6;
  const label = `${fieldCount}-field cron`;
  const original = fieldCount === 5 ? ['0', ...raw] : raw;
  // Names become numbers before `~` turns into `H`, so the H of THU is never read as a hash.
  const fields = original.map((f, i) =>
    f
      .toUpperCase()
      .replace(/[A-Z]+/g, (name) =>
        String((i === MONTH ? MONTHS : i === DOW ? DAYS : undefined)?.[name] ?? name),
      )
      .replaceAll('~', 'H'),
  );
  const fail = (i: number, extra = '', cause?: unknown): never => {
    throw new ScheduleError(
      `${label}: ${FIELD_NAMES[i]} must be ${FIELD_RULES[i]}, got '${original[i]}'${extra}`,
      cause === undefined ? undefined : { cause },
    );
  };

  fields.forEach((f, i) => {
    if (/\/0+(?!\d)/.test(f)) fail(i, ' (a step must be at least 1)');
  });

  // W items of day-of-month are ours; the rest goes to cron-parser.
  const wDays: number[] = [];
  let lastWeekday = false;
  const domItems: string[] = [];
  for (const item of (fields[DOM] ?? '').split(',')) {
    if (!item.includes('W')) {
      domItems.push(item);
      continue;
    }
    const m = /^(\d{1,2})W$/.exec(item);
    if (item === 'LW') lastWeekday = true;
    else if (m !== null && Number(m[1]) >= 1 && Number(m[1]) <= 31) wDays.push(Number(m[1]));
    else fail(DOM, ` (W follows a single day, like 15W or LW)`);
  }
  const hasW = wDays.length > 0 || lastWeekday;
  const parserFields = [...fields];
  parserFields[DOM] = domItems.length > 0 ? domItems.join(',').replace(/H(?!\()/g, 'H(1-28)') : '1';
  parserFields[DOW] = (fields[DOW] ?? '').replace(/H(?!\()/g, 'H(0-6)');

  const hashSeed = options.jobName ? options.jobName : DEFAULT_HASH_SEED;
  const parse = (expr: string) => CronExpressionParser.parse(expr, { hashSeed, tz: 'UTC', currentDate: 0 });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(parserFields.join(' '));
  } catch (cause) {
    // Find the field at fault by parsing each one on its own.
    for (let i = 0; i < 6; i++) {
      const probe = ['0', '*', '*', '*', '*', '*'];
      probe[i] = parserFields[i] ?? '*';
      try {
        parse(probe.join(' '));
      } catch (fieldCause) {
        fail(i, hint(fieldCause), fieldCause);
      }
    }
    const reason = cause instanceof Error ? cause.message : String(cause);
    if (/day of month definition/i.test(reason)) {
      throw new ScheduleError(neverFires(label, original), { cause });
    }
    throw new ScheduleError(`${label}: '${raw.join(' ')}' is not a valid cron expression (${reason})`, {
      cause,
    });
  }

  const f = parsed.fields;
  const numbers = (values: readonly (number | string)[]) =>
    values.filter((v): v is number => typeof v === 'number');
  const matcher = new FieldMatcher({
    fieldCount,
    seconds: numbers(f.second.values),
    minutes: numbers(f.minute.values),
    hours: numbers(f.hour.values),
    months: numbers(f.month.values),
    domWildcard: !hasW && f.dayOfMonth.isWildcard,
    domDays: domItems.length > 0 ? numbers(f.dayOfMonth.values) : [],
    domLast: domItems.length > 0 && f.dayOfMonth.values.includes('L'),
    wDays,
    lastWeekday,
    dowWildcard: f.dayOfWeek.isWildcard,
    dowDays: numbers(f.dayOfWeek.values).map((v) => v % 7),
    dowNth: f.dayOfWeek.nthDay,
    dowLast: f.dayOfWeek.values.flatMap((v) => {
      const m = /^(\d)L$/.exec(String(v));
      return m === null ? [] : [Number(m[1]) % 7];
    }),
  });
  if (matcher.nextWall(wallMs(2000, 1, 1)) === null) throw new ScheduleError(neverFires(label, original));
  return matcher;
}

/** A short explanation for cron-parser errors that "must be 0-59" alone would not explain. */
function hint(cause: unknown): string {
  const reason = cause instanceof Error ? cause.message : String(cause);
  if (/duplicate/i.test(reason)) return ' (a value is listed twice)';
  if (/min\(?\d*\)? > max|min > max/i.test(reason)) return ' (a range must go from low to high)';
  if (/#/.test(reason)) return ' (n#k takes one weekday n and k 1-5, alone)';
  return '';
}

function neverFires(label: string, fields: readonly string[]): string {
  return `${label}: day-of-month ${fields[DOM]} never falls in month ${fields[MONTH]}${
    fields[DOW] === '*' || fields[DOW] === '?' ? '' : ` on day-of-week ${fields[DOW]}`
  }, so the schedule would never fire`;
}

interface MatcherSpec {
  fieldCount: 5 | 6;
  seconds: number[];
  minutes: number[];
  hours: number[];
  months: number[];
  domWildcard: boolean;
  domDays: number[];
  domLast: boolean;
  wDays: number[];
  lastWeekday: boolean;
  dowWildcard: boolean;
  /** 0 = Sunday. */
  dowDays: number[];
  /** k of `n#k`, 0 if none. */
  dowNth: number;
  /** n of `nL`. */
  dowLast: number[];
}

/** next[i] = the smallest allowed value >= i, or -1; one slot past the range, always -1. */
function nextTable(values: readonly number[], size: number): Int8Array {
  const table = new Int8Array(size + 1).fill(-1);
  const allowed = new Set(values);
  let next = -1;
  for (let i = size - 1; i >= 0; i--) {
    if (allowed.has(i)) next = i;
    table[i] = next;
  }
  return table;
}

const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const daysIn = (y: number, month: number) => (month === 2 && isLeap(y) ? 29 : (MONTH_DAYS[month - 1] ?? 31));
const SAKAMOTO = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
/** Day of week, 0 = Sunday (proleptic Gregorian). */
function weekday(y: number, month: number, d: number): number {
  const yy = month < 3 ? y - 1 : y;
  const w =
    yy + Math.floor(yy / 4) - Math.floor(yy / 100) + Math.floor(yy / 400) + (SAKAMOTO[month - 1] ?? 0) + d;
  return ((w % 7) + 7) % 7;
}

class FieldMatcher implements CronMatcher {
  readonly fieldCount: 5 | 6;
  readonly #sec: Int8Array;
  readonly #min: Int8Array;
  readonly #hour: Int8Array;
  readonly #month: boolean[];
  readonly #spec: MatcherSpec;
  readonly #domDays: boolean[];
  readonly #dowDays: boolean[];
  readonly #dowLast: boolean[];

  constructor(spec: MatcherSpec) {
    this.fieldCount = spec.fieldCount;
    this.#spec = spec;
    this.#sec = nextTable(spec.seconds, 60);
    this.#min = nextTable(spec.minutes, 60);
    this.#hour = nextTable(spec.hours, 24);
    this.#month = Array.from({ length: 13 }, (_, m) => spec.months.includes(m));
    this.#domDays = Array.from({ length: 32 }, (_, d) => spec.domDays.includes(d));
    this.#dowDays = Array.from({ length: 7 }, (_, d) => spec.dowDays.includes(d));
    this.#dowLast = Array.from({ length: 7 }, (_, d) => spec.dowLast.includes(d));
  }

  #dayMatches(y: number, month: number, d: number, dim: number): boolean {
    const s = this.#spec;
    if (s.domWildcard && s.dowWildcard) return true;
    const wd = weekday(y, month, d);
    let domMatch = false;
    if (!s.domWildcard) {
      domMatch = this.#domDays[d] === true || (s.domLast && d === dim);
      if (!domMatch && s.lastWeekday) domMatch = d === nearestWeekday(dim, dim, (wd + dim - d) % 7);
      if (!domMatch) {
        for (const n of s.wDays) {
          if (n <= dim && d === nearestWeekday(n, dim, (((wd + n - d) % 7) + 7) % 7)) {
            domMatch = true;
            break;
          }
        }
      }
    }
    const dowMatch =
      !s.dowWildcard &&
      ((this.#dowDays[wd] === true && (s.dowNth <= 0 || Math.ceil(d / 7) === s.dowNth)) ||
        (this.#dowLast[wd] === true && d + 7 > dim));
    if (!s.domWildcard && !s.dowWildcard) return domMatch || dowMatch;
    return s.domWildcard ? dowMatch : domMatch;
  }

  matches(wall: number): boolean {
    const p = wallParts(wall);
    return (
      wall % SECOND === 0 &&
      this.#month[p.month] === true &&
      this.#hour[p.hour] === p.hour &&
      this.#min[p.minute] === p.minute &&
      this.#sec[p.second] === p.second &&
      this.#dayMatches(p.year, p.month, p.day, daysIn(p.year, p.month))
    );
  }

  nextWall(fromWall: number): number | null {
    const p = wallParts(Math.ceil(fromWall / SECOND) * SECOND);
    let { year: y, month, day, hour, minute, second } = p;
    const lastYear = Math.min(y + HORIZON_YEARS, MAX_YEAR);
    const nextDay = () => {
      day++;
      hour = 0;
      minute = 0;
      second = 0;
    };
    for (;;) {
      if (y > lastYear) return null;
      if (!this.#month[month]) {
        month++;
        if (month > 12) {
          month = 1;
          y++;
        }
        day = 1;
        hour = 0;
        minute = 0;
        second = 0;
        continue;
      }
      const dim = daysIn(y, month);
      if (day > dim) {
        day = 1;
        month++;
        if (month > 12) {
          month = 1;
          y++;
        }
        hour = 0;
        minute = 0;
        second = 0;
        continue;
      }
      if (!this.#dayMatches(y, month, day, dim)) {
        nextDay();
        continue;
      }
      const h = this.#hour[hour] ?? -1;
      if (h < 0) {
        nextDay();
        continue;
      }
      if (h !== hour) {
        hour = h;
        minute = 0;
        second = 0;
      }
      const mi = this.#min[minute] ?? -1;
      if (mi < 0) {
        hour++;
        minute = 0;
        second = 0;
        continue;
      }
      if (mi !== minute) {
        minute = mi;
        second = 0;
      }
      const s = this.#sec[second] ?? -1;
      if (s < 0) {
        minute++;
        second = 0;
        continue;
      }
      return wallMs(y, month, day, hour, minute, s);
    }
  }
}

/**
 * The weekday (Mon-Fri) nearest to day `n` of a month with `dim` days, never leaving the month
 * (Quartz `nW`): a Saturday moves to Friday (or to Monday the 3rd when n is the 1st), a Sunday to
 * Monday (or to Friday when n is the last day). `wdN` is n's day of week.
 */
function nearestWeekday(n: number, dim: number, wdN: number): number {
  if (wdN === 6) return n === 1 ? 3 : n - 1;
  if (wdN === 0) return n === dim ? n - 2 : n + 1;
  return n;
}
