/**
 * Control table: small items that coordinate the control plane — the scheduler lease (with a fencing
 * token), the tick's window cursor and the global pause flag.
 */
import { DeleteCommand, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../aws/clients.ts';
import { ifCondition, onConditionFailed } from '../aws/conditional.ts';
import { readBatchOf } from '../aws/read-batch.ts';
import type { Config } from '../config.ts';
import type { ControlPort, Lease, LockHolder, ReadTogether, ShardLayout } from '../ports.ts';
import { CONTROL_ITEM_ABSENT, controlKeys } from './control-keys.ts';

export class ControlStore implements ControlPort {
  constructor(
    private readonly clients: AwsClients,
    private readonly config: Config,
  ) {}

  private get table() {
    return this.config.tables.control;
  }

  /**
   * Takes or renews the lease: succeeds if nobody holds it, it expired, or we already hold it. Every
   * takeover increments the fencing token, so writes made under an older token can be refused.
   */
  async acquireLease(name: string, owner: string, now: number, ttlMs: number): Promise<Lease | null> {
    const out = await onConditionFailed(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: controlKeys.lease(name),
          UpdateExpression: 'SET #o = :me, expiresAtMs = :exp, acquiredAt = :now ADD #t :one',
          ConditionExpression: `${CONTROL_ITEM_ABSENT} OR expiresAtMs < :now OR #o = :me`,
          ExpressionAttributeNames: { '#o': 'owner', '#t': 'token' },
          ExpressionAttributeValues: { ':me': owner, ':exp': now + ttlMs, ':now': now, ':one': 1 },
          ReturnValues: 'ALL_NEW',
        }),
      ),
      () => null,
    );
    if (!out) return null;
    const a = out.Attributes ?? {};
    return { owner, token: Number(a.token), expiresAtMs: Number(a.expiresAtMs) };
  }

  /** Nothing to release when the lease was taken over meanwhile. */
  async releaseLease(name: string, lease: Lease): Promise<void> {
    await ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: controlKeys.lease(name),
          UpdateExpression: 'SET expiresAtMs = :zero',
          ConditionExpression: '#o = :me AND #t = :token',
          ExpressionAttributeNames: { '#o': 'owner', '#t': 'token' },
          ExpressionAttributeValues: { ':zero': 0, ':me': lease.owner, ':token': lease.token },
        }),
      ),
    );
  }

  async getLease(name: string): Promise<Lease | null> {
    const out = await this.clients.doc.send(
      new GetCommand({ TableName: this.table, Key: controlKeys.lease(name), ConsistentRead: true }),
    );
    const a = out.Item;
    if (!a) return null;
    return {
      owner: String(a.owner),
      token: Number(a.token),
      expiresAtMs: Number(a.expiresAtMs),
      acquiredAtMs: Number(a.acquiredAt ?? 0),
    };
  }

  async getCursor(shard: number): Promise<number | null> {
    const out = await this.clients.doc.send(
      new GetCommand({ TableName: this.table, Key: controlKeys.cursor(shard), ConsistentRead: true }),
    );
    return typeof out.Item?.at === 'number' ? out.Item.at : null;
  }

  /**
   * Moves the cursor forward under a fencing token: a holder whose token is older than the last writer's
   * (it lost the lease while working) cannot move it, and the cursor never moves backwards.
   */
  async advanceCursor(shard: number, at: number, fence: number): Promise<boolean> {
    return ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: controlKeys.cursor(shard),
          UpdateExpression: 'SET #at = :at, fence = :fence',
          ConditionExpression: `${CONTROL_ITEM_ABSENT} OR (fence <= :fence AND #at <= :at)`,
          ExpressionAttributeNames: { '#at': 'at' },
          ExpressionAttributeValues: { ':at': at, ':fence': fence },
        }),
      ),
    );
  }

  /** The due-shard layout the coordinator last recorded, or null before its first run. */
  async getShardLayout(): Promise<ShardLayout | null> {
    const out = await this.clients.doc.send(
      new GetCommand({ TableName: this.table, Key: controlKeys.shardLayout(), ConsistentRead: true }),
    );
    const a = out.Item;
    if (!a) return null;
    return { count: Number(a.count), span: Number(a.span), changedAt: Number(a.changedAt) };
  }

  /**
   * Records a new layout, only over the one that was read (`expected`, null when there was none): of two
   * coordinators that read the same layout, one writes. Answers whether this one did.
   */
  async putShardLayout(layout: ShardLayout, expected: ShardLayout | null): Promise<boolean> {
    return ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: controlKeys.shardLayout(),
          UpdateExpression: 'SET #c = :count, span = :span, changedAt = :at',
          ConditionExpression:
            expected === null
              ? CONTROL_ITEM_ABSENT
              : '#c = :oldCount AND span = :oldSpan AND changedAt = :oldAt',
          ExpressionAttributeNames: { '#c': 'count' },
          ExpressionAttributeValues: {
            ':count': layout.count,
            ':span': layout.span,
            ':at': layout.changedAt,
            ...(expected === null
              ? {}
              : { ':oldCount': expected.count, ':oldSpan': expected.span, ':oldAt': expected.changedAt }),
          },
        }),
      ),
    );
  }

  async isPaused(reads?: ReadTogether): Promise<boolean> {
    const batch = readBatchOf(reads);
    if (batch) {
      const [item] = await batch.get(this.table, [{ ...controlKeys.pause() }]);
      return item?.paused === true;
    }
    const out = await this.clients.doc.send(
      new GetCommand({ TableName: this.table, Key: controlKeys.pause(), ConsistentRead: true }),
    );
    return out.Item?.paused === true;
  }

  async setPaused(paused: boolean, now: number): Promise<void> {
    await this.clients.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: controlKeys.pause(),
        UpdateExpression: 'SET paused = :p, changedAt = :now',
        ExpressionAttributeValues: { ':p': paused, ':now': now },
      }),
    );
  }

  /**
   * The per-job concurrency lock (`forbid` / `replace`), held by one execution and kept alive by its
   * heartbeat. A lock whose holder stopped heartbeating (agent killed) expires by itself, so a crash
   * never blocks a `forbid` job forever.
   */
  async acquireLock(
    jobName: string,
    holder: LockHolder,
    now: number,
    ttlMs: number,
  ): Promise<LockHolder | null> {
    // The holder may let go between our failed write and our read of who holds it: then try again.
    for (let attempt = 0; ; attempt++) {
      const taken = await ifCondition(
        this.clients.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: controlKeys.lock(jobName),
            UpdateExpression: 'SET executionId = :e, agentId = :a, expiresAtMs = :exp, expiresAt = :ttl',
            ConditionExpression: `${CONTROL_ITEM_ABSENT} OR expiresAtMs < :now OR executionId = :e`,
            ExpressionAttributeValues: {
              ':e': holder.executionId,
              ':a': holder.agentId,
              ':exp': now + ttlMs,
              ':now': now,
              ':ttl': Math.floor((now + ttlMs) / 1000) + 86_400,
            },
          }),
        ),
      );
      if (taken) return null;
      const out = await this.clients.doc.send(
        new GetCommand({ TableName: this.table, Key: controlKeys.lock(jobName), ConsistentRead: true }),
      );
      if (out.Item?.executionId || attempt >= 4) {
        return {
          executionId: String(out.Item?.executionId ?? ''),
          agentId: String(out.Item?.agentId ?? ''),
        };
      }
    }
  }

  /** Nothing to release when the lock expired and another execution took it. */
  async releaseLock(jobName: string, executionId: string): Promise<void> {
    await ifCondition(
      this.clients.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: controlKeys.lock(jobName),
          ConditionExpression: 'executionId = :e',
          ExpressionAttributeValues: { ':e': executionId },
        }),
      ),
    );
  }
}
