/**
 * The schedule engine: the one parser and fire-time calculator used by the API, the tick, the UI and
 * the CLI.
 *
 * Forms (surrounding whitespace is trimmed, runs of spaces collapse; descriptor, month and day names
 * are case-insensitive):
 *  - cron, 6 fields `sec min hour dom month dow` (Dkron) or 5 fields `min hour dom month dow` (sec 0),
 *    with `* ? , - /`, names, `L`, `nL`, `n#k`, `nW`, `LW`, `H` and Dkron's `~` (see cron.ts);
 *  - `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`, `@minutely`:
 *    shorthands for 6-field crons, so they follow the time zone like any cron;
 *  - `@every <Go duration>` (at least 1s, millisecond precision): fires at anchorMs + k·interval for
 *    every integer k; time zones and DST do not affect it;
 *  - `@at <RFC 3339>`: once. With an offset (`Z`, `+02:00`) it is that instant; without one
 *    (`2026-12-01T10:00` or `…T10:00:00`) it is a wall time in the schedule's time zone, resolved
 *    by the same DST rule as cron;
 *  - `@manually`: never fires.
 *
 * Time zones and DST (cron, descriptors and `@at` without offset). A cron expression selects *wall
 * times* (local date-times) in the zone; each selected wall time W fires at the earliest instant
 * whose wall clock shows W or later, and fire times are the set of those instants. Hence:
 *  - a wall time that does not exist (spring-forward gap) fires once, at the first instant after the
 *    gap: New York 2026-03-08 02:30 → 03:00 EDT (07:00Z). Several selected wall times in one gap
 *    (e.g. every 15 minutes) collapse into that one fire time, and a wall time equal to the end of the
 *    gap (03:00) is that same fire time too;
 *  - a wall time that occurs twice (fall back) fires once, at its first occurrence: New York
 *    2026-11-01 01:30 → 05:30Z only. This holds for every selected wall time, so crons that fire every
 *    minute or hour do not fire during the second pass through the repeated interval: `0 30 * * * *`
 *    fires at 01:30 EDT and next at 02:30 EST (two hours later), `0 0 * * * *` at 01:00 EDT and then
 *    02:00 EST;
 *  - the same rules hold for 30-minute shifts (Australia/Lord_Howe).
 * `next(t)` is therefore the first W after the highest wall time shown up to t (the "high water"
 * mark, which is ahead of the clock during a repeated interval), mapped to its instant.
 *
 * cron-parser's own iteration does not do this (checked with 5.10.5): in a gap it fires at the
 * skipped time plus the shift (02:30 → 03:30 EDT, London 01:30 → 02:30 BST) rather than at the end of
 * the gap; for Lord Howe's 30-minute gap it skips the day altogether (02:15 daily fires the next day)
 * and a `*\/15` cron misses 02:30 and 02:45; in New York it fires hourly and minutely crons twice in
 * the repeated hour (01:00 EDT and 01:00 EST). So cron-parser only parses and expands the fields here;
 * wall times are matched in cron.ts and mapped to instants in zoned-time.ts (Intl.DateTimeFormat).
 *
 * All instants are epoch milliseconds; cron fire times are whole seconds, `@at` keeps milliseconds.
 */

import { ValidationError } from '../errors.ts';
import { type CronMatcher, parseCron } from './cron.ts';
import { DurationError, parseDuration } from './duration.ts';
import { ScheduleError } from './errors.ts';
import { getZone, MAX_INSTANT, MIN_INSTANT, SECOND, wallMs, type Zone } from './zoned-time.ts';

export { ScheduleError } from './errors.ts';

export type ScheduleKind = 'cron' | 'every' | 'at' | 'manually';

export interface ScheduleOptions {
  /** IANA zone; default UTC. Honoured by every form (cron, @daily, @at without offset). */
  timezone?: string;
  /** Job name: seeds Dkron's `~` and cron-parser's `H`. */
  jobName?: string;
  /** Origin of `@every` intervals (ms since epoch); default 0, i.e. aligned to the UTC epoch. */
  anchorMs?: number;
}

export interface Schedule {
  readonly kind: ScheduleKind;
  readonly expression: string;
  /** First fire time strictly after `afterMs`, or null if there is none (one-off passed, @manually). */
  next(afterMs: number): number | null;
  /** Fire times t with fromMs <= t < toMs, ascending, at most `limit` (default 10_000). */
  between(fromMs: number, toMs: number, limit?: number): number[];
}

const DEFAULT_LIMIT = 10_000;

