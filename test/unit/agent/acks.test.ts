import { describe, expect, it } from 'vitest';
import { AckBatcher } from '../../../agent/acks.ts';

describe('AckBatcher', () => {
  it('deletes ten at a time per queue, the rest after a short wait', async () => {
    const calls: Array<[string, string[]]> = [];
    const acks = new AckBatcher(async (url, handles) => {
      calls.push([url, [...handles]]);
      return handles.map(() => null);
    }, 20);
    const a = Array.from({ length: 12 }, (_, i) => acks.ack('q1', `h${i}`));
    const b = acks.ack('q2', 'x');
    // The first ten go at once, in one request.
    expect(calls).toEqual([['q1', Array.from({ length: 10 }, (_, i) => `h${i}`)]]);
    await Promise.all([...a, b]);
    expect(calls.slice(1).sort()).toEqual([
      ['q1', ['h10', 'h11']],
      ['q2', ['x']],
    ]);
  });

  it('rejects the messages SQS did not delete, and all of a request that failed', async () => {
    let fail = false;
    const acks = new AckBatcher(async (_url, handles) => {
      if (fail) throw new Error('unreachable');
      return handles.map((h) => (h === 'bad' ? 'ReceiptHandleIsInvalid: expired' : null));
    }, 5);
    const [good, bad] = [acks.ack('q', 'good'), acks.ack('q', 'bad')];
    await expect(good).resolves.toBeUndefined();
    await expect(bad).rejects.toThrow(/ReceiptHandleIsInvalid/);
    fail = true;
    await expect(acks.ack('q', 'any')).rejects.toThrow('unreachable');
  });
});
