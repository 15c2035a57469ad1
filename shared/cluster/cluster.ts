/** Cluster-level views and switches: members, leader, busy executions, pause. */
import { livenessReference, memberStatus } from '../agents/agents-store.ts';
import type { Context } from '../context.ts';
import { NotFoundError, ValidationError } from '../errors.ts';
import { toApi as executionToApi } from '../executions/execution.ts';
import { SCHEDULER_LEASE } from '../scheduler/tick.ts';
import { toRfc3339 } from '../time.ts';

export async function members(ctx: Context) {
  const now = ctx.clock();
  const agents = await ctx.agents.list();
  const reference = livenessReference(agents, now);
  return agents.map((a) => ({
    Name: a.agentId,
    Addr: a.hostname,
    Tags: a.tags,
    Status: memberStatus(a, now, reference),
    version: a.version,
    capacity: a.capacity,
    running: a.running,
    started_at: toRfc3339(a.startedAt),
    last_heartbeat_at: toRfc3339(a.lastHeartbeatAt),
  }));
}

/** The scheduler's leader is whoever holds (or last held) the tick lease. */
export async function leader(ctx: Context) {
  const lease = await ctx.control.getLease(SCHEDULER_LEASE);
  if (!lease) throw new NotFoundError('no scheduler has ticked yet');
  const now = ctx.clock();
  return {
    Name: lease.owner,
    fencing_token: lease.token,
    holding: lease.expiresAtMs > now,
    lease_expires_at: toRfc3339(lease.expiresAtMs),
  };
}

export async function busy(ctx: Context) {
  const active = await ctx.executions.listActive();
  return active
    .filter((e) => e.status === 'running')
    .sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0))
    .map((e) => executionToApi(e));
}

export async function setPaused(ctx: Context, paused: boolean) {
  await ctx.control.setPaused(paused, ctx.clock());
  return { paused };
}

export async function pauseState(ctx: Context) {
  return { paused: await ctx.control.isPaused() };
}

/** Dkron's POST /v1/leave: asks an agent to stop taking work and leave; it notices at its next heartbeat. */
export async function leave(ctx: Context, agentId: string | undefined) {
  if (!agentId) throw new ValidationError('name', 'is required: the agent (member) that should leave');
  if (!(await ctx.agents.requestLeave(agentId))) throw new NotFoundError(`member ${agentId} not found`);
  return { name: agentId, leave_requested: true };
}
