import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSchedule } from '../../../../shared/schedule/schedule.ts';
import { cronParserIncludes, HOUR, iso, MINUTE, ms, referenceFires } from './helpers.ts';

/**
 * 2026 transitions used below:
 *  America/New_York     spring 2026-03-08 02:00 EST → 03:00 EDT (07:00Z); fall 2026-11-01 02:00 EDT → 01:00 EST (06:00Z)
 *  Europe/London        spring 2026-03-29 01:00 GMT → 02:00 BST (01:00Z); fall 2026-10-25 02:00 BST → 01:00 GMT (01:00Z)
 *  Australia/Lord_Howe  spring 2026-10-04 02:00 +10:30 → 02:30 +11 (10-03 15:30Z); fall 2026-04-05 02:00 +11 → 01:30 +10:30 (04-04 15:00Z)
 */
const NY = 'America/New_York';
const LON = 'Europe/London';
const LH = 'Australia/Lord_Howe';

function fires(expression: string, timezone: string, afterIso: string, count: number): (string | null)[] {
  const s = parseSchedule(expression, { timezone });
  const out: (string | null)[] = [];
  let t: number | null = ms(afterIso);
  for (let i = 0; i < count && t !== null; i++) {
    t = s.next(t);
    out.push(iso(t));
  }
  return out;
}

interface Row {
  name: string;
  expression: string;
  tz: string;
  after: string;
  expected: string[];
}

