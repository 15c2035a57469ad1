/**
 * Go-style durations (`time.ParseDuration`): `1h30m`, `10s`, `500ms`, `1.5h`, `2h45m30s`, `100us`.
 *
 * Grammar (as Go): an optional sign, then one or more `<number><unit>` terms, where a number is decimal
 * with an optional fraction (`1.5`, `.5`, `1.`) and a unit is one of h, m, s, ms, us (µs, μs) or ns. A bare
 * `0` is allowed. Units are case-sensitive like Go's (`1M` is rejected rather than guessed at), and
 * surrounding whitespace is trimmed.
 *
 * The value is computed exactly in nanoseconds (BigInt, fractions truncated to the nanosecond as Go
 * does), limited to Go's int64 range (about 292 years), and then rounded to the nearest millisecond
 * (halves away from zero): `100us` → 0, `1500us` → 2.
 */
import { ValidationError } from '../errors.ts';

const NS_PER_MS = 1_000_000n;
const MAX_NS = (1n << 63n) - 1n;

const UNIT_NS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const EXAMPLES = 'a duration like 1h30m, 10s or 500ms';
const UNITS = 'h, m, s, ms, us or ns';

/** A malformed duration; `reason` is the specific problem (the rule adds what a duration looks like). */
export class DurationError extends ValidationError {
  constructor(
    field: string,
    readonly reason: string,
  ) {
    super(field, `must be ${EXAMPLES}; ${reason}`);
  }
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/**
 * Parses a Go duration and returns whole milliseconds.
 * @param field the name reported in the ValidationError (default `duration`)
 */
export function parseDuration(text: string, field = 'duration'): number {
  if (typeof text !== 'string') throw new DurationError(field, `got ${typeof text}`);
  const orig = text.trim();
  const fail = (why: string): never => {
    throw new DurationError(field, why);
  };
  if (orig === '') fail('got an empty string');

  let s = orig;
  let negative = false;
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') fail(`'${orig}' has no number`);

  let totalNs = 0n;
  let i = 0;
  while (i < s.length) {
    const start = i;
    if (!(s[i] === '.' || isDigit(s[i]))) fail(`'${orig}' is not a valid duration`);
    while (isDigit(s[i])) i++;
    const intDigits = s.slice(start, i);
    let fracDigits = '';
    if (s[i] === '.') {
      i++;
      const fracStart = i;
      while (isDigit(s[i])) i++;
      fracDigits = s.slice(fracStart, i);
    }
    if (intDigits === '' && fracDigits === '') fail(`'${orig}' is not a valid duration`);
    const unitStart = i;
    while (i < s.length && !(s[i] === '.' || isDigit(s[i]))) i++;
    const unit = s.slice(unitStart, i);
    if (unit === '') fail(`'${orig}' is missing a unit (${UNITS})`);
    const unitNs = UNIT_NS[unit];
    if (unitNs === undefined) fail(`unknown unit '${unit}' in '${orig}' (use ${UNITS})`);
    const u = unitNs as bigint;
    let termNs = BigInt(intDigits === '' ? '0' : intDigits) * u;
    if (fracDigits !== '') termNs += (BigInt(fracDigits) * u) / 10n ** BigInt(fracDigits.length);
    totalNs += termNs;
    if (totalNs > MAX_NS) fail(`'${orig}' is out of range (at most about 292 years)`);
  }

  // Round half away from zero to whole milliseconds.
  const ms = Number((totalNs + NS_PER_MS / 2n) / NS_PER_MS);
  return negative && ms !== 0 ? -ms : ms;
}

/**
 * Formats milliseconds as a compact Go duration that `parseDuration` (and Go) read back to the same
 * value: non-zero hour, minute, second and millisecond parts, e.g. `1h30m`, `10s`, `1m0.5s` is written
 * `1m500ms`, zero is `0s`. Non-integer input is rounded to the nearest millisecond first.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms))
    throw new RangeError(`formatDuration: ${ms} is not a finite number of milliseconds`);
  let rest = Math.round(Math.abs(ms));
  if (rest === 0) return '0s';
  const parts: string[] = [];
  const units: Array<[string, number]> = [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
    ['ms', 1],
  ];
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return (ms < 0 ? '-' : '') + parts.join('');
}