const DESCRIPTORS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 0 1 1 *',
  '@annually': '0 0 0 1 1 *',
  '@monthly': '0 0 0 1 * *',
  '@weekly': '0 0 0 * * 0',
  '@daily': '0 0 0 * * *',
  '@midnight': '0 0 0 * * *',
  '@hourly': '0 0 * * * *',
  '@minutely': '0 * * * * *',
};

const FORMS =
  'a cron expression (6 fields "sec min hour dom month dow" or 5 fields), @yearly, @annually, @monthly, ' +
  '@weekly, @daily, @midnight, @hourly, @minutely, @every <duration>, @at <RFC 3339 time> or @manually';

function checkTime(name: string, value: number): void {
  if (typeof value !== 'number' || Number.isNaN(value))
    throw new RangeError(`${name} must be a number, got ${value}`);
}

abstract class BaseSchedule implements Schedule {
  abstract readonly kind: ScheduleKind;
  constructor(readonly expression: string) {}

  abstract next(afterMs: number): number | null;

  between(fromMs: number, toMs: number, limit = DEFAULT_LIMIT): number[] {
    checkTime('fromMs', fromMs);
    checkTime('toMs', toMs);
    const out: number[] = [];
    const max = Math.floor(limit);
    if (!(toMs > fromMs) || !(max >= 1)) return out;
    // Fire times are whole milliseconds, so "t >= fromMs" is "t > ceil(fromMs) - 1".
    let t: number | null = Math.ceil(fromMs) - 1;
    while (out.length < max) {
      t = this.next(t);
      if (t === null || t >= toMs) break;
      out.push(t);
    }
    return out;
  }

  toString(): string {
    return this.expression;
  }
}

class CronSchedule extends BaseSchedule {
  readonly kind = 'cron';
  constructor(
    expression: string,
    private readonly matcher: CronMatcher,
    private readonly zone: Zone,
  ) {
    super(expression);
  }

  next(afterMs: number): number | null {
    checkTime('afterMs', afterMs);
    const t = Math.max(Math.floor(afterMs), MIN_INSTANT);
    if (t >= MAX_INSTANT) return null;
    // The first selected wall time after the highest wall time shown so far fires at its instant.
    let from = Math.floor(this.zone.highWater(t) / SECOND) * SECOND + SECOND;
    for (;;) {
      const wall = this.matcher.nextWall(from);
      if (wall === null) return null;
      const at = this.zone.instantOf(wall);
      if (at > MAX_INSTANT) return null;
      if (at > t) return at;
      // Unreachable when highWater is exact; walls only grow, so this still ends at the right answer.
      from = wall + SECOND;
    }
  }
}

class EverySchedule extends BaseSchedule {
  readonly kind = 'every';
  constructor(
    expression: string,
    readonly intervalMs: number,
    readonly anchorMs: number,
  ) {
    super(expression);
  }

  next(afterMs: number): number | null {
    checkTime('afterMs', afterMs);
    if (afterMs >= MAX_INSTANT) return null;
    const after = Math.max(afterMs, MIN_INSTANT);
    const { intervalMs: step, anchorMs: anchor } = this;
    let t = anchor + (Math.floor((after - anchor) / step) + 1) * step;
    while (t <= after) t += step;
    while (t - step > after) t -= step;
    return t > MAX_INSTANT ? null : t;
  }

  override between(fromMs: number, toMs: number, limit = DEFAULT_LIMIT): number[] {
    checkTime('fromMs', fromMs);
    checkTime('toMs', toMs);
    const out: number[] = [];
    const max = Math.floor(limit);
    if (!(toMs > fromMs) || !(max >= 1)) return out;
    let t = this.next(Math.ceil(fromMs) - 1);
    while (t !== null && t < toMs && out.length < max && t <= MAX_INSTANT) {
      out.push(t);
      t += this.intervalMs;
    }
    return out;
  }
}

class AtSchedule extends BaseSchedule {
  readonly kind = 'at';
  constructor(
    expression: string,
    readonly atMs: number,
  ) {
    super(expression);
  }

  next(afterMs: number): number | null {
    checkTime('afterMs', afterMs);
    return this.atMs > afterMs ? this.atMs : null;
  }
}

class ManualSchedule extends BaseSchedule {
  readonly kind = 'manually';
  next(afterMs: number): number | null {
    checkTime('afterMs', afterMs);
    return null;
  }
}

const AT_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:([Zz])|([+-])(\d{2}):(\d{2}))?$/;

