import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errorResponse } from '../../../functions/api/errors.ts';
import { ConflictError, NotFoundError, PausedError, ValidationError } from '../../../shared/errors.ts';

describe('errorResponse', () => {
  it('maps domain errors to their status and names the field of a validation error', () => {
    expect(errorResponse(new ValidationError('schedule', 'is required'))).toEqual({
      statusCode: 400,
      body: { error: 'schedule: is required', field: 'schedule', rule: 'is required' },
    });
    expect(errorResponse(new NotFoundError('x')).statusCode).toBe(404);
    expect(errorResponse(new ConflictError('x')).statusCode).toBe(409);
    expect(errorResponse(new PausedError('x')).statusCode).toBe(503);
  });

  it('never leaks an unexpected error and always answers a valid status', () => {
    fc.assert(
      fc.property(fc.anything(), (thrown) => {
        const { statusCode, body } = errorResponse(thrown);
        expect(statusCode).toBeGreaterThanOrEqual(400);
        expect(statusCode).toBeLessThan(600);
        if (statusCode === 500) expect(body).toEqual({ error: 'internal error' });
      }),
    );
  });
});
