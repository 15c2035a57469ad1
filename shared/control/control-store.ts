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
import { CONTROL_ITEM_ABSENT, controlKeys, leaseName } from './control-keys.ts';

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
   * takeover increments the fencing token, so writes made under an older token can be refused. A shard's
   * lease item also holds its window cursor, which comes back with the lease (`cursorAt`): the tick reads
   * nothing more to know where its window starts.
   */
  async acquireLease(name: string, owner: string, now: number, ttlMs: number): Promise<Lease | null> {
    const out = await onConditionFailed(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: controlKeys.lease(name),
          UpdateExpression: 'SET #o = :me, expiresAtMs = :exp, acquiredAt = :now ADD #t :one',
          // Not yet a lease (absent, or only a cursor written by `advanceCursor`), expired, or ours.
          ConditionExpression: 'attribute_not_exists(expiresAtMs) OR expiresAtMs < :now OR #o = :me',
          ExpressionAttributeNames: { '#o': 'owner', '#t': 'token' },
          ExpressionAttributeValues: { ':me': owner, ':exp': now + ttlMs, ':now': now, ':one': 1 },
          ReturnValues: 'ALL_NEW',
        }),
      ),
      () => null,
    );
    if (!out) return null;
    const a = out.Attributes ?? {};
    return {
      owner,
      token: Number(a.token),
      expiresAtMs: Number(a.expiresAtMs),
      ...(typeof a.cursorAt === 'number' ? { cursorAt: a.cursorAt } : {}),
    };
  }

  /**
   * Ends a shard's round in one write on its lease item: releases the lease and, with `advanceTo`, moves
   * the shard's cursor there (fenced by the lease itself: only the holder of this token writes, and the
   * cursor never moves back). Until 12-07 these were two writes on two items, and the cursor a third read.
   * False when the lease was taken over meanwhile (nothing written: the new holder plans on from the cursor).
   */
  async endRound(name: string, lease: Lease, advanceTo: number | null): Promise<boolean> {
    const values: Record<string, unknown> = { ':zero': 0, ':me': lease.owner, ':token': lease.token };
    let update = 'SET expiresAtMs = :zero';
    let condition = '#o = :me AND #t = :token';
    if (advanceTo !== null) {
      update += ', cursorAt = :at, cursorFence = :token';
      condition += ' AND (attribute_not_exists(cursorAt) OR cursorAt <= :at)';
      values[':at'] = advanceTo;
    }
    const ended = await ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: controlKeys.lease(name),
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#o': 'owner', '#t': 'token' },
          ExpressionAttributeValues: values,
        }),
      ),
    );
    // Refused for the cursor alone (it is already further on): the lease is still released.
    if (!ended && advanceTo !== null) await this.releaseLease(name, lease);
    return ended;
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

  /**
   * A shard's window cursor, from its lease item; for a table from before the cursor moved there (12-07),
   * from the cursor's own item until the shard's first round ends and writes it on the lease.
   */
  async getCursor(shard: number): Promise<number | null> {
    const out = await this.clients.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: controlKeys.lease(leaseName(shard)),
        ConsistentRead: true,
        ProjectionExpression: 'cursorAt',
      }),
    );
    if (typeof out.Item?.cursorAt === 'number') return out.Item.cursorAt;
    const legacy = await this.clients.doc.send(
      new GetCommand({ TableName: this.table, Key: controlKeys.cursor(shard), ConsistentRead: true }),
    );
    return typeof legacy.Item?.at === 'number' ? legacy.Item.at : null;
  }

  /**
   * Moves the cursor forward under a fencing token: a holder whose token is older than the last writer's
   * (it lost the lease while working) cannot move it, and the cursor never moves backwards. (A tick moves
   * it with `endRound`, in the write that releases its lease.)
   */
  async advanceCursor(shard: number, at: number, fence: number): Promise<boolean> {
    return ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: controlKeys.lease(leaseName(shard)),
          UpdateExpression: 'SET cursorAt = :at, cursorFence = :fence',
          ConditionExpression:
            'attribute_not_exists(cursorAt) OR (cursorFence <= :fence AND cursorAt <= :at)',
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
