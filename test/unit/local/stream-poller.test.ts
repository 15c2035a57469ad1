import { describe, expect, it } from 'vitest';
import { retryDelay } from '../../../local/stream-poller.ts';

describe('retryDelay', () => {
  it('doubles from the polling interval and stops at 10 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => retryDelay(200, n))).toEqual([
      200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000, 10_000, 10_000,
    ]);
    expect(retryDelay(200, 10_000)).toBe(10_000);
  });
  it('spreads ten attempts over more than half a minute, so a store stall of 30 s does not use them up', () => {
    let total = 0;
    for (let n = 1; n < 10; n++) total += retryDelay(200, n);
    expect(total).toBeGreaterThan(30_000);
  });
});
