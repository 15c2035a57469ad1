import { describe, expect, it } from 'vitest';
import {
  canonicalTagSet,
  delaySecondsFor,
  parseTagSet,
  tagsSatisfy,
} from '../../../../shared/dispatch/dispatch.ts';

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
});
