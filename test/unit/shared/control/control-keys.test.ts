import { describe, expect, it } from 'vitest';
import { CONTROL_KEY, controlKeys } from '../../../../shared/control/control-keys.ts';

/** One key of every kind, with the arguments a store passes. */
const samples = {
  lease: controlKeys.lease('scheduler'),
  cursor: controlKeys.cursor(3),
  pause: controlKeys.pause(),
  shardLayout: controlKeys.shardLayout(),
  lock: controlKeys.lock('backup'),
  slot: controlKeys.slot('backup', 'g1', 'a1'),
  queue: controlKeys.queue('role=db'),
} satisfies Record<keyof typeof CONTROL_KEY, { pk: string }>;

describe('control keys', () => {
  it('builds each kind under its own prefix (IAM scopes agents by these)', () => {
    for (const [kind, key] of Object.entries(samples)) {
      expect(key.pk.startsWith(CONTROL_KEY[kind as keyof typeof CONTROL_KEY]), kind).toBe(true);
    }
    expect(samples).toEqual({
      lease: { pk: 'lease#scheduler' },
      cursor: { pk: 'cursor#3' },
      pause: { pk: 'pause' },
      shardLayout: { pk: 'shards' },
      lock: { pk: 'lock#backup' },
      slot: { pk: 'slot#backup#g1#a1' },
      queue: { pk: 'queue#role=db' },
    });
  });

  it('keeps the kinds apart: no prefix is the start of another', () => {
    const prefixes = Object.values(CONTROL_KEY);
    for (const a of prefixes) {
      for (const b of prefixes) if (a !== b) expect(b.startsWith(a), `${a} / ${b}`).toBe(false);
    }
  });
});
