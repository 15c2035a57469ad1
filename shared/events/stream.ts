/**
 * Decoding the Executions table's stream: records (Lambda's `DynamoDBRecord` or the DynamoDB Streams
 * API's `Record`) become changes with plain images, and a change is a finish only when the status goes
 * from non-terminal (or none) to terminal. Our own bookkeeping writes on a finished execution
 * (`countedAt`, `reactedAt`), deletions and TTL are no finishes.
 */
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { type Execution, type ExecutionStatus, fromItem, TERMINAL } from '../executions/execution.ts';

/**
 * One record of the Executions stream, in the shape shared by Lambda's `DynamoDBRecord` and the
 * DynamoDB Streams API's `Record` (images still in DynamoDB JSON).
 */
export interface StreamRecordLike {
  readonly eventID?: string | undefined;
  readonly eventName?: string | undefined;
  readonly dynamodb?:
    | {
        readonly SequenceNumber?: string | undefined;
        readonly NewImage?: Readonly<Record<string, object>> | undefined;
        readonly OldImage?: Readonly<Record<string, object>> | undefined;
      }
    | undefined;
}

/** A change of one execution item, images already unmarshalled. */
export interface ExecutionChange {
  /** The record's sequence number: Lambda's batch item identifier, the poller's checkpoint. */
  readonly id: string;
  readonly oldImage?: Record<string, unknown> | undefined;
  readonly newImage?: Record<string, unknown> | undefined;
}

function isTerminal(status: unknown): boolean {
  return typeof status === 'string' && TERMINAL.has(status as ExecutionStatus);
}

/** A finish: the new image is terminal and the old one (if any) was not. */
export function isTerminalTransition(oldStatus: unknown, newStatus: unknown): boolean {
  return isTerminal(newStatus) && !isTerminal(oldStatus);
}

function unmarshallImage(
  image: Readonly<Record<string, object>> | undefined,
): Record<string, unknown> | undefined {
  return image ? unmarshall(image as unknown as Parameters<typeof unmarshall>[0]) : undefined;
}

export function changeFromStreamRecord(record: StreamRecordLike): ExecutionChange {
  return {
    id: record.dynamodb?.SequenceNumber ?? record.eventID ?? '',
    oldImage: unmarshallImage(record.dynamodb?.OldImage),
    newImage: unmarshallImage(record.dynamodb?.NewImage),
  };
}

/** The finished execution of a change, or null when the change is not a finish. */
export function finishedExecution(change: ExecutionChange): Execution | null {
  const next = change.newImage;
  if (!next || !isTerminalTransition(change.oldImage?.status, next.status)) return null;
  return fromItem(next);
}

/**
 * A deletion (REMOVE record: TTL, retention, a user) of an execution whose reactions were not done: a
 * planned or running one, or a finish without `reactedAt`. Retention and TTL no longer do that, so what
 * is left is a deleted job or history; it is reported (logged) rather than passing unseen. Null when
 * the change is no such deletion.
 */
export function unreactedDeletion(
  change: ExecutionChange,
): { jobName: string; executionId: string; status: string; finished: boolean } | null {
  const old = change.oldImage;
  if (change.newImage || !old || typeof old.reactedAt === 'number') return null;
  return {
    jobName: String(old.jobName),
    executionId: String(old.executionId),
    status: String(old.status),
    finished: isTerminal(old.status),
  };
}
