/** The pure parts of the UI's views: the jobs list's query, a 400's field, the dashboard's counts. */
import { describe, expect, it } from 'vitest';
import { countByStatus, ranRecently } from '../../../../web/src/views/dashboard.ts';
import { fieldFor } from '../../../../web/src/views/form.ts';
import { listQuery, listState } from '../../../../web/src/views/jobs.ts';

describe('jobs list query', () => {
  it('defaults to the first 25 by name', () => {
    expect(listQuery(listState(new URLSearchParams()))).toBe('_sort=name&_order=ASC&_start=0&_end=25');
  });

  it('turns the filters into the API parameters, metadata as metadata[key]=value, a tag as tags[key]=value', () => {
    const st = listState(
      new URLSearchParams(
        'q=nightly&status=failed&disabled=false&meta=team%3Ddata&tag=role%3Dweb&sort=next&order=DESC&page=2&size=10',
      ),
    );
    expect(Object.fromEntries(new URLSearchParams(listQuery(st)))).toEqual({
      _sort: 'next',
      _order: 'DESC',
      _start: '20',
      _end: '30',
      q: 'nightly',
      status: 'failed',
      disabled: 'false',
      'metadata[team]': 'data',
      'tags[role]': 'web',
    });
  });

  it('ignores page sizes it does not offer and negative pages', () => {
    const st = listState(new URLSearchParams('size=100000&page=-3'));
    expect([st.size, st.page]).toEqual([25, 0]);
  });
});

describe('fieldFor', () => {
  const keys = ['name', 'schedule', 'executor', 'executor_config', 'tags'];
  it('finds the field a 400 names, nested keys under their map', () => {
    expect(fieldFor(keys, 'schedule')).toBe('schedule');
    expect(fieldFor(keys, 'executor_config.url')).toBe('executor_config');
    expect(fieldFor(keys, 'tags[role]')).toBe('tags');
    expect(fieldFor(keys, 'catchup_window')).toBeUndefined();
  });
});

describe('countByStatus', () => {
  it('counts the last 24 h by status, leaving out launches not yet due', () => {
    const now = Date.parse('2026-01-02T00:00:00Z');
    const counts = countByStatus(
      [
        { id: '1', status: 'succeeded', started_at: '2026-01-01T12:00:00Z' },
        { id: '2', status: 'failed', started_at: '2026-01-01T13:00:00Z' },
        { id: '3', status: 'succeeded', started_at: '2025-12-31T23:00:00Z' },
        {
          id: '4',
          status: 'skipped',
          scheduled_at: '2026-01-01T14:00:00Z',
          started_at: '0001-01-01T00:00:00Z',
        },
        { id: '5', status: 'scheduled', scheduled_at: '2026-01-01T23:59:00Z' },
      ],
      now,
    );
    expect(Object.fromEntries(counts)).toMatchObject({ succeeded: 1, failed: 1, skipped: 1, running: 0 });
    expect(counts.map(([s]) => s)).not.toContain('scheduled');
  });
});

describe('ranRecently', () => {
  it('keeps the jobs with a success or error in the last 24 h, or running now', () => {
    const now = Date.parse('2026-01-02T00:00:00Z');
    const zero = '0001-01-01T00:00:00Z';
    const jobs = [
      { name: 'ok', schedule: '', last_success: '2026-01-01T12:00:00Z', last_error: zero },
      { name: 'err', schedule: '', last_success: zero, last_error: '2026-01-01T01:00:00Z' },
      { name: 'old', schedule: '', last_success: '2025-12-30T00:00:00Z', last_error: zero },
      { name: 'never', schedule: '', last_success: zero, last_error: zero },
      { name: 'busy', schedule: '', status: 'running', last_success: zero, last_error: zero },
    ];
    expect(ranRecently(jobs, now).map((j) => j.name)).toEqual(['ok', 'err', 'busy']);
  });
});
