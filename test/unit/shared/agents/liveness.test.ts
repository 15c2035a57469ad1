import { describe, expect, it } from 'vitest';
import {
  liveMembers,
  livenessReference,
  memberStatus,
  STORE_STALL_GRACE_MS,
} from '../../../../shared/agents/liveness.ts';
import type { AgentRecord } from '../../../../shared/ports.ts';

const agent = (agentId: string, lastHeartbeatAt: number, extra: Partial<AgentRecord> = {}): AgentRecord => ({
  agentId,
  hostname: agentId,
  tags: {},
  version: '1',
  capacity: 1,
  running: 0,
  startedAt: 0,
  lastHeartbeatAt,
  heartbeatIntervalMs: 5_000,
  leftAt: null,
  ...extra,
});

const now = 1_000_000;
const names = (agents: AgentRecord[]) => liveMembers(agents, now).map((a) => a.agentId);

describe('liveness', () => {
  it('while the fleet beats, an agent is failed after three missed intervals', () => {
    const fleet = [agent('a', now - 2_000), agent('b', now - 16_000), agent('c', now - 14_000)];
    expect(livenessReference(fleet, now)).toBe(now);
    expect(names(fleet)).toEqual(['a', 'c']);
  });

  it('a store stall (every heartbeat stopped at once) does not look like dead agents', () => {
    // The store answered again after 50 s; nobody could beat meanwhile; b had died 30 s before.
    const stallStart = now - 50_000;
    const fleet = [agent('a', stallStart), agent('b', stallStart - 30_000), agent('c', stallStart - 3_000)];
    expect(livenessReference(fleet, now)).toBe(stallStart);
    expect(names(fleet)).toEqual(['a', 'c']);
    expect(memberStatus(fleet[0]!, now)).toBe('failed'); // what the old rule said
  });

  it('gives a silent fleet the benefit of the doubt for a bounded time only', () => {
    const silent = now - STORE_STALL_GRACE_MS - 20_000;
    const fleet = [agent('a', silent), agent('b', silent)];
    expect(livenessReference(fleet, now)).toBe(now - STORE_STALL_GRACE_MS);
    expect(names(fleet)).toEqual([]);
  });

  it('ignores members that left, and answers left for them', () => {
    const fleet = [agent('a', now - 60_000), agent('gone', now - 1_000, { leftAt: now - 500 })];
    expect(livenessReference(fleet, now)).toBe(now - 60_000);
    expect(names(fleet)).toEqual(['a']);
    expect(memberStatus(fleet[1]!, now, now - 60_000)).toBe('left');
  });

  it('an empty fleet is judged against now', () => {
    expect(livenessReference([], now)).toBe(now);
  });
});
