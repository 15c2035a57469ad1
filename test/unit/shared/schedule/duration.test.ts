import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../shared/errors.ts';
import { DurationError, formatDuration, parseDuration } from '../../../../shared/schedule/duration.ts';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['0s', 0],
    ['10s', 10_000],
    ['500ms', 500],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['2h45m30s', 9_930_000],
    ['1m', 60_000],
    ['.5s', 500],
    ['1.s', 1_000],
    ['1.25s', 1_250],
    ['100us', 0],
    ['100µs', 0],
    ['100μs', 0],
    ['499us', 0],
    ['500us', 1],
    ['1500us', 2],
    ['2500000ns', 3],
    ['1h1ms', 3_600_001],
    ['+5s', 5_000],
    ['-5s', -5_000],
    ['-100us', 0],
    ['  10s  ', 10_000],
    ['1.0000000001h', 3_600_000],
    ['0.1h', 360_000],
    ['1h1h', 7_200_000],
    ['2562047h', 2_562_047 * 3_600_000],
  ])('%s → %d ms', (text, expected) => {
    expect(parseDuration(text)).toBe(expected);
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['10', /missing a unit/],
    ['1d', /unknown unit 'd'/],
    ['1M', /unknown unit 'M'/],
    ['1H', /unknown unit 'H'/],
    ['h', /not a valid duration/],
    ['.s', /not a valid duration/],
    ['-', /no number/],
    ['1h 30m', /unknown unit 'h '/],
    ['1e3s', /unknown unit 'e'/],
    ['abc', /not a valid duration/],
    ['2562048h', /out of range/],
  ])('rejects %j', (text, rule) => {
    let error: unknown;
    try {
      parseDuration(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toBeInstanceOf(DurationError);
    expect((error as ValidationError).field).toBe('duration');
    expect((error as ValidationError).rule).toMatch(/must be a duration like 1h30m/);
    expect((error as ValidationError).rule).toMatch(rule);
  });

  it('names the field it is given', () => {
    expect(() => parseDuration('soon', 'executor_config.timeout')).toThrowError(
      expect.objectContaining({ field: 'executor_config.timeout' }),
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [500, '500ms'],
    [1_000, '1s'],
    [10_000, '10s'],
    [5_400_000, '1h30m'],
    [9_930_000, '2h45m30s'],
    [3_600_001, '1h1ms'],
    [-90_000, '-1m30s'],
    [1.4, '1ms'],
    [0.4, '0s'],
    [100 * 3_600_000, '100h'],
  ])('%d → %s', (value, expected) => {
    expect(formatDuration(value)).toBe(expected);
  });

  it('rejects non-finite input', () => {
    expect(() => formatDuration(Number.NaN)).toThrow(RangeError);
    expect(() => formatDuration(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe('duration properties', () => {
  const maxMs = 9_000_000_000_000; // within Go's int64 nanoseconds

  it('parseDuration(formatDuration(ms)) === ms', () => {
    fc.assert(
      fc.property(fc.integer({ min: -maxMs, max: maxMs }), (value) => {
        expect(parseDuration(formatDuration(value))).toBe(value);
      }),
      { numRuns: 200 },
    );
  });

  it('formatDuration(parseDuration(text)) is canonical: it parses back to the same value', () => {
    const term = fc.tuple(
      fc.integer({ min: 0, max: 1000 }),
      fc.constantFrom('h', 'm', 's', 'ms', 'us', 'ns'),
    );
    fc.assert(
      fc.property(fc.array(term, { minLength: 1, maxLength: 4 }), (terms) => {
        const text = terms.map(([n, unit]) => `${n}${unit}`).join('');
        const value = parseDuration(text);
        const unitNs: Record<string, bigint> = {
          h: 3_600_000_000_000n,
          m: 60_000_000_000n,
          s: 1_000_000_000n,
          ms: 1_000_000n,
          us: 1_000n,
          ns: 1n,
        };
        const ns = terms.reduce((sum, [n, unit]) => sum + BigInt(n) * (unitNs[unit] ?? 0n), 0n);
        expect(value).toBe(Number((ns + 500_000n) / 1_000_000n));
        expect(parseDuration(formatDuration(value))).toBe(value);
      }),
      { numRuns: 200 },
    );
  });
});
