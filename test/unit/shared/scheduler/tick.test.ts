/**
 * The tick's guards against an overloaded store: which failures count as transient (a chunk is then tried
 * again whole, never halved), and the per-process limit on chunks in flight shared by every shard tick.
 * The tick itself runs against the emulators in test/integration (scheduler, sharding, isolation).
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { isTransient, Slots } from '../../../../shared/scheduler/tick.ts';

const named = (name: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, ...extra });

describe('isTransient', () => {
  it('takes timeouts, throttling and server errors for load', () => {
    expect(isTransient(named('TimeoutError', { code: 'ETIMEDOUT' }))).toBe(true);
    expect(isTransient(named('ProvisionedThroughputExceededException'))).toBe(true);
    expect(isTransient(named('ThrottlingException'))).toBe(true);
    expect(isTransient(named('Error', { code: 'ECONNRESET' }))).toBe(true);
    expect(isTransient(named('SomethingElse', { $metadata: { httpStatusCode: 503 } }))).toBe(true);
  });

  it('takes a transaction cancelled only by conflicts for load, one with a refused item not', () => {
    const cancelled = (...codes: string[]) =>
      new TransactionCanceledException({
        message: 'cancelled',
        $metadata: { httpStatusCode: 400 },
        CancellationReasons: codes.map((Code) => ({ Code })),
      });
    expect(isTransient(cancelled('None', 'TransactionConflict'))).toBe(true);
    expect(isTransient(cancelled('TransactionConflict', 'ValidationError'))).toBe(false);
    expect(isTransient(cancelled('ConditionalCheckFailed'))).toBe(false);
    expect(isTransient(cancelled())).toBe(false);
  });

  it('does not take a job-specific refusal for load (that chunk is halved to isolate the job)', () => {
    expect(isTransient(named('ValidationException', { $metadata: { httpStatusCode: 400 } }))).toBe(false);
    expect(isTransient(new Error('no live agent'))).toBe(false);
    expect(isTransient('boom')).toBe(false);
    expect(isTransient(null)).toBe(false);
  });
});

describe('Slots', () => {
  it('lets at most its size through, the others in arrival order as slots are released', async () => {
    const slots = new Slots(2);
    const order: number[] = [];
    const take = (n: number) => slots.acquire().then(() => order.push(n));
    const all = [take(1), take(2), take(3), take(4)];
    await Promise.resolve();
    await Promise.resolve();
    expect(order).toEqual([1, 2]);
    slots.release();
    await all[2];
    expect(order).toEqual([1, 2, 3]);
    slots.release();
    await all[3];
    expect(order).toEqual([1, 2, 3, 4]);
    slots.release();
    slots.release();
    // Both slots free again: two acquire at once.
    await Promise.all([slots.acquire(), slots.acquire()]);
  });
});
