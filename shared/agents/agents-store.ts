/** Agents table: cluster membership (Dkron's member list), kept alive by heartbeats. */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../aws/clients.ts';
import { ifCondition } from '../aws/conditional.ts';
import { allItems, collect } from '../aws/pages.ts';
import type { Config } from '../config.ts';

export interface AgentRecord {
  readonly agentId: string;
  readonly hostname: string;
  readonly tags: Record<string, string>;
  readonly version: string;
  readonly capacity: number;
  readonly running: number;
  readonly startedAt: number;
  readonly lastHeartbeatAt: number;
  readonly heartbeatIntervalMs: number;
  readonly leftAt: number | null;
}

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

function fromItem(item: Record<string, unknown>): AgentRecord {
  return {
    agentId: item.agentId as string,
    hostname: (item.hostname as string) ?? '',
    tags: (item.tags as Record<string, string>) ?? {},
    version: (item.version as string) ?? '',
    capacity: Number(item.capacity ?? 1),
    running: Number(item.running ?? 0),
    startedAt: Number(item.startedAt ?? 0),
    lastHeartbeatAt: Number(item.lastHeartbeatAt ?? 0),
    heartbeatIntervalMs: Number(item.heartbeatIntervalMs ?? 5000),
    leftAt: typeof item.leftAt === 'number' ? item.leftAt : null,
  };
}

export class AgentsStore {
  constructor(
    private readonly clients: AwsClients,
    private readonly config: Config,
  ) {}

  private get table() {
    return this.config.tables.agents;
  }

  /** Records a heartbeat; answers whether an operator asked this agent to leave (POST /v1/leave). */
  async heartbeat(a: Omit<AgentRecord, 'leftAt'>): Promise<{ leaveRequested: boolean }> {
    const { agentId, ...rest } = a;
    const fields = { ...rest, expiresAt: Math.floor(a.lastHeartbeatAt / 1000) + 86_400 };
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets = Object.entries(fields).map(([k, v], i) => {
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      return `#f${i} = :v${i}`;
    });
    const out = await this.clients.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { agentId },
        // Members that stop heartbeating disappear a day later (TTL); a restart clears an old goodbye.
        UpdateExpression: `SET ${sets.join(', ')} REMOVE leftAt`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      }),
    );
    return { leaveRequested: out.Attributes?.leaveRequested === true };
  }

  /** False when no such member is registered. */
  async requestLeave(agentId: string): Promise<boolean> {
    return ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { agentId },
          UpdateExpression: 'SET leaveRequested = :t',
          ConditionExpression: 'attribute_exists(agentId)',
          ExpressionAttributeValues: { ':t': true },
        }),
      ),
    );
  }

  /** A member that is not registered (expired meanwhile) has nothing to leave. */
  async leave(agentId: string, now: number): Promise<void> {
    await ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { agentId },
          UpdateExpression: 'SET leftAt = :now REMOVE leaveRequested',
          ConditionExpression: 'attribute_exists(agentId)',
          ExpressionAttributeValues: { ':now': now },
        }),
      ),
    );
  }

  async get(agentId: string): Promise<AgentRecord | null> {
    const out = await this.clients.doc.send(new GetCommand({ TableName: this.table, Key: { agentId } }));
    return out.Item ? fromItem(out.Item) : null;
  }

  async list(): Promise<AgentRecord[]> {
    const agents = await collect(allItems(this.clients, { kind: 'scan', TableName: this.table }), fromItem);
    return agents.sort((x, y) => x.agentId.localeCompare(y.agentId));
  }
}
