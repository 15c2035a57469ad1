import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writeEach } from '../../../../shared/aws/write-each.ts';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('writeEach', () => {
  it('answers every input in order, never more than `concurrency` writes in flight', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 80 }),
        fc.integer({ min: 1, max: 40 }),
        async (delays, concurrency) => {
          let inFlight = 0;
          let most = 0;
          const answers = await writeEach(
            delays.map((d, i) => ({ d, i })),
            async ({ d, i }) => {
              most = Math.max(most, ++inFlight);
              for (let k = 0; k < d; k++) await tick();
              inFlight--;
              return i * 2;
            },
            concurrency,
          );
          expect(answers).toEqual(delays.map((_, i) => i * 2));
          expect(most).toBeLessThanOrEqual(concurrency);
          // As many at once as allowed: the writes do not go one by one.
          if (delays.length > 0) expect(most).toBe(Math.min(concurrency, delays.length));
        },
      ),
    );
  });

  it('fails when a write fails, and starts no write after it', async () => {
    const started: number[] = [];
    const write = async (i: number) => {
      started.push(i);
      await tick();
      if (i === 0) throw new Error('the store did not answer');
      await tick();
      return i;
    };
    const inputs = Array.from({ length: 20 }, (_, i) => i);
    await expect(writeEach(inputs, write, 3)).rejects.toThrow('the store did not answer');
    await new Promise((r) => setTimeout(r, 20));
    // 0, 1 and 2 were in flight together; 0 failed first, and no input after them was started.
    expect(started).toEqual([0, 1, 2]);
  });
});
