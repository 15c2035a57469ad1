import {
  ConditionalCheckFailedException,
  ProvisionedThroughputExceededException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  cancellation,
  ifCondition,
  isConditionFailed,
  isConditionFailedReason,
  onConditionFailed,
} from '../../../../shared/aws/conditional.ts';

const conditionFailed = (extra: Partial<ConditionalCheckFailedException> = {}) =>
  Object.assign(
    new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }),
    extra,
  );

const throttled = () => new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} });

const cancelled = (codes: string[]) =>
  new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: {},
    CancellationReasons: codes.map((Code) => ({ Code })),
  });

describe('isConditionFailed', () => {
  it('knows the SDK exception by class and by name (another copy of the SDK module)', () => {
    expect(isConditionFailed(conditionFailed())).toBe(true);
    expect(
      isConditionFailed(Object.assign(new Error('x'), { name: 'ConditionalCheckFailedException' })),
    ).toBe(true);
    expect(isConditionFailed(throttled())).toBe(false);
    expect(isConditionFailed(cancelled(['ConditionalCheckFailed']))).toBe(false);
    expect(isConditionFailed(undefined)).toBe(false);
    expect(isConditionFailed('ConditionalCheckFailedException')).toBe(false);
  });

  it('reads a cancellation reason', () => {
    expect(isConditionFailedReason({ Code: 'ConditionalCheckFailed' })).toBe(true);
    expect(isConditionFailedReason({ Code: 'None' })).toBe(false);
    expect(isConditionFailedReason({ Code: 'TransactionConflict' })).toBe(false);
    expect(isConditionFailedReason(undefined)).toBe(false);
  });
});

describe('ifCondition', () => {
  it('answers true for a write that went through, false for a failed condition', async () => {
    await expect(ifCondition(Promise.resolve({}))).resolves.toBe(true);
    await expect(ifCondition(Promise.reject(conditionFailed()))).resolves.toBe(false);
  });

  it('throws every other error unchanged', async () => {
    const error = throttled();
    await expect(ifCondition(Promise.reject(error))).rejects.toBe(error);
    const cancel = cancelled(['ConditionalCheckFailed']);
    await expect(ifCondition(Promise.reject(cancel))).rejects.toBe(cancel);
  });
});

describe('onConditionFailed', () => {
  it("answers the write's output, or the failure's answer", async () => {
    await expect(onConditionFailed(Promise.resolve({ Attributes: { a: 1 } }), () => null)).resolves.toEqual({
      Attributes: { a: 1 },
    });
    await expect(onConditionFailed(Promise.reject(conditionFailed()), () => null)).resolves.toBeNull();
  });

  it('hands the exception over: its old item, and as the cause of a domain error', async () => {
    const error = conditionFailed({ Item: { executionId: { S: 'e1' } } });
    await expect(onConditionFailed(Promise.reject(error), async (e) => e.Item?.executionId?.S)).resolves.toBe(
      'e1',
    );
    const thrown = await onConditionFailed(Promise.reject(error), (cause) => {
      throw new Error('conflict', { cause });
    }).catch((e: Error) => e);
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).cause).toBe(error);
  });

  it('throws other errors without asking the failure', async () => {
    const error = throttled();
    let asked = false;
    await expect(
      onConditionFailed(Promise.reject(error), () => {
        asked = true;
      }),
    ).rejects.toBe(error);
    expect(asked).toBe(false);
  });
});

describe('cancellation', () => {
  it('answers undefined for a transaction that went through', async () => {
    await expect(cancellation(Promise.resolve({}))).resolves.toBeUndefined();
  });

  it('names the first item whose condition failed, with every reason', async () => {
    const error = cancelled(['None', 'ConditionalCheckFailed', 'ConditionalCheckFailed']);
    const c = await cancellation(Promise.reject(error));
    expect(c?.conditionFailedAt).toBe(1);
    expect(c?.reasons.map((r) => r.Code)).toEqual([
      'None',
      'ConditionalCheckFailed',
      'ConditionalCheckFailed',
    ]);
    expect(c?.error).toBe(error);
  });

  it('answers a cancellation for another reason with no failed item', async () => {
    const c = await cancellation(Promise.reject(cancelled(['None', 'TransactionConflict'])));
    expect(c).toBeDefined();
    expect(c?.conditionFailedAt).toBeUndefined();
    const bare = await cancellation(
      Promise.reject(new TransactionCanceledException({ message: 'x', $metadata: {} })),
    );
    expect(bare).toEqual(expect.objectContaining({ conditionFailedAt: undefined, reasons: [] }));
  });

  it('throws what is not a cancellation, a single failed condition included', async () => {
    const single = conditionFailed();
    await expect(cancellation(Promise.reject(single))).rejects.toBe(single);
    const error = throttled();
    await expect(cancellation(Promise.reject(error))).rejects.toBe(error);
  });
});
