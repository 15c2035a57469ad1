import { describe, expect, it } from 'vitest';
import { missingBatchReads } from '../../bench/cost-meter.ts';

describe('the cost meter', () => {
  it("bills a BatchGetItem's keys that found no item, which DynamoDB Local reports as 0 units", () => {
    const input = {
      RequestItems: {
        Jobs: { Keys: [{ name: 'a' }, { name: 'b' }, { name: 'c' }], ConsistentRead: true },
        Control: { Keys: [{ pk: 'pause' }], ConsistentRead: true },
        Executions: { Keys: [{ k: 1 }, { k: 2 }] },
      },
    };
    // Jobs: two found, one unprocessed (asked again later, billed then); Control: the absent pause flag;
    // Executions: eventually consistent, both missing.
    const out = {
      Responses: { Jobs: [{}, {}], Control: [], Executions: [] },
      UnprocessedKeys: { Jobs: { Keys: [{ name: 'c' }] } },
    };
    expect(missingBatchReads(input, out)).toBe(1 + 2 * 0.5);
    expect(
      missingBatchReads(input, { Responses: { Jobs: [{}, {}, {}], Control: [{}], Executions: [{}, {}] } }),
    ).toBe(0);
  });
});
