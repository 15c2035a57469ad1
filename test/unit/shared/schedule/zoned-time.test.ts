import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../shared/errors.ts';
import { parseSchedule } from '../../../../shared/schedule/schedule.ts';
import { getZone, wallMs } from '../../../../shared/schedule/zoned-time.ts';
import { HOUR, iso, MINUTE, ms, offsetOf, wallOf } from './helpers.ts';

const NY = getZone('America/New_York');
const LH = getZone('Australia/Lord_Howe');
const wall = (text: string) => ms(`${text}Z`); // a wall time written as ISO without zone

describe('getZone', () => {
  it('defaults to UTC and canonicalises names', () => {
    expect(getZone(undefined).name).toBe('UTC');
    expect(getZone('').name).toBe('UTC');
    expect(getZone('utc').name).toBe('UTC');
    expect(getZone('america/new_york').name).toBe('America/New_York');
    expect(getZone('US/Eastern').name).toBe('America/New_York');
  });

  it('rejects what is not an IANA zone', () => {
    for (const tz of ['Mars/Olympus', '+05:00', '-0500', 'nowhere']) {
      expect(() => getZone(tz)).toThrowError(ValidationError);
      expect(() => getZone(tz)).toThrowError(expect.objectContaining({ field: 'timezone' }));
    }
  });
});

describe('wall time ↔ instant', () => {
  it('reads offsets, including a 30-minute DST shift', () => {
    expect(NY.offset(ms('2026-01-15T12:00:00Z'))).toBe(-5 * HOUR);
    expect(NY.offset(ms('2026-07-15T12:00:00Z'))).toBe(-4 * HOUR);
    expect(LH.offset(ms('2026-07-15T12:00:00Z'))).toBe(10.5 * HOUR);
    expect(LH.offset(ms('2026-01-15T12:00:00Z'))).toBe(11 * HOUR);
    expect(getZone('Asia/Kathmandu').offset(ms('2026-01-15T12:00:00Z'))).toBe(5.75 * HOUR);
  });

  it('maps a normal wall time to its instant', () => {
    expect(iso(NY.instantOf(wall('2026-07-15T09:00:00')))).toBe('2026-07-15T13:00:00.000Z');
  });

  it('maps a skipped wall time to the end of the gap', () => {
    expect(iso(NY.instantOf(wall('2026-03-08T02:00:00')))).toBe('2026-03-08T07:00:00.000Z');
    expect(iso(NY.instantOf(wall('2026-03-08T02:59:59')))).toBe('2026-03-08T07:00:00.000Z');
    expect(iso(NY.instantOf(wall('2026-03-08T03:00:00')))).toBe('2026-03-08T07:00:00.000Z');
    expect(iso(LH.instantOf(wall('2026-10-04T02:29:00')))).toBe('2026-10-03T15:30:00.000Z');
  });

  it('maps a repeated wall time to its first occurrence', () => {
    expect(iso(NY.instantOf(wall('2026-11-01T01:30:00')))).toBe('2026-11-01T05:30:00.000Z');
    expect(iso(LH.instantOf(wall('2026-04-05T01:45:00')))).toBe('2026-04-04T14:45:00.000Z');
  });

  it('keeps the high-water wall time during the second pass of a repeated interval', () => {
    const t = ms('2026-11-01T06:20:00Z'); // 01:20 EST, after 01:59:59.999 EDT was shown
    expect(NY.wallOf(t)).toBe(wall('2026-11-01T01:20:00'));
    expect(NY.highWater(t)).toBe(wall('2026-11-01T01:59:59.999'));
    expect(NY.highWater(ms('2026-11-01T07:20:00Z'))).toBe(wall('2026-11-01T02:20:00'));
    expect(LH.highWater(ms('2026-04-04T15:10:00Z'))).toBe(wall('2026-04-05T01:59:59.999'));
    // Every-second cron asked from inside the second pass goes straight to 02:00 EST.
    const everySecond = parseSchedule('* * * * * *', { timezone: 'America/New_York' });
    expect(iso(everySecond.next(ms('2026-11-01T06:00:00.500Z')))).toBe('2026-11-01T07:00:00.000Z');
    expect(iso(everySecond.next(ms('2026-11-01T05:59:59Z')))).toBe('2026-11-01T07:00:00.000Z');
  });

  it('wallMs takes years 0-99 literally', () => {
    expect(new Date(wallMs(99, 12, 31)).getUTCFullYear()).toBe(99);
    expect(wallMs(2026, 5, 13, 10, 20, 30)).toBe(ms('2026-05-13T10:20:30Z'));
  });
});

describe('zone properties', () => {
  const zones = [
    'America/New_York',
    'Europe/London',
    'Australia/Lord_Howe',
    'America/Santiago',
    'Asia/Kolkata',
  ];
  const transitions = [
    '2026-03-08T07:00:00Z',
    '2026-11-01T06:00:00Z',
    '2026-03-29T01:00:00Z',
    '2026-10-25T01:00:00Z',
    '2026-10-03T15:30:00Z',
    '2026-04-04T15:00:00Z',
    '2026-09-06T04:00:00Z',
    '2026-04-05T03:00:00Z',
  ].map(Date.parse);
  const instant = fc.oneof(
    fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2060, 0, 1) }),
    fc
      .tuple(fc.constantFrom(...transitions), fc.integer({ min: -3 * HOUR, max: 3 * HOUR }))
      .map(([t, d]) => t + d),
  );

  it('agrees with Intl formatToParts, and instantOf is the earliest instant showing the wall time or later', () => {
    fc.assert(
      fc.property(fc.constantFrom(...zones), instant, fc.integer({ min: 0, max: 2 * HOUR }), (name, t, d) => {
        const zone = getZone(name);
        expect(zone.wallOf(t)).toBe(wallOf(t, name));
        expect(zone.offset(t)).toBe(offsetOf(t, name));
        const w = zone.wallOf(t);
        const first = zone.instantOf(w);
        expect(first).toBeLessThanOrEqual(t);
        expect(zone.wallOf(first)).toBe(w);
        // instantOf is monotone, and lands at or past its wall time.
        expect(zone.instantOf(w + d)).toBeGreaterThanOrEqual(first);
        expect(zone.wallOf(zone.instantOf(w + d))).toBeGreaterThanOrEqual(w + d);
        expect(zone.wallOf(zone.instantOf(w + d) - 1)).toBeLessThan(w + d);
        // The high-water mark is the clock except during a second pass, and never goes back.
        expect(zone.highWater(t)).toBeGreaterThanOrEqual(w);
        expect(zone.highWater(t + d)).toBeGreaterThanOrEqual(zone.highWater(t));
        const byMinute = Math.max(...Array.from({ length: 40 }, (_, i) => wallOf(t - i * 3 * MINUTE, name)));
        expect(zone.highWater(t)).toBeGreaterThanOrEqual(byMinute);
      }),
      { numRuns: 200 },
    );
  });
});
