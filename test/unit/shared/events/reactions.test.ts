import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { finishedEvent } from '../../../../shared/events/finished-event.ts';
import {
  derivedGroupId,
  MAX_RETRY_DELAY_MS,
  outcomeOf,
  retryDelayMs,
  summarizeGroup,
} from '../../../../shared/events/policy.ts';
import {
  changeFromStreamRecord,
  finishedExecution,
  isTerminalTransition,
  unreactedDeletion,
} from '../../../../shared/events/stream.ts';
import { type Execution, type ExecutionStatus, fromItem } from '../../../../shared/executions/execution.ts';

const base = {
  jobName: 'job',
  executionId: '0000000001000.0.1',
  group: '0000000001000',
  slot: 0,
  attempt: 1,
  trigger: 'schedule',
  scheduledAt: 1_000,
  jobVersion: 1,
  queueUrl: 'http://q',
};

function exec(slot: number, attempt: number, status: ExecutionStatus, finishedAt: number | null = null) {
  return { slot, attempt, status, finishedAt };
}

describe('classifying results', () => {
  it('counts succeeded as success, failed/timeout/lost as errors, cancelled/skipped as neither', () => {
    expect(outcomeOf('succeeded')).toBe('success');
    for (const s of ['failed', 'timeout', 'lost'] as const) expect(outcomeOf(s)).toBe('error');
    for (const s of ['cancelled', 'skipped', 'running', 'scheduled'] as const)
      expect(outcomeOf(s)).toBe('neutral');
  });

  it('sees a finish only on the change from a non-terminal to a terminal status', () => {
    expect(isTerminalTransition('running', 'succeeded')).toBe(true);
    expect(isTerminalTransition('scheduled', 'skipped')).toBe(true);
    expect(isTerminalTransition(undefined, 'failed')).toBe(true);
    // Our own bookkeeping writes (countedAt, reactedAt) on a finished execution are not finishes.
    expect(isTerminalTransition('failed', 'failed')).toBe(false);
    expect(isTerminalTransition('scheduled', 'running')).toBe(false);
    expect(isTerminalTransition('running', undefined)).toBe(false);
  });
});

describe('retry backoff', () => {
  it('doubles per attempt from the configured backoff', () => {
    expect(retryDelayMs(10_000, 1)).toBe(10_000);
    expect(retryDelayMs(10_000, 2)).toBe(20_000);
    expect(retryDelayMs(10_000, 3)).toBe(40_000);
    expect(retryDelayMs(1_000, 2)).toBe(2_000);
  });

  it('is capped at 15 minutes, also for absurd attempt numbers', () => {
    expect(retryDelayMs(10_000, 8)).toBe(MAX_RETRY_DELAY_MS);
    expect(retryDelayMs(10_000, 10_000)).toBe(MAX_RETRY_DELAY_MS);
    expect(retryDelayMs(0, 5)).toBe(0);
  });
});

describe('group summary (job status)', () => {
  it('is success, failed or partially_failed over the latest attempt of each slot', () => {
    expect(summarizeGroup([exec(0, 1, 'succeeded', 5)], 0)).toMatchObject({
      settled: true,
      status: 'success',
      settledAt: 5,
    });
    expect(summarizeGroup([exec(0, 1, 'failed', 5)], 0)).toMatchObject({ settled: true, status: 'failed' });
    expect(summarizeGroup([exec(0, 1, 'succeeded', 5), exec(1, 1, 'timeout', 7)], 0)).toMatchObject({
      settled: true,
      status: 'partially_failed',
      succeeded: 1,
      failed: 1,
      settledAt: 7,
    });
  });

  it('lets a successful retry replace the failed attempt of its slot', () => {
    const group = [exec(0, 1, 'failed', 1), exec(0, 2, 'succeeded', 3), exec(1, 1, 'succeeded', 2)];
    expect(summarizeGroup(group, 1)).toMatchObject({
      settled: true,
      status: 'success',
      succeeded: 2,
      failed: 0,
    });
  });

  it('is not settled while a slot runs or a failed slot still has retries', () => {
    expect(summarizeGroup([exec(0, 1, 'succeeded', 1), exec(1, 1, 'running')], 0)).toMatchObject({
      settled: false,
      status: 'success',
    });
    expect(summarizeGroup([exec(0, 1, 'failed', 1)], 2).settled).toBe(false);
    expect(summarizeGroup([exec(0, 1, 'failed', 1), exec(0, 2, 'scheduled')], 2).settled).toBe(false);
    expect(
      summarizeGroup([exec(0, 1, 'failed', 1), exec(0, 2, 'lost', 2), exec(0, 3, 'failed', 3)], 2),
    ).toMatchObject({
      settled: true,
      status: 'failed',
    });
  });

  it('ignores cancelled and skipped slots for the status', () => {
    expect(summarizeGroup([exec(0, 1, 'skipped', 1)], 0)).toMatchObject({
      settled: true,
      status: '',
      succeeded: 0,
    });
    expect(summarizeGroup([exec(0, 1, 'cancelled', 1), exec(1, 1, 'succeeded', 2)], 0).status).toBe(
      'success',
    );
    expect(summarizeGroup([], 0).settled).toBe(false);
  });
});

describe('derived groups', () => {
  it('are deterministic per parent group and kind, sortable by time and bounded in length', () => {
    const parent = { jobName: 'parent', group: '0000000001000' };
    const a = derivedGroupId('dependent', parent, 2_000);
    expect(derivedGroupId('dependent', parent, 2_000)).toBe(a);
    expect(a.startsWith('0000000002000d')).toBe(true);
    expect(derivedGroupId('on_failure', parent, 2_000)).not.toBe(a);
    expect(derivedGroupId('dependent', { ...parent, group: '0000000001001' }, 2_000)).not.toBe(a);
    expect(derivedGroupId('dependent', { jobName: 'x'.repeat(200), group: a }, 3_000).length).toBe(a.length);
    expect(a).not.toContain('.');
  });
});

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

describe('Execution Finished event', () => {
  const finished: Execution = fromItem({
    ...base,
    status: 'succeeded',
    finishedAt: 2_000,
    output: 'ok\n',
    success: true,
  });

  it('carries the execution API JSON', () => {
    const entry = finishedEvent(finished, 'bus');
    expect(entry).toMatchObject({
      EventBusName: 'bus',
      Source: 'cronplane',
      DetailType: 'Execution Finished',
    });
    expect(JSON.parse(entry.Detail!)).toMatchObject({
      id: base.executionId,
      job_name: 'job',
      status: 'succeeded',
      output: 'ok\n',
    });
  });

  it('cuts a large output to its tail so that the entry fits EventBridge', () => {
    const big: Execution = { ...finished, output: `${'é'.repeat(300_000)}END` };
    const detail = JSON.parse(finishedEvent(big, 'bus').Detail!);
    expect(Buffer.byteLength(JSON.stringify(detail))).toBeLessThan(256_000);
    expect(detail.output.endsWith('END')).toBe(true);
    expect(detail.output_truncated).toBe(true);
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
