/**
 * Wall-clock time in an IANA time zone, computed with Intl.DateTimeFormat (no other tz database).
 *
 * A *wall time* is a naive local date-time encoded as the milliseconds it would have in UTC
 * (`Date.UTC(y, m - 1, d, h, mi, s)`), so calendar arithmetic on it never meets a DST transition.
 * An *instant* is ordinary epoch milliseconds. `wallOf(t) = t + offset(t)`.
 *
 * The one mapping the schedule engine needs the other way is `instantOf(w)`: the earliest instant
 * whose wall time is at or past `w`, i.e. `min { t : wallOf(t) >= w }`. For a wall time that exists
 * once that is its instant; for one that occurs twice (fall back) it is the first occurrence; for one
 * that does not exist (spring-forward gap) it is the first instant after the gap (the transition).
 */
import { ValidationError } from '../errors.ts';

export const SECOND = 1_000;
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/** Epoch ms range the engine accepts (Date's ±8.64e15, less room to look a few days around). */
export const MAX_INSTANT = 8.64e15 - 30 * DAY;
export const MIN_INSTANT = -MAX_INSTANT;

export interface Zone {
  /** Canonical IANA name (`UTC` for the default). */
  readonly name: string;
  /** wall − UTC in ms at instant `t`. */
  offset(t: number): number;
  /** The wall time (naive ms) at instant `t`. */
  wallOf(t: number): number;
  /** The earliest instant whose wall time is `>= w` (see the module comment). */
  instantOf(w: number): number;
  /**
   * The highest wall time shown at or before instant `t`: `max { wallOf(s) : s <= t }`. It differs
   * from `wallOf(t)` only during the second pass through a repeated (fall-back) interval.
   */
  highWater(t: number): number;
}

const utcZone: Zone = {
  name: 'UTC',
  offset: () => 0,
  wallOf: (t) => t,
  instantOf: (w) => w,
  highWater: (t) => t,
};

/** Looking this far back finds any fall-back whose repeated interval can still contain `t`. */
const LOOKBACK = 26 * HOUR;
const MAX_CACHED_HOURS = 50_000;
const OFFSET_RE = /GMT(?:([+-])(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?)?$/;

class IntlZone implements Zone {
  readonly #fmt: Intl.DateTimeFormat;
  /** Offset per UTC hour; NaN when the offset changes inside that hour (then it is computed exactly). */
  readonly #hours = new Map<number, number>();

  constructor(readonly name: string) {
    this.#fmt = new Intl.DateTimeFormat('en-US', { timeZone: name, timeZoneName: 'longOffset' });
  }

  #rawOffset(t: number): number {
    const m = OFFSET_RE.exec(this.#fmt.format(t));
    if (m === null) throw new Error(`cannot read the UTC offset of ${this.name} at ${t}`);
    if (m[1] === undefined) return 0;
    const abs = Number(m[2]) * HOUR + Number(m[3] ?? 0) * MINUTE + Number(m[4] ?? 0) * SECOND;
    return m[1] === '-' ? -abs : abs;
  }

  offset(t: number): number {
    const hour = Math.floor(t / HOUR);
    let o = this.#hours.get(hour);
    if (o === undefined) {
      const first = this.#rawOffset(hour * HOUR);
      o = first === this.#rawOffset(hour * HOUR + HOUR - 1) ? first : Number.NaN;
      if (this.#hours.size >= MAX_CACHED_HOURS) this.#hours.clear();
      this.#hours.set(hour, o);
    }
    return Number.isNaN(o) ? this.#rawOffset(t) : o;
  }

  wallOf(t: number): number {
    return t + this.offset(t);
  }

  instantOf(w: number): number {
    const candidates = [
      ...new Set([w - this.offset(w - DAY), w - this.offset(w), w - this.offset(w + DAY)]),
    ].sort((a, b) => a - b);
    for (const c of candidates) if (this.wallOf(c) === w) return c;
    // A gap: w is skipped. Find the first instant whose wall time passes it (the transition).
    let lo = candidates[0] ?? w;
    let hi = candidates[candidates.length - 1] ?? w;
    if (!(this.wallOf(lo) < w && this.wallOf(hi) >= w)) {
      lo = w - 2 * DAY;
      hi = w + 2 * DAY;
    }
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (this.wallOf(mid) >= w) hi = mid;
      else lo = mid;
    }
    return hi;
  }

  highWater(t: number): number {
    const now = this.offset(t);
    const wall = t + now;
    const earlier = this.offset(t - LOOKBACK);
    if (earlier <= now) return wall;
    const before = this.offset(t - (earlier - now));
    // A fall-back of (earlier - now) ended more than that long ago: its repeated wall times are all behind `wall`.
    if (before === now) return wall;
    let lo = t - (earlier - now);
    let hi = t;
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (this.offset(mid) === before) lo = mid;
      else hi = mid;
    }
    return Math.max(wall, lo + before);
  }
}

const zones = new Map<string, Zone>();

/**
 * The zone for an IANA name; empty or missing means UTC. Throws ValidationError('timezone') for
 * anything Intl does not know as an IANA zone (offset strings such as `+02:00` included).
 */
export function getZone(timezone: string | undefined): Zone {
  const name = (timezone ?? '').trim();
  if (name === '') return utcZone;
  const cached = zones.get(name);
  if (cached !== undefined) return cached;
  let canonical: string;
  try {
    if (/^[+\-\d]/.test(name)) throw new RangeError('offset, not a zone name');
    canonical = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch (cause) {
    throw new ValidationError(
      'timezone',
      `'${name}' is not an IANA time zone (use a name like Europe/London, America/New_York or UTC)`,
      { cause },
    );
  }
  const zone = canonical === 'UTC' || canonical === 'Etc/UTC' ? utcZone : new IntlZone(canonical);
  if (zones.size > 1_000) zones.clear();
  zones.set(name, zone);
  return zone;
}

/** Naive wall-time ms for a calendar date-time (years 0-99 are taken literally, unlike Date.UTC). */
export function wallMs(y: number, month: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number {
  const date = new Date(0);
  date.setUTCFullYear(y, month - 1, d);
  date.setUTCHours(h, mi, s, ms);
  return date.getTime();
}

export interface WallParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday. */
  weekday: number;
}

export function wallParts(w: number): WallParts {
  const d = new Date(w);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    weekday: d.getUTCDay(),
  };
}
