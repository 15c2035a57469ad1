import { describe, expect, it } from 'vitest';
import {
  derivedGroupId,
  ephemeralFate,
  followUps,
  type GroupSummary,
  type JobPolicy,
  MAX_RETRY_DELAY_MS,
  outcomeOf,
  retryDelayMs,
  retryPlan,
  summarizeGroup,
  willRetry,
} from '../../../../shared/events/policy.ts';
import { isTerminalTransition } from '../../../../shared/events/stream.ts';
import type { ExecutionStatus } from '../../../../shared/executions/execution.ts';

function job(def: Partial<JobPolicy['def']> = {}, name = 'parent'): JobPolicy {
  return {
    name,
    def: { retries: 0, retry_backoff: '10s', on_failure_job: '', ephemeral: false, ...def },
  };
}

const finish = { jobName: 'parent', group: '0000000001000', slot: 1, attempt: 1, finishedAt: 5_000 };

function summary(s: Partial<GroupSummary>): GroupSummary {
  return { settled: true, status: '', succeeded: 0, failed: 0, settledAt: 7_000, ...s };
}

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

describe('retry?', () => {
  it('retries an error while attempts remain, the last allowed attempt included', () => {
    for (const status of ['failed', 'timeout', 'lost'] as const) {
      expect(willRetry({ status, attempt: 1 }, job({ retries: 2 }))).toBe(true);
      expect(willRetry({ status, attempt: 2 }, job({ retries: 2 }))).toBe(true);
      expect(willRetry({ status, attempt: 3 }, job({ retries: 2 }))).toBe(false);
    }
  });

  it('never retries a success, a cancelled or skipped run, a job without retries or a deleted job', () => {
    for (const status of ['succeeded', 'cancelled', 'skipped'] as const)
      expect(willRetry({ status, attempt: 1 }, job({ retries: 3 }))).toBe(false);
    expect(willRetry({ status: 'failed', attempt: 1 }, job())).toBe(false);
    expect(willRetry({ status: 'failed', attempt: 1 }, null)).toBe(false);
  });

  it('plans the next attempt of the same slot from the finish time, so a redelivery plans the same', () => {
    const plan = retryPlan({ ...finish, attempt: 2 }, job({ retries: 3, retry_backoff: '30s' }), 99_999);
    expect(plan).toEqual({ attempt: 3, executionId: '0000000001000.1.3', scheduledAt: 5_000 + 60_000 });
    expect(retryPlan({ ...finish, attempt: 2 }, job({ retries: 3, retry_backoff: '30s' }), 1)).toEqual(plan);
  });

  it('falls back to the default backoff, from now when the finish has no time, capped at 15 minutes', () => {
    expect(retryPlan(finish, job({ retry_backoff: '' }), 0).scheduledAt).toBe(5_000 + 10_000);
    expect(retryPlan({ ...finish, finishedAt: null }, job(), 2_000).scheduledAt).toBe(12_000);
    expect(retryPlan({ ...finish, attempt: 30 }, job({ retry_backoff: '1m' }), 0).scheduledAt).toBe(
      5_000 + MAX_RETRY_DELAY_MS,
    );
  });
});

describe('dependents and on_failure_job?', () => {
  it('start nothing before the group is settled', () => {
    const open = summary({ settled: false, succeeded: 1, failed: 1 });
    expect(followUps(job({ on_failure_job: 'cleanup' }), finish, open, 0)).toEqual({
      dependents: null,
      onFailure: null,
    });
  });

  it('run the dependent jobs after a success, in a group derived from the parent and its settle time', () => {
    const next = followUps(job({ on_failure_job: 'cleanup' }), finish, summary({ succeeded: 2 }), 0);
    expect(next).toEqual({ dependents: derivedGroupId('dependent', finish, 7_000), onFailure: null });
  });

  it('run the on_failure_job after a failure, and both after a partial failure', () => {
    const failed = followUps(job({ on_failure_job: 'cleanup' }), finish, summary({ failed: 1 }), 0);
    expect(failed).toEqual({
      dependents: null,
      onFailure: { job: 'cleanup', group: derivedGroupId('on_failure', finish, 7_000) },
    });
    const partial = followUps(
      job({ on_failure_job: 'cleanup' }),
      finish,
      summary({ succeeded: 1, failed: 1 }),
      0,
    );
    expect(partial.dependents).not.toBeNull();
    expect(partial.onFailure?.job).toBe('cleanup');
  });

  it('never run a job as its own on_failure_job, nor one that is not set', () => {
    expect(
      followUps(job({ on_failure_job: 'parent' }), finish, summary({ failed: 1 }), 0).onFailure,
    ).toBeNull();
    expect(followUps(job(), finish, summary({ failed: 1 }), 0).onFailure).toBeNull();
  });

  it('take the settle time from the group, else the finish, else now', () => {
    const at = (s: Partial<GroupSummary>, finishedAt: number | null) =>
      followUps(job(), { ...finish, finishedAt }, summary({ succeeded: 1, ...s }), 9_000).dependents;
    expect(at({ settledAt: null }, 5_000)).toBe(derivedGroupId('dependent', finish, 5_000));
    expect(at({ settledAt: null }, null)).toBe(derivedGroupId('dependent', finish, 9_000));
  });

  it('start nothing for a settled group whose runs were all cancelled or skipped', () => {
    expect(followUps(job({ on_failure_job: 'cleanup' }), finish, summary({}), 0)).toEqual({
      dependents: null,
      onFailure: null,
    });
  });
});

describe('ephemeral jobs', () => {
  it('are deleted after a success unless other jobs depend on them', () => {
    expect(ephemeralFate(job({ ephemeral: true }), 'success', 0)).toBe('delete');
    expect(ephemeralFate(job({ ephemeral: true }), 'success', 2)).toBe('keep');
  });

  it('stay after an error or a neutral finish; other jobs are not concerned', () => {
    expect(ephemeralFate(job({ ephemeral: true }), 'error', 0)).toBeNull();
    expect(ephemeralFate(job({ ephemeral: true }), 'neutral', 0)).toBeNull();
    expect(ephemeralFate(job(), 'success', 0)).toBeNull();
    expect(ephemeralFate(null, 'success', 0)).toBeNull();
  });
});