const AT_RULE =
  '@at needs an RFC 3339 date-time like 2026-12-01T10:00:00Z, 2026-12-01T10:00:00+02:00, ' +
  'or 2026-12-01T10:00 for a wall time in the time zone';

function parseAt(arg: string, zone: Zone): number {
  const m = AT_RE.exec(arg);
  if (m === null) throw new ScheduleError(`${AT_RULE}, got '${arg}'`);
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((v) =>
    Number(v ?? 0),
  ) as [number, number, number, number, number, number];
  const bad = (what: string): never => {
    throw new ScheduleError(`@at '${arg}' is not a valid date-time: ${what}`);
  };
  if (month < 1 || month > 12) bad(`month must be 01-12, got ${m[2]}`);
  const dim = month === 2 ? (isLeapYear(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  if (day < 1 || day > dim) bad(`day must be 01-${dim} in ${m[1]}-${m[2]}, got ${m[3]}`);
  if (hour > 23) bad(`hour must be 00-23, got ${m[4]}`);
  if (minute > 59) bad(`minute must be 00-59, got ${m[5]}`);
  if (second > 59) bad(`second must be 00-59, got ${m[6]}`);
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  const wall = wallMs(year, month, day, hour, minute, second, millis);
  if (m[8] !== undefined) return wall;
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) bad(`offset must be between -23:59 and +23:59, got ${m[9]}${m[10]}:${m[11]}`);
    const offset = (oh * 60 + om) * 60_000;
    return m[9] === '-' ? wall + offset : wall - offset;
  }
  return zone.instantOf(wall);
}

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function build(text: string, zone: Zone, jobName: string | undefined, anchorMs: number): Schedule {
  if (text === '') throw new ScheduleError(`is empty; use ${FORMS}`);
  if (!text.startsWith('@')) return new CronSchedule(text, parseCron(text, { jobName }), zone);

  const space = text.indexOf(' ');
  const head = space < 0 ? text : text.slice(0, space);
  const arg = space < 0 ? '' : text.slice(space + 1);
  const name = head.toLowerCase();
  const noArgument = () => {
    if (arg !== '') throw new ScheduleError(`${name} takes no argument, got '${arg}'`);
  };
  switch (name) {
    case '@manually':
      noArgument();
      return new ManualSchedule(text);
    case '@every': {
      if (arg === '') throw new ScheduleError('@every needs a duration, like @every 1h30m or @every 10s');
      let ms: number;
      try {
        ms = parseDuration(arg, 'schedule');
      } catch (cause) {
        const why = cause instanceof DurationError ? cause.reason : String(cause);
        throw new ScheduleError(`@every needs a Go duration like 1h30m, 10s or 500ms; ${why}`, { cause });
      }
      if (ms < SECOND) throw new ScheduleError(`@every needs a duration of at least 1s, got ${arg}`);
      return new EverySchedule(text, ms, anchorMs);
    }
    case '@at':
      if (arg === '') throw new ScheduleError(`${AT_RULE}, got nothing`);
      return new AtSchedule(text, parseAt(arg, zone));
    default: {
      const cron = DESCRIPTORS[name];
      if (cron === undefined) throw new ScheduleError(`unknown descriptor ${head}; use ${FORMS}`);
      noArgument();
      return new CronSchedule(text, parseCron(cron), zone);
    }
  }
}

/** Parsed schedules are immutable, so the tick and the API can reuse them across calls. */
const cache = new Map<string, Schedule>();
const MAX_CACHED = 2_000;

/**
 * Parses a schedule. Throws ScheduleError (field `schedule`) for a bad expression,
 * ValidationError('timezone') for a zone that is not IANA, ValidationError('anchorMs') for a bad anchor.
 */
export function parseSchedule(expression: string, options: ScheduleOptions = {}): Schedule {
  if (typeof expression !== 'string') throw new ScheduleError(`must be a string; use ${FORMS}`);
  const zone = getZone(options.timezone);
  const anchorMs = options.anchorMs ?? 0;
  if (!Number.isSafeInteger(anchorMs) || anchorMs > MAX_INSTANT || anchorMs < MIN_INSTANT) {
    throw new ValidationError('anchorMs', `must be whole milliseconds since the epoch, got ${anchorMs}`);
  }
  const text = expression.trim().replace(/\s+/g, ' ');
  const key = JSON.stringify([text, zone.name, options.jobName ?? '', anchorMs]);
  let schedule = cache.get(key);
  if (schedule === undefined) {
    schedule = build(text, zone, options.jobName, anchorMs);
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(key, schedule);
  }
  return schedule;
}
