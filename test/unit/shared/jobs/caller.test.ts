import { describe, expect, it } from 'vitest';
import { ANONYMOUS_CALLER, asCaller, callerOf, currentCaller } from '../../../../shared/jobs/caller.ts';

describe('callerOf', () => {
  it('takes the IAM ARN API Gateway verified, else the caller id, else anonymous', () => {
    expect(callerOf({ userArn: 'arn:aws:iam::1:user/a', caller: 'AIDA' })).toBe('arn:aws:iam::1:user/a');
    expect(callerOf({ userArn: null, caller: 'AROA:session' })).toBe('AROA:session');
    expect(callerOf({ userArn: ' ', caller: '' })).toBe(ANONYMOUS_CALLER);
    expect(callerOf(undefined)).toBe(ANONYMOUS_CALLER);
  });
});

describe('asCaller', () => {
  it('scopes the identity to one request, also across awaits and concurrent requests', async () => {
    const seen = await Promise.all(
      ['a', 'b'].map((who) =>
        asCaller(who, async () => {
          await new Promise((r) => setTimeout(r, who === 'a' ? 20 : 1));
          return currentCaller();
        }),
      ),
    );
    expect(seen).toEqual(['a', 'b']);
    expect(currentCaller()).toBe(ANONYMOUS_CALLER);
  });
});
