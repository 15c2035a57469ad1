/**
 * Many independent conditional writes (the planner's puts of new executions and its `nextRunAt`
 * advances), each its own request, WRITE_CONCURRENCY at a time per call.
 *
 * They were grouped into TransactWriteItems calls of 100 items (fewer round trips), but a transaction
 * bills every item twice — 2 write units a KB, and 2 for each index write it causes — so a planned
 * execution cost 4 units where a conditional `PutItem` costs 2 (1 + its `byActive` entry): the largest
 * writer per execution (README, Cost). Nothing needed the grouping to be atomic: every write here is
 * conditional and answered alone. Measured on DynamoDB Local (12-07, 3,000 puts, warm): 100-item
 * transactions 4 at a time ~2,000 writes a second, single puts 64 at a time ~1,500.
 */

/** Writes in flight per call. */
export const WRITE_CONCURRENCY = 32;

/**
 * `single` for every input, at most `concurrency` at a time; answers in input order. The first write that
 * fails fails the call, and no write starts after it (the caller tries the whole again, or leaves it).
 */
export async function writeEach<T, A>(
  inputs: readonly T[],
  single: (input: T) => Promise<A>,
  concurrency = WRITE_CONCURRENCY,
): Promise<A[]> {
  const answers = new Array<A>(inputs.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < inputs.length && !failed) {
      const i = next++;
      try {
        answers[i] = await single(inputs[i]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, inputs.length) }, worker));
  return answers;
}
