import { describe, expect, it } from 'vitest';
import {
  canonicalTagSet,
  delaySecondsBefore,
  delaySecondsFor,
  MAX_LEAD_SECONDS,
  parseTagSet,
  phaseWaitMs,
  stagingLeadSeconds,
  tagsSatisfy,
  WORKER_BATCH_WINDOW_SECONDS,
  WORKER_COLD_EXTRA_MS,
  WORKER_PHASE_TOLERANCE_MS,
  WORKER_START_MARGIN_MS,
  WORKER_WARM_MS,
  warmFireTimes,
  workerLeadMs,
} from '../../../../shared/dispatch/dispatch.ts';
import { MAX_HOLD_MS } from '../../../../shared/timing.ts';

describe('dispatch', () => {
  it('names a tag set canonically, whatever the key order', () => {
    expect(canonicalTagSet({ role: 'web', dc: 'eu' })).toBe('dc=eu,role=web');
    expect(parseTagSet('dc=eu,role=web')).toEqual({ dc: 'eu', role: 'web' });
    expect(canonicalTagSet({})).toBe('');
  });

  it('matches only agents that carry every tag', () => {
    expect(tagsSatisfy({ role: 'web', dc: 'eu', x: '1' }, { role: 'web', dc: 'eu' })).toBe(true);
    expect(tagsSatisfy({ role: 'web' }, { role: 'web', dc: 'eu' })).toBe(false);
    expect(tagsSatisfy({}, {})).toBe(true);
  });

  it('delays a message to arrive up to a second early, within SQS limits', () => {
    expect(delaySecondsFor(10_000, 0)).toBe(9);
    expect(delaySecondsFor(10_999, 0)).toBe(9);
    expect(delaySecondsFor(500, 0)).toBe(0);
    expect(delaySecondsFor(-5_000, 0)).toBe(0);
    expect(delaySecondsFor(5_000_000, 0)).toBe(900);
  });

  it('stages a busy second earlier: 1 s, plus 1 s per 100 launches, never past what an agent holds', () => {
    expect(stagingLeadSeconds(0)).toBe(1);
    expect(stagingLeadSeconds(99)).toBe(1);
    expect(stagingLeadSeconds(100)).toBe(2);
    expect(stagingLeadSeconds(1_000)).toBe(11);
    expect(stagingLeadSeconds(100_000)).toBe(MAX_LEAD_SECONDS);
    expect(MAX_LEAD_SECONDS * 1000).toBeLessThan(MAX_HOLD_MS);
    // 1,000 launches 20 s out: visible 11 s early.
    expect(delaySecondsFor(20_000, 0, stagingLeadSeconds(1_000))).toBe(9);
    expect(delaySecondsFor(3_000, 0, 6)).toBe(0);
  });

  it("gives the worker's launches the window and the start margin of lead, plus a busy second's extra", () => {
    expect(workerLeadMs(1)).toBe(WORKER_BATCH_WINDOW_SECONDS * 1_000 + WORKER_START_MARGIN_MS);
    expect(workerLeadMs(3)).toBe(workerLeadMs(1) + 2_000);
    // A launch likely to meet a cold start: a second more, which keeps the phase the warm ones are sent at.
    expect(workerLeadMs(1, false)).toBe(workerLeadMs(1) + WORKER_COLD_EXTRA_MS);
    expect(WORKER_COLD_EXTRA_MS % 1_000).toBe(0);
    // Never later than the lead: 10 s out with a 1.5 s lead from t=0 is 8 s of delay (visible 0.5 s early)...
    expect(delaySecondsBefore(10_000, 0, 1_500)).toBe(8);
    // ...and from t=400 the same 8 s (visible 0.1 s early); due within its lead: at once; SQS's limit: 900.
    expect(delaySecondsBefore(10_000, 400, 1_500)).toBe(8);
    expect(delaySecondsBefore(1_000, 0, 1_500)).toBe(0);
    expect(delaySecondsBefore(5_000_000, 0, 1_500)).toBe(900);
  });

  it('waits for the part of the second that makes a worker launch visible at most the tolerance early', () => {
    const tolerance = WORKER_PHASE_TOLERANCE_MS;
    // 8,500 ms ahead of the lead: sent now it would be visible 500 ms early; wait until 240 ms would be.
    expect(phaseWaitMs(10_000, 0, 1_500, tolerance)).toBe(500 - tolerance + 10);
    const waited = phaseWaitMs(10_000, 0, 1_500, tolerance);
    const visibleAt = waited + delaySecondsBefore(10_000, waited, 1_500) * 1_000;
    expect(10_000 - 1_500 - visibleAt).toBe(tolerance - 10);
    // Within the tolerance: no wait. Whatever the phase, the wait stays under a second and lands inside it.
    expect(phaseWaitMs(10_000, 300, 1_500, tolerance)).toBe(0);
    for (let now = 0; now < 1_000; now += 7) {
      const wait = phaseWaitMs(20_000, now, 1_500, tolerance);
      expect(wait).toBeLessThan(1_000);
      const visible = now + wait + delaySecondsBefore(20_000, now + wait, 1_500) * 1_000;
      const early = 20_000 - 1_500 - visible;
      expect(early).toBeGreaterThanOrEqual(0);
      expect(early).toBeLessThanOrEqual(tolerance);
    }
    // Due within its lead, or beyond SQS's longest delay: no wait.
    expect(phaseWaitMs(1_000, 0, 1_500, tolerance)).toBe(0);
    expect(phaseWaitMs(5_000_000, 0, 1_500, tolerance)).toBe(0);
  });

  it('counts a launch as warm when another of the send comes 1 s to a minute before it', () => {
    const at = (...times: number[]) =>
      times.map((t) => ({ jobName: 'j', executionId: `${t}`, scheduledAt: t }));
    const warm = warmFireTimes(at(10_000, 10_000, 10_500, 12_000, 80_000, 200_000, 200_000 + WORKER_WARM_MS));
    // The first, and those of its second: cold. 12 s: after 10 s. 80 s: 68 s after the last, cold.
    expect([10_000, 10_500, 12_000, 80_000].map(warm)).toEqual([false, false, true, false]);
    // Exactly the window after one: warm; the one that starts it: cold.
    expect([200_000, 200_000 + WORKER_WARM_MS].map(warm)).toEqual([false, true]);
  });
});
