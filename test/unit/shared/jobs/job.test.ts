import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../shared/errors.ts';
import { firstFireAtOrAfter, validateJob } from '../../../../shared/jobs/job.ts';
import { parseTags } from '../../../../shared/jobs/tags.ts';

const base = {
  name: 'hello',
  schedule: '@every 2s',
  executor: 'shell',
  executor_config: { command: 'echo hello' },
};

function fieldOf(input: unknown): string {
  try {
    validateJob(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).field;
  }
  throw new Error('expected a validation error');
}

describe('validateJob', () => {
  it('normalizes a Dkron job with defaults', () => {
    const def = validateJob(base);
    expect(def).toMatchObject({
      name: 'hello',
      concurrency: 'allow',
      retries: 0,
      disabled: false,
      timezone: '',
    });
    expect(def.success_exit_codes).toEqual([0]);
  });

  it.each([
    [{ ...base, name: 'Hello' }, 'name'],
    [{ ...base, name: 'a b' }, 'name'],
    [{ ...base, name: '' }, 'name'],
    [{ ...base, name: undefined }, 'name'],
    [{ ...base, schedule: 'not a schedule' }, 'schedule'],
    [{ ...base, schedule: '' }, 'schedule'],
    [{ ...base, timezone: 'Mars/Olympus' }, 'timezone'],
    [{ ...base, concurrency: 'sometimes' }, 'concurrency'],
    [{ ...base, executor: 'Not Valid' }, 'executor'],
    [{ ...base, executor_config: { command: 'x', timeout: 'soon' } }, 'executor_config.timeout'],
    [{ ...base, executor_config: {} }, 'executor_config.command'],
    [{ ...base, retries: -1 }, 'retries'],
    [{ ...base, tags: { role: 'web:x' } }, 'tags.role'],
    [{ ...base, starts_at: 'tomorrow' }, 'starts_at'],
    [{ ...base, catchup_window: 'forever' }, 'catchup_window'],
    [{ ...base, parent_job: 'hello' }, 'parent_job'],
    [[base], 'body'],
  ])('rejects %j naming the field', (input, field) => {
    expect(fieldOf(input)).toBe(field);
  });

  it('accepts numbers and booleans in executor_config as strings (Dkron maps are string→string)', () => {
    const def = validateJob({ ...base, executor_config: { command: 'true', shell: true, timeout: '5s' } });
    expect(def.executor_config.shell).toBe('true');
  });

  it('does not require a schedule for a dependent job', () => {
    expect(validateJob({ ...base, schedule: undefined, parent_job: 'parent' }).schedule).toBe('');
  });
});

describe('firstFireAtOrAfter', () => {
  it('is null for disabled and @manually jobs, so they never enter the due index', () => {
    expect(firstFireAtOrAfter(validateJob({ ...base, disabled: true }), 0)).toBeNull();
    expect(firstFireAtOrAfter(validateJob({ ...base, schedule: '@manually' }), 0)).toBeNull();
  });

  it('respects starts_at and expires_at', () => {
    const def = validateJob({
      ...base,
      starts_at: '2030-01-01T00:00:00Z',
      expires_at: '2030-01-01T00:00:05Z',
    });
    expect(firstFireAtOrAfter(def, Date.parse('2029-01-01T00:00:00Z'))).toBe(
      Date.parse('2030-01-01T00:00:00Z'),
    );
    expect(firstFireAtOrAfter(def, Date.parse('2030-01-01T00:00:05.001Z'))).toBeNull();
  });
});

describe('parseTags', () => {
  it('splits Dkron counts and keeps the lowest', () => {
    expect(parseTags({ role: 'web:2', dc: 'eu:1' })).toEqual({
      selector: { role: 'web', dc: 'eu' },
      count: 1,
    });
    expect(parseTags({ role: 'web' })).toEqual({ selector: { role: 'web' }, count: null });
  });
});
