/**
 * The one place that recognises a failed DynamoDB condition. Stores wrap each conditional write in one
 * of these instead of a try/catch of their own, and follow one convention: a failed condition is an
 * answer, not an error. It comes out of a store as `false`, `null`, a named outcome or a typed domain
 * error (shared/errors.ts), never as the SDK's exception; every other error is thrown unchanged.
 */
import {
  type CancellationReason,
  ConditionalCheckFailedException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';

/**
 * A single write's condition was false. Judged by name as well as class, so an exception from another copy
 * of the SDK module (a bundled Lambda, a test double) is recognised too.
 */
export function isConditionFailed(error: unknown): error is ConditionalCheckFailedException {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as { name?: unknown } | null)?.name === 'ConditionalCheckFailedException'
  );
}

/** One item of a cancelled transaction was cancelled because its own condition was false. */
export function isConditionFailedReason(reason: CancellationReason | undefined): boolean {
  return reason?.Code === 'ConditionalCheckFailed';
}

/** True when the write went through, false when its condition was false. */
export async function ifCondition(write: Promise<unknown>): Promise<boolean> {
  return onConditionFailed(
    write.then(() => true),
    () => false,
  );
}

/**
 * The write's output, or `failed`'s answer when its condition was false (it may throw a domain error with
 * the exception as `cause`, or read the old item when the write asked for `ReturnValuesOnConditionCheckFailure`).
 */
export async function onConditionFailed<T, R>(
  write: Promise<T>,
  failed: (error: ConditionalCheckFailedException) => R | Promise<R>,
): Promise<T | R> {
  try {
    return await write;
  } catch (error) {
    if (isConditionFailed(error)) return failed(error);
    throw error;
  }
}

/** Why DynamoDB cancelled a transaction. */
export interface Cancellation {
  /**
   * Index (in TransactItems) of the first item whose condition was false; undefined when none was and the
   * transaction was cancelled for another reason (a conflicting transaction, throttling).
   */
  readonly conditionFailedAt: number | undefined;
  /** One reason per item, in TransactItems order (`Code: 'None'` for an item that was fine). */
  readonly reasons: readonly CancellationReason[];
  /** The SDK's exception, to rethrow or keep as `cause`. */
  readonly error: TransactionCanceledException;
}

function isCancelled(error: unknown): error is TransactionCanceledException {
  return (
    error instanceof TransactionCanceledException ||
    (error as { name?: unknown } | null)?.name === 'TransactionCanceledException'
  );
}

/** Runs a TransactWriteItems call: undefined when it went through, else why it was cancelled. */
export async function cancellation(write: Promise<unknown>): Promise<Cancellation | undefined> {
  try {
    await write;
    return undefined;
  } catch (error) {
    if (!isCancelled(error)) throw error;
    const reasons = error.CancellationReasons ?? [];
    const at = reasons.findIndex(isConditionFailedReason);
    return { conditionFailedAt: at < 0 ? undefined : at, reasons, error };
  }
}
