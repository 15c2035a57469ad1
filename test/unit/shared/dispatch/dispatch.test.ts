import { describe, expect, it } from 'vitest';
import {
  canonicalTagSet,
  delaySecondsFor,
  MAX_LEAD_SECONDS,
  parseTagSet,
  stagingLeadSeconds,
  tagsSatisfy,
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
});
