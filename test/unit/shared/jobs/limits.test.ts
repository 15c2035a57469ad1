/**
 * The job's limits: every field a user writes is bounded, durations are non-negative and sane, and no input
 * makes validation throw anything but a ValidationError naming a field (property-tested with fast-check).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../shared/errors.ts';
import { validateJob } from '../../../../shared/jobs/job.ts';
import { LIMITS } from '../../../../shared/jobs/limits.ts';

const base = { name: 'lim', schedule: '@every 1m', executor: 'shell', executor_config: { command: 'true' } };

function refusal(input: unknown): { field: string; rule: string } {
  try {
    validateJob(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    const { field, rule } = error as ValidationError;
    return { field, rule };
  }
  throw new Error('accepted');
}

describe('job limits', () => {
  it.each([
    ['catchup_window', { catchup_window: '-1h' }, /not be negative/],
    ['catchup_window', { catchup_window: '1000h' }, /at most 744h/],
    ['retry_backoff', { retry_backoff: '-10s' }, /not be negative/],
    ['retry_backoff', { retry_backoff: '25h' }, /at most 24h/],
    ['executor_config.timeout', { executor_config: { command: 'true', timeout: '200h' } }, /at most 168h/],
    ['parent_job', { parent_job: 'x'.repeat(201) }, /at most 200/],
    ['parent_job', { parent_job: 'Not A Name' }, /job name/],
    ['on_failure_job', { on_failure_job: 'a/b' }, /job name/],
    ['displayname', { displayname: 'd'.repeat(257) }, /at most 256/],
    ['schedule', { schedule: `@every ${'1'.repeat(300)}s` }, /at most 256/],
    ['tags.role', { tags: { role: 'web:0' } }, /between 1 and 1000/],
    ['tags.role', { tags: { role: 'web:1001' } }, /between 1 and 1000/],
    ['tags.role', { tags: { role: 'v'.repeat(257) } }, /at most 256/],
    ['tags.role', { tags: { role: 'a,b' } }, /no commas/],
    [
      'tags',
      { tags: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) },
      /at most 32/,
    ],
    [
      'tags',
      { tags: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'v'.repeat(200)])) },
      /1024 bytes/,
    ],
    [
      'metadata',
      { metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) },
      /at most 64/,
    ],
    ['metadata.k', { metadata: { k: 'v'.repeat(1025) } }, /at most 1024 bytes/],
    [
      'executor_config.command',
      { executor_config: { command: 'c'.repeat(65 * 1024) } },
      /at most 65536 bytes/,
    ],
    ['success_exit_codes', { success_exit_codes: Array.from({ length: 257 }, () => 0) }, /at most 256/],
    [
      'body',
      {
        executor_config: Object.fromEntries(
          Array.from({ length: 60 }, (_, i) => [`k${i}`, 'x'.repeat(3000)]),
        ),
        executor: 'custom',
      },
      /at most 131072 bytes as JSON/,
    ],
  ])('%s: %j', (field, extra, rule) => {
    const refused = refusal({ ...base, ...extra });
    expect(refused.field).toBe(field);
    expect(refused.rule).toMatch(rule);
  });

  it('takes the largest values within the limits', () => {
    const def = validateJob({
      ...base,
      name: 'n'.repeat(LIMITS.name),
      tags: { role: 'web:1000' },
      retry_backoff: '24h',
      catchup_window: '0s',
      metadata: { k: 'v'.repeat(LIMITS.metadataValue) },
    });
    expect(def.tags.role).toBe('web:1000');
  });

  it('keeps a field name short whatever key the client sent', () => {
    const refused = refusal({ ...base, tags: { ['k'.repeat(5000)]: 'v' } });
    expect(refused.field.length).toBeLessThan(100);
  });

  it('answers any JSON value with a definition within the limits or a ValidationError (property)', () => {
    const value = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.string({ minLength: 200, maxLength: 3000 }),
      fc.constantFrom('-1h', '1h', '0', '@every 1s', 'web:5', '__proto__', 'constructor', 'x:99999'),
    );
    const field = fc.constantFrom(
      'name',
      'displayname',
      'schedule',
      'timezone',
      'tags',
      'metadata',
      'retries',
      'retry_backoff',
      'parent_job',
      'on_failure_job',
      'concurrency',
      'executor',
      'executor_config',
      'processors',
      'catchup_window',
      'catchup_max',
      'success_exit_codes',
      'starts_at',
      'expires_at',
      '__proto__',
    );
    const body = fc.dictionary(
      field,
      fc.oneof(value, fc.dictionary(fc.string(), value), fc.array(value, { maxLength: 5 })),
    );
    fc.assert(
      fc.property(body, fc.boolean(), (extra, keepBase) => {
        const input = keepBase ? { ...base, ...extra } : extra;
        try {
          const def = validateJob(input);
          expect(Buffer.byteLength(JSON.stringify(def))).toBeLessThanOrEqual(LIMITS.jobBytes);
          expect(Object.keys(def.tags).length).toBeLessThanOrEqual(LIMITS.tags);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
          expect((error as ValidationError).field.length).toBeLessThan(200);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
