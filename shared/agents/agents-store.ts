/** Agents table: cluster membership (Dkron's member list), kept alive by heartbeats; liveness.ts judges them. */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../aws/clients.ts';
import { ifCondition } from '../aws/conditional.ts';
import { allItems, collect } from '../aws/pages.ts';
import type { Config } from '../config.ts';
import type { AgentRecord, AgentsPort } from '../ports.ts';

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

export class AgentsStore implements AgentsPort {
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
