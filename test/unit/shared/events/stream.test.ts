import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  changeFromStreamRecord,
  finishedExecution,
  unreactedDeletion,
} from '../../../../shared/events/stream.ts';
import { plannedItem } from './execution-fixture.ts';

const base = plannedItem;

describe('stream records', () => {
  it('unmarshalls images and picks out finished executions only', () => {
    const running = { ...base, status: 'running', startedAt: 1_000 };
    const failed = { ...running, status: 'failed', finishedAt: 2_000, success: false, exitCode: 1 };
    const change = changeFromStreamRecord({
      eventName: 'MODIFY',
      dynamodb: { SequenceNumber: '42', OldImage: marshall(running), NewImage: marshall(failed) },
    });
    expect(change.id).toBe('42');
    expect(finishedExecution(change)).toMatchObject({
      jobName: 'job',
      status: 'failed',
      finishedAt: 2_000,
      exitCode: 1,
    });

    const marked = changeFromStreamRecord({
      dynamodb: {
        SequenceNumber: '43',
        OldImage: marshall(failed),
        NewImage: marshall({ ...failed, reactedAt: 3 }),
      },
    });
    expect(finishedExecution(marked)).toBeNull();
    const removed = changeFromStreamRecord({ eventName: 'REMOVE', dynamodb: { OldImage: marshall(failed) } });
    expect(finishedExecution(removed)).toBeNull();
  });
});

describe('unreactedDeletion', () => {
  const gone = (oldImage: Record<string, unknown>) => ({ id: '1', oldImage });
  it('reports a deleted finish that has no reactedAt, and a deleted planned execution', () => {
    expect(unreactedDeletion(gone({ jobName: 'j', executionId: 'e', status: 'lost' }))).toEqual({
      jobName: 'j',
      executionId: 'e',
      status: 'lost',
      finished: true,
    });
    expect(unreactedDeletion(gone({ jobName: 'j', executionId: 'e', status: 'scheduled' }))).toMatchObject({
      finished: false,
    });
  });
  it('ignores deletions of reacted executions, and every change that is no deletion', () => {
    expect(
      unreactedDeletion(gone({ jobName: 'j', executionId: 'e', status: 'failed', reactedAt: 5 })),
    ).toBeNull();
    expect(
      unreactedDeletion({ id: '1', oldImage: { status: 'running' }, newImage: { status: 'failed' } }),
    ).toBeNull();
    expect(unreactedDeletion({ id: '1', newImage: { status: 'scheduled' } })).toBeNull();
  });
});
