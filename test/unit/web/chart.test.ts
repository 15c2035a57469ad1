/** The run-history chart's data: which runs it can place, and their duration and lateness. */
import { describe, expect, it } from 'vitest';
import { runsOf } from '../../../web/src/chart.ts';

const e = (id: string, status: string, scheduled: string, started?: string, finished?: string) => ({
  id,
  status,
  scheduled_at: `2026-01-01T00:00:${scheduled}Z`,
  started_at: started ? `2026-01-01T00:00:${started}Z` : '0001-01-01T00:00:00Z',
  finished_at: finished ? `2026-01-01T00:00:${finished}Z` : '0001-01-01T00:00:00Z',
});

describe('runsOf', () => {
  it('places started runs in start order, with duration and their fire time; running ones up to now', () => {
    const now = Date.parse('2026-01-01T00:00:20Z');
    const runs = runsOf(
      [
        e('c', 'running', '15', '16'),
        e('a', 'succeeded', '01', '01', '03'),
        e('b', 'failed', '05', '07', '08'),
        e('d', 'scheduled', '30'),
        e('x', 'skipped', '10'),
      ],
      now,
    );
    expect(runs.map((r) => [r.id, r.duration, r.started - r.scheduled])).toEqual([
      ['a', 2000, 0],
      ['b', 1000, 2000],
      ['c', 4000, 1000],
    ]);
  });
});