const table: Row[] = [
  // Daily job at a wall time inside the spring-forward gap: once, at the first instant after the gap.
  {
    name: 'New York daily 02:30 in the gap → 03:00 EDT',
    expression: '0 30 2 * * *',
    tz: NY,
    after: '2026-03-07T12:00:00Z',
    expected: ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z'],
  },
  {
    name: 'New York daily 02:30 in the gap, 5-field form',
    expression: '30 2 * * *',
    tz: NY,
    after: '2026-03-07T12:00:00Z',
    expected: ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z'],
  },
  {
    name: 'London daily 01:30 in the gap → 02:00 BST',
    expression: '0 30 1 * * *',
    tz: LON,
    after: '2026-03-28T12:00:00Z',
    expected: ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z'],
  },
  {
    name: 'Lord Howe daily 02:15 in the 30-minute gap → 02:30 +11',
    expression: '0 15 2 * * *',
    tz: LH,
    after: '2026-10-03T00:00:00Z',
    expected: ['2026-10-03T15:30:00.000Z', '2026-10-04T15:15:00.000Z'],
  },
  // Daily job at a wall time that occurs twice: once, at the first occurrence.
  {
    name: 'New York daily 01:30 in the repeated hour → 01:30 EDT only',
    expression: '0 30 1 * * *',
    tz: NY,
    after: '2026-10-31T12:00:00Z',
    expected: ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z'],
  },
  {
    name: 'London daily 01:30 in the repeated hour → 01:30 BST only',
    expression: '0 30 1 * * *',
    tz: LON,
    after: '2026-10-24T12:00:00Z',
    expected: ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z'],
  },
  {
    name: 'Lord Howe daily 01:45 in the repeated half hour → 01:45 +11 only',
    expression: '0 45 1 * * *',
    tz: LH,
    after: '2026-04-04T00:00:00Z',
    expected: ['2026-04-04T14:45:00.000Z', '2026-04-05T15:15:00.000Z'],
  },
  // @daily at midnight is unaffected in these zones but follows the zone's offset change.
  {
    name: 'New York @daily across spring forward',
    expression: '@daily',
    tz: NY,
    after: '2026-03-07T12:00:00Z',
    expected: ['2026-03-08T05:00:00.000Z', '2026-03-09T04:00:00.000Z'],
  },
  {
    name: 'Santiago @daily when midnight itself is skipped → 01:00 (first instant after the gap)',
    expression: '@daily',
    tz: 'America/Santiago',
    after: '2026-09-05T12:00:00Z',
    expected: ['2026-09-06T04:00:00.000Z', '2026-09-07T03:00:00.000Z'],
  },
  // Hourly jobs across the transition.
  {
    name: 'New York hourly at :30 across spring forward (02:30 → 03:00 EDT)',
    expression: '0 30 * * * *',
    tz: NY,
    after: '2026-03-08T05:00:00Z',
    expected: [
      '2026-03-08T05:30:00.000Z',
      '2026-03-08T06:30:00.000Z',
      '2026-03-08T07:00:00.000Z',
      '2026-03-08T07:30:00.000Z',
      '2026-03-08T08:30:00.000Z',
    ],
  },
  {
    name: 'New York hourly at :30 across fall back (01:30 once, at EDT)',
    expression: '0 30 * * * *',
    tz: NY,
    after: '2026-11-01T03:00:00Z',
    expected: [
      '2026-11-01T03:30:00.000Z',
      '2026-11-01T04:30:00.000Z',
      '2026-11-01T05:30:00.000Z',
      '2026-11-01T07:30:00.000Z',
      '2026-11-01T08:30:00.000Z',
    ],
  },
  {
    name: 'New York @hourly across spring forward (02:00 and 03:00 are one fire)',
    expression: '@hourly',
    tz: NY,
    after: '2026-03-08T05:30:00Z',
    expected: ['2026-03-08T06:00:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-08T08:00:00.000Z'],
  },
  {
    name: 'New York @hourly across fall back (01:00 EDT, then 02:00 EST)',
    expression: '@hourly',
    tz: NY,
    after: '2026-11-01T03:30:00Z',
    expected: ['2026-11-01T04:00:00.000Z', '2026-11-01T05:00:00.000Z', '2026-11-01T07:00:00.000Z'],
  },
  {
    name: 'London hourly at :30 across spring forward',
    expression: '0 30 * * * *',
    tz: LON,
    after: '2026-03-28T23:00:00Z',
    expected: [
      '2026-03-28T23:30:00.000Z',
      '2026-03-29T00:30:00.000Z',
      '2026-03-29T01:00:00.000Z',
      '2026-03-29T01:30:00.000Z',
      '2026-03-29T02:30:00.000Z',
    ],
  },
  {
    name: 'London hourly at :30 across fall back',
    expression: '0 30 * * * *',
    tz: LON,
    after: '2026-10-24T22:00:00Z',
    expected: [
      '2026-10-24T22:30:00.000Z',
      '2026-10-24T23:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T02:30:00.000Z',
      '2026-10-25T03:30:00.000Z',
    ],
  },
  {
    name: 'Lord Howe hourly at :15 across spring forward (02:15 → 02:30 +11)',
    expression: '0 15 * * * *',
    tz: LH,
    after: '2026-10-03T13:00:00Z',
    expected: [
      '2026-10-03T13:45:00.000Z',
      '2026-10-03T14:45:00.000Z',
      '2026-10-03T15:30:00.000Z',
      '2026-10-03T16:15:00.000Z',
      '2026-10-03T17:15:00.000Z',
    ],
  },
  {
    name: 'Lord Howe hourly at :45 across fall back (01:45 once, at +11)',
    expression: '0 45 * * * *',
    tz: LH,
    after: '2026-04-04T12:00:00Z',
    expected: [
      '2026-04-04T12:45:00.000Z',
      '2026-04-04T13:45:00.000Z',
      '2026-04-04T14:45:00.000Z',
      '2026-04-04T16:15:00.000Z',
      '2026-04-04T17:15:00.000Z',
    ],
  },
  {
    name: 'Lord Howe hourly at :15 across fall back (01:15 is before the repeated half hour)',
    expression: '0 15 * * * *',
    tz: LH,
    after: '2026-04-04T12:00:00Z',
    expected: [
      '2026-04-04T12:15:00.000Z',
      '2026-04-04T13:15:00.000Z',
      '2026-04-04T14:15:00.000Z',
      '2026-04-04T15:45:00.000Z',
    ],
  },
  {
    name: 'Lord Howe every 30 minutes across spring forward (02:00 and 02:30 are one fire)',
    expression: '0 */30 * * * *',
    tz: LH,
    after: '2026-10-03T14:00:00Z',
    expected: [
      '2026-10-03T14:30:00.000Z',
      '2026-10-03T15:00:00.000Z',
      '2026-10-03T15:30:00.000Z',
      '2026-10-03T16:00:00.000Z',
    ],
  },
  {
    name: 'Lord Howe every 15 minutes across fall back (no second pass)',
    expression: '0 */15 * * * *',
    tz: LH,
    after: '2026-04-04T14:00:00Z',
    expected: [
      '2026-04-04T14:15:00.000Z',
      '2026-04-04T14:30:00.000Z',
      '2026-04-04T14:45:00.000Z',
      '2026-04-04T15:30:00.000Z',
      '2026-04-04T15:45:00.000Z',
    ],
  },
  // @at without an offset is a wall time and follows the same rule.
  {
    name: 'New York @at a wall time in the gap',
    expression: '@at 2026-03-08T02:30',
    tz: NY,
    after: '2026-03-01T00:00:00Z',
    expected: ['2026-03-08T07:00:00.000Z'],
  },
  {
    name: 'New York @at a repeated wall time → first occurrence',
    expression: '@at 2026-11-01T01:30:00',
    tz: NY,
    after: '2026-10-01T00:00:00Z',
    expected: ['2026-11-01T05:30:00.000Z'],
  },
  {
    name: 'Lord Howe @at a wall time in the gap',
    expression: '@at 2026-10-04T02:10',
    tz: LH,
    after: '2026-10-01T00:00:00Z',
    expected: ['2026-10-03T15:30:00.000Z'],
  },
];

