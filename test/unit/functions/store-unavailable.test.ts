/** A store that does not answer or throttles is a 503 (retry), never a 500; anything else stays a 500. */
import { describe, expect, it } from 'vitest';
import { errorResponse } from '../../../functions/api/errors.ts';

const named = (name: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, ...extra });

describe('errorResponse for a store that is not answering', () => {
  it.each([
    named('TimeoutError'),
    named('ThrottlingException'),
    named('ProvisionedThroughputExceededException'),
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), { code: 'ECONNREFUSED' }),
    named('InternalFailure', { $metadata: { httpStatusCode: 500 } }),
  ])('answers 503 to %s', (error) => {
    expect(errorResponse(error)).toEqual({
      statusCode: 503,
      body: { error: expect.stringMatching(/store is not answering/) },
    });
  });

  it('keeps a defect a 500 without internals', () => {
    expect(errorResponse(new TypeError('x is undefined'))).toEqual({
      statusCode: 500,
      body: { error: 'internal error' },
    });
    expect(
      errorResponse(named('ValidationException', { $metadata: { httpStatusCode: 400 } })).statusCode,
    ).toBe(500);
  });
});
