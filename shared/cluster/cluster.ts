/** Cluster-level views and switches: members, leader, busy executions, pause. */
import { livenessReference, memberStatus } from '../agents/liveness.ts';
import type { Context } from '../context.ts';
import { SCHEDULER_LEASE } from '../control/control-keys.ts';
import { NotFoundError, ValidationError } from '../errors.ts';
import { toApi as executionToApi } from '../executions/execution.ts';
import { toRfc3339 } from '../time.ts';
import { MAX_HOLD_MS } from '../timing.ts';

/** Serf's member status numbers, which Dkron's `/v1/members` sends as `Status`. */
export const SERF_STATUS = { none: 0, alive: 1, leaving: 2, left: 3, failed: 4 } as const;

export async function members(ctx: Context) {
  const now = ctx.clock();
  const agents = await ctx.agents.list();
  const reference = livenessReference(agents, now);
  return agents.map((a) => {
    const statusText = memberStatus(a, now, reference);
    return {
      // Dkron's member (Serf's, plus the `id` its UI keys records by): `Status` is Serf's number,
      // `statusText` its name. Agents have no Serf port: 0.
      id: a.agentId,
      Name: a.agentId,
      Addr: a.hostname,
      Port: 0,
      Tags: a.tags,
      Status: SERF_STATUS[statusText],
      statusText,
      version: a.version,
      capacity: a.capacity,
      running: a.running,
      started_at: toRfc3339(a.startedAt),
      last_heartbeat_at: toRfc3339(a.lastHeartbeatAt),
    };
  });
}

/**
 * The scheduler's leader, shaped as Dkron's (a member: `id`, `Name`, `Addr`, `Port`, `Tags`, `Status`,
 * `statusText`), with the lease's own fields added. The leader is the last holder of the tick lease for as
 * long as its ticks keep coming (within two tick periods): a tick holds the lease only while it runs and lets
 * go at its end, so `in_tick` says whether one is running now and `lease_expires_at` is null between ticks.
 */
export async function leader(ctx: Context) {
  const lease = await ctx.control.getLease(SCHEDULER_LEASE);
  if (!lease) throw new NotFoundError('no scheduler has ticked yet');
  const now = ctx.clock();
  const lastTick = lease.acquiredAtMs ?? 0;
  const ticking = lastTick > 0 && now - lastTick <= 2 * Math.max(ctx.config.tickPeriodMs, 30_000);
  return {
    id: lease.owner,
    Name: lease.owner,
    Addr: '',
    Port: 0,
    Tags: { role: 'scheduler' },
    Status: ticking ? SERF_STATUS.alive : SERF_STATUS.failed,
    statusText: ticking ? 'alive' : 'failed',
    holding: ticking,
    in_tick: lease.expiresAtMs > now,
    last_tick_at: toRfc3339(lastTick || null),
    fencing_token: lease.token,
    lease_expires_at: lease.expiresAtMs > now ? toRfc3339(lease.expiresAtMs) : null,
  };
}

export async function busy(ctx: Context) {
  // A run was claimed at most MAX_HOLD_MS before its fire time: later fire times are all still scheduled.
  const active = await ctx.executions.listActive({ scheduledBefore: ctx.clock() + MAX_HOLD_MS + 1 });
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