describe('DST table', () => {
  it.each(table)('$name', ({ expression, tz, after, expected }) => {
    expect(fires(expression, tz, after, expected.length)).toEqual(expected);
    // between agrees with next over the same span.
    const s = parseSchedule(expression, { timezone: tz });
    const last = expected[expected.length - 1] ?? after;
    expect(s.between(ms(after) + 1, ms(last) + 1).map(iso)).toEqual(expected);
  });

  it('fires nothing during the second pass through a repeated hour', () => {
    const s = parseSchedule('0 * * * * *', { timezone: NY });
    const times = s.between(ms('2026-11-01T05:00:00Z'), ms('2026-11-01T07:05:00Z'));
    expect(times.filter((t) => t >= ms('2026-11-01T06:00:00Z') && t < ms('2026-11-01T07:00:00Z'))).toEqual(
      [],
    );
    expect(times.length).toBe(60 + 5);
    // Asking from inside the second pass goes straight to 02:00 EST.
    expect(iso(s.next(ms('2026-11-01T06:20:00Z')))).toBe('2026-11-01T07:00:00.000Z');
  });

  it('collapses every selected wall time in a gap into one fire', () => {
    const s = parseSchedule('0 * * * * *', { timezone: NY });
    const times = s.between(ms('2026-03-08T06:58:00Z'), ms('2026-03-08T07:03:00Z')).map(iso);
    expect(times).toEqual([
      '2026-03-08T06:58:00.000Z',
      '2026-03-08T06:59:00.000Z',
      '2026-03-08T07:00:00.000Z',
      '2026-03-08T07:01:00.000Z',
      '2026-03-08T07:02:00.000Z',
    ]);
  });

  it('@every ignores time zones and DST', () => {
    const from = ms('2026-11-01T04:00:00Z');
    const utc = parseSchedule('@every 1h', { timezone: 'UTC' }).between(from, from + 5 * HOUR);
    const ny = parseSchedule('@every 1h', { timezone: NY }).between(from, from + 5 * HOUR);
    expect(ny).toEqual(utc);
    expect(ny).toEqual([0, 1, 2, 3, 4].map((k) => from + k * HOUR));
    const lh = parseSchedule('@every 30m', { timezone: LH }).between(
      ms('2026-10-03T15:00:00Z'),
      ms('2026-10-03T16:01:00Z'),
    );
    expect(lh.map(iso)).toEqual([
      '2026-10-03T15:00:00.000Z',
      '2026-10-03T15:30:00.000Z',
      '2026-10-03T16:00:00.000Z',
    ]);
  });
});

