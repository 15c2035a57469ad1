/**
 * Who of the cluster is alive, judged from the members' heartbeats (pure: the planner, the runner and the
 * cluster view read members from the agents port and judge them here).
 */
import type { AgentRecord } from '../ports.ts';

export type MemberStatus = 'alive' | 'failed' | 'left';

/**
 * How long a silence of the *whole* fleet is put down to the store rather than to the agents (see
 * `livenessReference`): longer than the store stalls seen in fault runs (50 s) and than the time after
 * which a running execution is marked lost (90 s), short enough that a fleet that really died is
 * noticed within a few minutes.
 */
export const STORE_STALL_GRACE_MS = 120_000;

/** Missed heartbeat intervals after which a member counts as failed. */
const MISSED_BEATS = 3;

/**
 * The time against which heartbeats are judged. Normally `now`. But heartbeats are writes to the store:
 * when the store stalls (or a reader cannot reach it) *every* member's heartbeat stops at once, and
 * judged against `now` the whole fleet would look dead the moment the store answers again, and every
 * tagged launch due then would end `failed: no live agent` although the agents are alive. A fleet that
 * fell silent together is judged against its newest heartbeat instead, for at most
 * `STORE_STALL_GRACE_MS`: a member is alive if it beat within three intervals of the newest beat of
 * any member. One agent dying while others beat is still noticed within three intervals; the only
 * cost is that a whole fleet dying at once is noticed up to the grace later (launches meanwhile wait
 * in their queue for an agent, as they would for a restarting one).
 */
export function livenessReference(
  agents: ReadonlyArray<Pick<AgentRecord, 'lastHeartbeatAt' | 'heartbeatIntervalMs' | 'leftAt'>>,
  now: number,
): number {
  let newest: Pick<AgentRecord, 'lastHeartbeatAt' | 'heartbeatIntervalMs'> | undefined;
  for (const a of agents) {
    if (a.leftAt === null && (!newest || a.lastHeartbeatAt > newest.lastHeartbeatAt)) newest = a;
  }
  if (!newest || now - newest.lastHeartbeatAt <= MISSED_BEATS * newest.heartbeatIntervalMs) return now;
  return Math.min(now, Math.max(newest.lastHeartbeatAt, now - STORE_STALL_GRACE_MS));
}

/**
 * Alive while heartbeats arrive; failed after three missed intervals (counted up to `reference`, see
 * `livenessReference`, default `now`); left when it said goodbye.
 */
export function memberStatus(a: AgentRecord, now: number, reference = now): MemberStatus {
  if (a.leftAt !== null) return 'left';
  return Math.min(now, reference) - a.lastHeartbeatAt <= MISSED_BEATS * a.heartbeatIntervalMs
    ? 'alive'
    : 'failed';
}

/** The members alive at `now`, judged by the rule of `livenessReference`. */
export function liveMembers<A extends AgentRecord>(agents: readonly A[], now: number): A[] {
  const reference = livenessReference(agents, now);
  return agents.filter((a) => memberStatus(a, now, reference) === 'alive');
}
