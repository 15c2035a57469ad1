/**
 * Test oracles that do not share code with the engine: wall times via Intl formatToParts (the engine
 * reads `longOffset`), and field matching via cron-parser's own `includesDate` on the wall time.
 */
import { CronExpressionParser } from 'cron-parser';

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The local date-time at instant `t` in `tz`, as naive ms (Date.UTC of the wall fields). */
export function wallOf(t: number, tz: string): number {
  let memo = walls.get(tz);
  if (memo === undefined) {
    memo = new Map();
    walls.set(tz, memo);
  }
  let w = memo.get(t);
  if (w === undefined) {
    w = computeWallOf(t, tz);
    if (memo.size > 200_000) memo.clear();
    memo.set(t, w);
  }
  return w;
}
const walls = new Map<string, Map<number, number>>();

function computeWallOf(t: number, tz: string): number {
  let fmt = formatters.get(tz);
  if (fmt === undefined) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, fmt);
  }
  const parts: Record<string, number> = {};
  for (const p of fmt.formatToParts(t)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const whole = Date.UTC(
    parts.year ?? 0,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return whole + (((t % 1000) + 1000) % 1000);
}

export const offsetOf = (t: number, tz: string): number => wallOf(t, tz) - t;

/**
 * Whether cron-parser says the naive wall time `w` matches a 6-field expression: its expanded field
 * values for the time and month, and its own `includesDate` when day-of-month/day-of-week restrict.
 */
export function cronParserIncludes(expr6: string, w: number): boolean {
  let parsed = parsedCrons.get(expr6);
  if (parsed === undefined) {
    const expr = CronExpressionParser.parse(expr6, { tz: 'UTC', currentDate: 0, hashSeed: 'x' });
    const f = expr.fields;
    parsed = {
      expr,
      second: new Set(f.second.values),
      minute: new Set(f.minute.values),
      hour: new Set(f.hour.values),
      month: new Set(f.month.values),
      anyDay: f.dayOfMonth.isWildcard && f.dayOfWeek.isWildcard,
    };
    parsedCrons.set(expr6, parsed);
  }
  const d = new Date(w);
  if (
    !parsed.second.has(d.getUTCSeconds()) ||
    !parsed.minute.has(d.getUTCMinutes()) ||
    !parsed.hour.has(d.getUTCHours()) ||
    !parsed.month.has(d.getUTCMonth() + 1)
  ) {
    return false;
  }
  return parsed.anyDay || parsed.expr.includesDate(d);
}
interface ParsedCron {
  expr: ReturnType<typeof CronExpressionParser.parse>;
  second: Set<unknown>;
  minute: Set<unknown>;
  hour: Set<unknown>;
  month: Set<unknown>;
  anyDay: boolean;
}
const parsedCrons = new Map<string, ParsedCron>();

/**
 * Reference fire times by brute force, straight from the rule "each selected wall time fires at the
 * first instant whose wall clock shows it or later": walk instants minute by minute, track the highest
 * wall time shown so far, and fire for every selected wall minute the clock passes. Only valid for
 * crons whose second field is 0, for zones whose transitions fall on whole UTC minutes, and for a
 * `fromMs` on a whole minute outside a repeated (fall-back) interval.
 */
export function referenceFires(
  selects: (wallMinute: number) => boolean,
  tz: string,
  fromMs: number,
  toMs: number,
): number[] {
  const out: number[] = [];
  let high = wallOf(fromMs - MINUTE, tz);
  for (let s = fromMs; s < toMs; s += MINUTE) {
    const w = wallOf(s, tz);
    let fired = false;
    for (let wm = high + MINUTE; wm <= w; wm += MINUTE) if (selects(wm)) fired = true;
    if (fired) out.push(s);
    high = Math.max(high, w);
  }
  return out;
}

export const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
export const ms = (isoText: string): number => {
  const t = Date.parse(isoText);
  if (Number.isNaN(t)) throw new Error(`bad date in test: ${isoText}`);
  return t;
};
