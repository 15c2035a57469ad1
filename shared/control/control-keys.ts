/**
 * The Control table's key schema, and its only owner: one string partition key, `pk`, no sort key. Each
 * kind of item has its own prefix (or fixed key), so the kinds never collide and IAM can scope a role to
 * some of them by leading key (infra/lib/permissions.ts: an agent may write `lock#…` and `slot#…` and
 * check `pause`, nothing else). Pure: no SDK, so infra can import it.
 */

/** The key of one Control item. */
export interface ControlKey {
  readonly pk: string;
}

/** A condition that holds when the item does not exist yet (DynamoDB names the key attribute in it). */
export const CONTROL_ITEM_ABSENT = 'attribute_not_exists(pk)';

/** The leading part of each kind's keys: fixed keys whole, prefixed ones up to their variable part. */
export const CONTROL_KEY = {
  lease: 'lease#',
  cursor: 'cursor#',
  pause: 'pause',
  shardLayout: 'shards',
  lock: 'lock#',
  slot: 'slot#',
  queue: 'queue#',
} as const;

/** The lease of due shard 0, which is also the coordinator's (the scheduler's lease, as the cluster view names it). */
export const SCHEDULER_LEASE = 'scheduler';

/** The lease of one due shard; its item also holds the shard's window cursor (`cursorAt`, `cursorFence`). */
export function leaseName(shard: number): string {
  return shard === 0 ? SCHEDULER_LEASE : `${SCHEDULER_LEASE}-${shard}`;
}

export const controlKeys = {
  /** A scheduler lease (with its fencing token), by lease name (shared/scheduler/tick.ts names them). */
  lease: (name: string): ControlKey => ({ pk: `${CONTROL_KEY.lease}${name}` }),
  /**
   * Where a due shard's window cursor was kept until 12-07: read once, while its lease item has no cursor yet
   * (a table from before the cursor moved onto the lease item); never written any more.
   */
  cursor: (shard: number): ControlKey => ({ pk: `${CONTROL_KEY.cursor}${shard}` }),
  /** The global pause flag; a claim checks it in its transaction. */
  pause: (): ControlKey => ({ pk: CONTROL_KEY.pause }),
  /** The due-shard layout the coordinator last recorded. */
  shardLayout: (): ControlKey => ({ pk: CONTROL_KEY.shardLayout }),
  /** A job's concurrency lock (`forbid` / `replace`). */
  lock: (jobName: string): ControlKey => ({ pk: `${CONTROL_KEY.lock}${jobName}` }),
  /** The slot of an execution group one agent took (fan-out: at most one slot per agent). */
  slot: (jobName: string, group: string, agentId: string): ControlKey => ({
    pk: `${CONTROL_KEY.slot}${jobName}#${group}#${agentId}`,
  }),
  /** The registry entry of a tag set's launch queue. */
  queue: (tagSet: string): ControlKey => ({ pk: `${CONTROL_KEY.queue}${tagSet}` }),
} as const;
