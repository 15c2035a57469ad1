/**
 * The queue-created hint's spread (shared/dispatch/dispatch.ts, QueueHint): which copies go out, and when
 * an agent passes one on. The simulation delivers each message to a random agent of the default queue, as
 * SQS gives a message to whichever poller asks next.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  firstHints,
  MAX_AWAITING,
  nextHint,
  QUEUE_HINT_COPIES,
  QUEUE_HINT_HOPS,
  QUEUE_HINT_HOPS_AWAITING,
  QUEUE_HINT_TTL_MS,
  type QueueHint,
} from '../../../../shared/dispatch/dispatch.ts';

const agent = (agentId: string, tags: Record<string, string> = {}) => ({ agentId, tags });

/** Delivers every copy until each ends; answers the sends made and who received a copy, in order. */
function spread(
  fleet: ReadonlyArray<{ agentId: string }>,
  hints: QueueHint[],
  random: () => number,
): { sends: number; reached: string[] } {
  const queue = [...hints];
  const reached: string[] = [];
  let sends = hints.length;
  for (let hint = queue.shift(); hint; hint = queue.shift()) {
    const to = fleet[Math.floor(random() * fleet.length)]!.agentId;
    reached.push(to);
    const next = nextHint(hint, to, hint.sentAt + 1);
    if (next) {
      sends++;
      queue.push(next);
    }
  }
  return { sends, reached };
}

describe('the queue-created hint', () => {
  it('names the live agents whose tags satisfy the tag set, shared out among one copy per agent up to four', () => {
    const fleet = [agent('web-1', { role: 'web', dc: 'eu' }), agent('db-1', { role: 'db' }), agent('plain')];
    const hints = firstHints('role=web', fleet, 5);
    expect(hints).toHaveLength(3);
    for (const h of hints)
      expect(h).toEqual({ queueCreated: 'role=web', hops: 0, sentAt: 5, awaiting: ['web-1'], hopLimit: 38 });
    expect(firstHints('role=web', [agent('web-1', { role: 'web' })], 5)).toHaveLength(1);
    // Ten agents concerned: shared out among the four copies, each named by exactly one.
    const ten = Array.from({ length: 10 }, (_, i) => agent(`a${i}`, { role: 'web' }));
    const shared = firstHints('role=web', ten, 5).map((h) => h.awaiting);
    expect(shared).toEqual([
      ['a0', 'a4', 'a8'],
      ['a1', 'a5', 'a9'],
      ['a2', 'a6'],
      ['a3', 'a7'],
    ]);
    // Two agents concerned of four: two copies name each.
    const two = [...ten.slice(0, 2), agent('p1'), agent('p2')];
    expect(firstHints('role=web', two, 5).map((h) => h.awaiting)).toEqual([['a0'], ['a1'], ['a0'], ['a1']]);
  });

  it('sends nothing when no live agent serves the tag set', () => {
    expect(firstHints('role=gpu', [agent('web-1', { role: 'web' }), agent('plain')], 5)).toEqual([]);
    expect(firstHints('role=gpu', [], 5)).toEqual([]);
  });

  it('falls back to copies passed on for a fixed number of hops when the fleet is unknown or too large', () => {
    const fallback = { queueCreated: 'role=web', hops: 0, sentAt: 5 };
    expect(firstHints('role=web', null, 5)).toEqual(Array(QUEUE_HINT_COPIES).fill(fallback));
    const many = Array.from({ length: MAX_AWAITING + 1 }, (_, i) => agent(`a${i}`, { role: 'web' }));
    expect(firstHints('role=web', many, 5)).toEqual(Array(QUEUE_HINT_COPIES).fill(fallback));
    let hint: QueueHint | null = fallback;
    let hops = 0;
    while (hint) {
      hint = nextHint(hint, 'a1', 6);
      if (hint) hops++;
    }
    expect(hops).toBe(QUEUE_HINT_HOPS - 1);
  });

  it('ends a copy when the last agent it awaits receives it, and when it is older than its TTL', () => {
    const hint: QueueHint = { queueCreated: 'role=web', hops: 0, sentAt: 0, awaiting: ['web-1', 'web-2'] };
    expect(nextHint(hint, 'plain', 1)).toEqual({ ...hint, hops: 1 });
    expect(nextHint(hint, 'web-1', 1)).toEqual({ ...hint, hops: 1, awaiting: ['web-2'] });
    expect(nextHint({ ...hint, awaiting: ['web-2'] }, 'web-2', 1)).toBeNull();
    expect(nextHint(hint, 'plain', QUEUE_HINT_TTL_MS)).toBeNull();
    // A named agent that never polls: the copy ends at its hop limit, which a sender cannot raise past 512.
    expect(nextHint({ ...hint, hopLimit: 12, hops: 10 }, 'plain', 1)).toEqual({
      ...hint,
      hopLimit: 12,
      hops: 11,
    });
    expect(nextHint({ ...hint, hopLimit: 12, hops: 11 }, 'plain', 1)).toBeNull();
    expect(
      nextHint({ ...hint, hopLimit: 10 ** 9, hops: QUEUE_HINT_HOPS_AWAITING - 1 }, 'plain', 1),
    ).toBeNull();
    expect(nextHint({ queueCreated: 'x=1', hops: 0, sentAt: 0 }, 'plain', QUEUE_HINT_TTL_MS)).toBeNull();
  });

  it('reaches every agent it names, with one message for a fleet of one and far fewer than 4 × 32 for a few', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer(),
        (n, k, seed) => {
          const fleet = Array.from({ length: n }, (_, i) => agent(`a${i}`, i < k ? { role: 'web' } : {}));
          const named = fleet.filter((a) => a.tags.role === 'web').map((a) => a.agentId);
          let state = seed >>> 0;
          const random = () => {
            state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
            return state / 2 ** 32;
          };
          const { sends, reached } = spread(fleet, firstHints('role=web', fleet, 0), random);
          for (const id of named) expect(reached).toContain(id);
          if (n === 1) expect(sends).toBe(1);
          // Each copy ends once it has met all it awaits: a coupon collector's ~n·H(k) hops at most.
          if (n <= 4) expect(sends).toBeLessThan(QUEUE_HINT_COPIES * QUEUE_HINT_HOPS);
        },
      ),
      { numRuns: 300 },
    );
  });
});