/** Transition instants (2026) with a window of ±3 hours around each. */
const transitions: Array<[string, string]> = [
  [NY, '2026-03-08T07:00:00Z'],
  [NY, '2026-11-01T06:00:00Z'],
  [LON, '2026-03-29T01:00:00Z'],
  [LON, '2026-10-25T01:00:00Z'],
  [LH, '2026-10-03T15:30:00Z'],
  [LH, '2026-04-04T15:00:00Z'],
];

const minuteField = fc.oneof(
  fc.constant('*'),
  fc.integer({ min: 0, max: 59 }).map(String),
  fc.integer({ min: 2, max: 30 }).map((s) => `*/${s}`),
  fc
    .tuple(fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 59 }))
    .map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
  fc.uniqueArray(fc.integer({ min: 0, max: 59 }), { minLength: 2, maxLength: 4 }).map((v) => v.join(',')),
);
const hourField = fc.oneof(
  fc.constant('*'),
  fc.integer({ min: 0, max: 4 }).map(String),
  fc.integer({ min: 2, max: 5 }).map((s) => `*/${s}`),
  fc.constantFrom('0-3', '1,2', '2', '1', '1-2', '23,0,1,2,3'),
);

describe('DST rule against a brute-force reference', () => {
  it.each(transitions)('%s around %s', (tz, at) => {
    const from = ms(at) - 3 * HOUR;
    const to = ms(at) + 3 * HOUR;
    fc.assert(
      fc.property(minuteField, hourField, (minute, hour) => {
        const expr = `0 ${minute} ${hour} * * *`;
        const expected = referenceFires((w) => cronParserIncludes(expr, w), tz, from, to);
        const actual = parseSchedule(expr, { timezone: tz }).between(from, to);
        expect(actual.map(iso)).toEqual(expected.map(iso));
      }),
      { numRuns: 25 },
    );
  });

  it('agrees on the hourly and daily descriptors', () => {
    for (const [tz, at] of transitions) {
      const from = ms(at) - 26 * HOUR;
      const to = ms(at) + 26 * HOUR;
      for (const [expr, cron] of [
        ['@hourly', '0 0 * * * *'],
        ['@daily', '0 0 0 * * *'],
        ['@minutely', '0 * * * * *'],
      ] as const) {
        const expected = referenceFires((w) => cronParserIncludes(cron, w), tz, from, to);
        expect(parseSchedule(expr, { timezone: tz }).between(from, to).map(iso)).toEqual(expected.map(iso));
      }
    }
  });

  it('the reference itself sees the gap and the repeat', () => {
    // Guards the oracle: in New York, a 01:30 job on the fall-back day fires once; 02:30 on spring day once.
    const sel = (h: number, m: number) => (w: number) =>
      new Date(w).getUTCHours() === h && new Date(w).getUTCMinutes() === m;
    expect(
      referenceFires(sel(1, 30), NY, ms('2026-11-01T03:00:00Z'), ms('2026-11-01T09:00:00Z')).map(iso),
    ).toEqual(['2026-11-01T05:30:00.000Z']);
    expect(
      referenceFires(sel(2, 30), NY, ms('2026-03-08T04:00:00Z'), ms('2026-03-08T10:00:00Z')).map(iso),
    ).toEqual(['2026-03-08T07:00:00.000Z']);
    expect(MINUTE).toBe(60_000);
  });
});
