/** Which coordinator rounds the tick function logs at info level (isIdleRound). */
import { describe, expect, it } from 'vitest';
import { type CoordinatorReport, isIdleRound } from '../../../../shared/scheduler/coordinator.ts';
import { emptyTickReport, type TickReport } from '../../../../shared/scheduler/tick.ts';

/** A round that held the lease and found nothing. */
const idleTick: TickReport = { ...emptyTickReport(), leader: true, windowStart: 1, windowEnd: 2 };

const round = (tick: Partial<TickReport>, over: Partial<CoordinatorReport> = {}): CoordinatorReport => ({
  layout: { count: 1, span: 1, changedAt: 0 },
  fannedOut: [],
  fanOutError: null,
  shard0: { ...idleTick, ...tick },
  ...over,
});

describe('isIdleRound', () => {
  it('is a round that held the lease and found nothing to do', () => {
    expect(isIdleRound(round({}))).toBe(true);
  });

  it('is not a round that did work, failed, was paused or did not get the lease', () => {
    expect(isIdleRound(round({ jobs: 1 }))).toBe(false);
    expect(isIdleRound(round({ planned: 2 }))).toBe(false);
    expect(isIdleRound(round({ resent: 1 }))).toBe(false);
    expect(isIdleRound(round({ lost: 1 }))).toBe(false);
    expect(isIdleRound(round({ moved: 1 }))).toBe(false);
    expect(isIdleRound(round({ errors: [{ job: 'j', error: 'x' }] }))).toBe(false);
    expect(isIdleRound(round({ paused: true }))).toBe(false);
    expect(isIdleRound(round({ leader: false }))).toBe(false);
    expect(isIdleRound(round({}, { fannedOut: [1] }))).toBe(false);
    expect(isIdleRound(round({}, { fanOutError: 'queue gone' }))).toBe(false);
  });
});
