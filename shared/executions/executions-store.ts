/**
 * Executions table. Every state transition is a conditional update on the previous status, so two
 * writers (duplicate deliveries, overlapping ticks, a slow agent and its replacement) cannot both win.
 */
import {
  BatchWriteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AwsClients } from '../aws/clients.ts';
import { cancellation, ifCondition, onConditionFailed } from '../aws/conditional.ts';
import { allItems, batchGet, collect } from '../aws/pages.ts';
import { readBatchOf } from '../aws/read-batch.ts';
import { updateItem } from '../aws/update-item.ts';
import { writeEach } from '../aws/write-each.ts';
import type { Config } from '../config.ts';
import { CONTROL_ITEM_ABSENT, controlKeys } from '../control/control-keys.ts';
import type {
  ClaimOutcome,
  ExecutionKey,
  ExecutionRef,
  ExecutionResult,
  ExecutionsPort,
  NewExecution,
  ReactionMarks,
  ReadTogether,
} from '../ports.ts';
import { type Execution, type ExecutionStatus, expiryAfter, fromItem } from './execution.ts';

/**
 * Partitions of the sparse `byActive` index: the runs `GET /v1/busy` lists and the lost sweep checks. A run
 * enters it when it is known to live on — its start record (a run that lasted a second) or a heartbeat —
 * or at its claim when its message was delivered before (see `claim`); it leaves it when it ends. A run
 * claimed from its first delivery that ends within a second never enters it: two index writes (2 WRU, of
 * ~8 an execution) saved on the common case. Such a run, should its agent die, is found through its
 * message, which comes back (Runner.runningElsewhere): a message delivered once can be delivered again
 * before the queue's `maxReceiveCount`, and a claim from any later delivery indexes the run.
 * With one partition key value that would be two index writes per indexed run on one partition (DynamoDB
 * allows ~1,000 writes a second per partition); spread over 8 by job name, the index takes 8 times that;
 * listing the active executions costs 8 queries.
 */
export const ACTIVE_SHARDS = 8;

/** The `byActive` partition of a job's executions (shard 0 holds those written before there were 8). */
export function activeShardOf(jobName: string): number {
  let h = 0;
  for (const c of jobName) h = (h * 31 + c.charCodeAt(0)) | 0;
  return Math.abs(h) % ACTIVE_SHARDS;
}

/** The update clause that puts a running execution into `byActive` (`:shard`: its `activeShardOf`). */
const ENTER_ACTIVE = 'activeShard = if_not_exists(activeShard, :shard)';

function marksOf(item: Record<string, unknown>): ReactionMarks {
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return {
    status: item.status as ExecutionStatus,
    countedAt: num(item.countedAt),
    reactedAt: num(item.reactedAt),
  };
}

export class ExecutionsStore implements ExecutionsPort {
  constructor(
    private readonly clients: AwsClients,
    private readonly config: Config,
  ) {}

  private get table() {
    return this.config.tables.executions;
  }

  /**
   * TTL (`expiresAt`, seconds) `retentionDays` after `now`. Set on a planned execution (counted from its
   * fire time: one that never ran goes eventually), removed when it finishes and set again by
   * the reactions' last write (settleFinishes, shared/events/settle.ts): a finished execution never expires before its
   * reactions (retry, counters, event) ran.
   */
  private expiresAt(now: number) {
    return expiryAfter(now, this.config.retentionDays);
  }

  /** The conditional put of a new `scheduled` execution (one, or one item of a transaction). */
  private scheduledPut(e: NewExecution, now: number) {
    return {
      TableName: this.table,
      Item: {
        ...e,
        status: 'scheduled',
        createdAt: now,
        expiresAt: this.expiresAt(e.scheduledAt),
      },
      ConditionExpression: 'attribute_not_exists(executionId)',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    };
  }

  /**
   * Writes a `scheduled` execution unless one with this id exists. Returns null when created, else the
   * existing execution — the caller decides whether it still needs sending (the outbox).
   */
  async createScheduled(e: NewExecution, now: number): Promise<Execution | null> {
    return onConditionFailed(
      this.clients.doc.send(new PutCommand(this.scheduledPut(e, now))).then(() => null),
      async (error) => {
        if (error.Item) return fromItem(unmarshall(error.Item));
        const existing = await this.get(e.jobName, e.executionId);
        if (existing) return existing;
        throw error;
      },
    );
  }

  /** `createScheduled` for many at once (`writeEach`): null = created, else the existing one; in order. */
  async createScheduledMany(
    executions: readonly NewExecution[],
    now: number,
  ): Promise<Array<Execution | null>> {
    return writeEach(executions, (e) => this.createScheduled(e, now));
  }

  /** Re-targets a still-scheduled execution at the job's new version (the job was edited). */
  async retarget(e: Execution, jobVersion: number): Promise<boolean> {
    return this.conditionalUpdate(e, 'SET jobVersion = :nv', 'scheduled', { ':nv': jobVersion });
  }

  /**
   * `scheduled → running`: one conditional update, the at-most-once step (a message delivered twice runs
   * once). Fan-out (`oneSlotPerAgent`) puts the agent's slot of the group in the same transaction. Whether
   * the job is still the version planned and the scheduler unpaused is read by the runner *after* the claim
   * lands (see Runner `confirmClaims`): a check inside the claim's transaction cost 2 write units per KB of
   * the job and 2 for the pause flag on every launch, where a read after it costs 1 read unit.
   */
  async claim(
    e: Execution,
    agent: { agentId: string; nodeName: string },
    now: number,
    options: { oneSlotPerAgent?: boolean; index?: boolean } = {},
  ): Promise<ClaimOutcome> {
    const running: Execution = {
      ...e,
      status: 'running',
      claimedAt: now,
      heartbeatAt: now,
      agentId: agent.agentId,
      nodeName: agent.nodeName,
      indexed: options.index === true,
    };
    const index = options.index === true;
    if (!options.oneSlotPerAgent) {
      const landed = await ifCondition(updateItem(this.clients, this.claimItem(e, agent, now, index)));
      return landed ? { claimed: true, execution: running } : { claimed: false, why: 'not_scheduled' };
    }
    const cancelled = await cancellation(
      this.clients.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            { Update: this.claimItem(e, agent, now, index) },
            {
              // Fan-out: an agent takes at most one slot of an execution group.
              Put: {
                TableName: this.config.tables.control,
                Item: {
                  ...controlKeys.slot(e.jobName, e.group, agent.agentId),
                  executionId: e.executionId,
                  slot: e.slot,
                  expiresAt: Math.floor(now / 1000) + 86_400,
                },
                // A retry of the slot this agent already ran may land on it again; another slot may not.
                ConditionExpression: `${CONTROL_ITEM_ABSENT} OR slot = :slot`,
                ExpressionAttributeValues: { ':slot': e.slot },
              },
            },
          ],
        }),
      ),
    );
    if (!cancelled) return { claimed: true, execution: running };
    // The items in order: the claim, the slot.
    const why = (['not_scheduled', 'slot_taken'] as const)[cancelled.conditionFailedAt ?? -1];
    if (why) return { claimed: false, why };
    throw cancelled.error;
  }

  /** The `scheduled → running` update of a claim; with `index`, it enters `byActive` at once. */
  private claimItem(e: Execution, agent: { agentId: string; nodeName: string }, now: number, index: boolean) {
    return {
      TableName: this.table,
      Key: { jobName: e.jobName, executionId: e.executionId },
      UpdateExpression: `SET #s = :running, claimedAt = :now, heartbeatAt = :now, agentId = :a, nodeName = :n${index ? ', activeShard = :shard' : ''}`,
      ConditionExpression: '#s = :scheduled',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: {
        ':running': 'running',
        ':scheduled': 'scheduled',
        ':now': now,
        ':a': agent.agentId,
        ':n': agent.nodeName,
        ...(index ? { ':shard': activeShardOf(e.jobName) } : {}),
      },
    };
  }

  /**
   * Claims several executions at once (the burst path: a batch of launches one agent received together):
   * one conditional update each, sent together. Answers each running execution, or null where the claim
   * was refused or failed (the caller then goes through that launch on its own, which tells why).
   */
  async claimMany(
    executions: readonly Execution[],
    agent: { agentId: string; nodeName: string },
    now: number,
  ): Promise<Array<Execution | null>> {
    return Promise.all(
      executions.map(async (e) => {
        const claim = await this.claim(e, agent, now).catch(() => null);
        return claim?.claimed ? claim.execution : null;
      }),
    );
  }

  /**
   * Keeps a running execution alive; answers whether someone asked to cancel it (`replace`, API), or
   * null when it is no longer ours (marked lost meanwhile).
   */
  /**
   * A running execution's heartbeat; with `live`, also the output so far (its tail) and how many bytes
   * the job printed, so that readers see it while the job runs (the result replaces it).
   */
  async heartbeat(
    e: Pick<Execution, 'jobName' | 'executionId'>,
    agentId: string,
    now: number,
    live?: { readonly text: string; readonly bytes: number },
  ): Promise<{ cancelRequested: boolean } | null> {
    const out = await onConditionFailed(
      updateItem(this.clients, {
        TableName: this.table,
        Key: { jobName: e.jobName, executionId: e.executionId },
        // A run that beats lives on: it enters `byActive` (once; the same value again writes no index).
        UpdateExpression: live
          ? `SET heartbeatAt = :now, #o = :out, outputBytes = :bytes, ${ENTER_ACTIVE}`
          : `SET heartbeatAt = :now, ${ENTER_ACTIVE}`,
        ConditionExpression: '#s = :running AND agentId = :me',
        ExpressionAttributeNames: { '#s': 'status', ...(live ? { '#o': 'output' } : {}) },
        ExpressionAttributeValues: {
          ':now': now,
          ':running': 'running',
          ':me': agentId,
          ':shard': activeShardOf(e.jobName),
          ...(live ? { ':out': live.text, ':bytes': live.bytes } : {}),
        },
        ReturnValues: 'ALL_NEW',
      }),
      () => null,
    );
    return out && { cancelRequested: out.Attributes?.cancelRequested === true };
  }

  /**
   * Records when the executor actually started (a claim may come seconds before the fire time: the
   * agent claims as soon as the launch arrives and starts it at the exact millisecond).
   */
  async markStarted(e: Pick<Execution, 'jobName' | 'executionId'>, agentId: string, at: number) {
    // A run that lasted a second (see the runner) enters `byActive` with it.
    return this.conditionalUpdate(
      e,
      `SET startedAt = :at, ${ENTER_ACTIVE}`,
      'running',
      { ':at': at, ':shard': activeShardOf(e.jobName) },
      agentId,
    );
  }

  /** Asks the agent running `e` to kill it; it notices at its next heartbeat. */
  async requestCancel(e: Pick<Execution, 'jobName' | 'executionId'>, reason: string): Promise<boolean> {
    return this.conditionalUpdate(e, 'SET cancelRequested = :t, cancelReason = :r', 'running', {
      ':t': true,
      ':r': reason,
    });
  }

  /** A running execution whose agent stopped heartbeating: `running → lost`, once. */
  async markLost(e: Execution, now: number, reason: string): Promise<boolean> {
    return ifCondition(
      updateItem(this.clients, {
        TableName: this.table,
        Key: { jobName: e.jobName, executionId: e.executionId },
        UpdateExpression:
          'SET #s = :lost, finishedAt = :now, success = :f, reason = :why REMOVE activeShard, expiresAt',
        ConditionExpression: '#s = :running AND heartbeatAt = :hb',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':lost': 'lost',
          ':running': 'running',
          ':hb': e.heartbeatAt,
          ':now': now,
          ':f': false,
          ':why': reason,
        },
      }),
    );
  }

  /** `running → terminal`, only by the agent that claimed it. */
  async finish(e: Execution, agentId: string, result: ExecutionResult, now: number): Promise<boolean> {
    const processorErrors = result.processorErrors ?? null;
    const bytes = result.outputBytes;
    return this.conditionalUpdate(
      e,
      `SET #s = :to, startedAt = :started, finishedAt = :now, exitCode = :code, success = :ok, #o = :out, outputTruncated = :tr, reason = :why${result.outputUrl ? ', outputUrl = :url' : ''}${processorErrors ? ', processorErrors = :pe' : ''}${bytes !== undefined ? ', outputBytes = :bytes' : ''} REMOVE activeShard, expiresAt`,
      'running',
      {
        ':to': result.status,
        ':started': e.startedAt ?? now,
        ':now': now,
        ':code': result.exitCode,
        ':ok': result.status === 'succeeded',
        ':out': result.output,
        ':tr': result.outputTruncated,
        ':why': result.reason,
        ...(result.outputUrl ? { ':url': result.outputUrl } : {}),
        ...(processorErrors ? { ':pe': processorErrors } : {}),
        ...(bytes !== undefined ? { ':bytes': bytes } : {}),
      },
      agentId,
      { '#o': 'output' },
    );
  }

  /** Ends an execution that never ran (skipped, cancelled) or whose agent vanished (lost). */
  async end(
    e: Pick<Execution, 'jobName' | 'executionId'>,
    from: ExecutionStatus,
    to: Extract<ExecutionStatus, 'skipped' | 'cancelled' | 'lost' | 'failed'>,
    reason: string,
    now: number,
  ): Promise<boolean> {
    return this.conditionalUpdate(
      e,
      'SET #s = :to, finishedAt = :now, success = :f, reason = :why REMOVE activeShard, expiresAt',
      from,
      { ':to': to, ':now': now, ':f': false, ':why': reason },
    );
  }

  private async conditionalUpdate(
    e: Pick<Execution, 'jobName' | 'executionId'>,
    update: string,
    fromStatus: ExecutionStatus,
    values: Record<string, unknown>,
    agentId?: string,
    names: Record<string, string> = {},
  ): Promise<boolean> {
    return ifCondition(
      updateItem(this.clients, {
        TableName: this.table,
        Key: { jobName: e.jobName, executionId: e.executionId },
        UpdateExpression: update,
        ConditionExpression: agentId ? '#s = :from AND agentId = :me' : '#s = :from',
        ExpressionAttributeNames: { '#s': 'status', ...names },
        ExpressionAttributeValues: {
          ...values,
          ':from': fromStatus,
          ...(agentId ? { ':me': agentId } : {}),
        },
      }),
    );
  }

  /** Several executions in one consistent read (BatchGetItem), keyed `jobName/executionId`. */
  async getMany(
    keys: ReadonlyArray<Pick<Execution, 'jobName' | 'executionId'>>,
    reads?: ReadTogether,
  ): Promise<Map<string, Execution>> {
    const unique = new Map(keys.map((k) => [`${k.jobName}/${k.executionId}`, k]));
    const asked = [...unique.values()].map((k) => ({ jobName: k.jobName, executionId: k.executionId }));
    const batch = readBatchOf(reads);
    const items = batch
      ? await batch.get(this.table, asked)
      : await batchGet(this.clients, this.table, asked);
    return new Map(items.map((item) => [`${item.jobName}/${item.executionId}`, fromItem(item)]));
  }

  async get(jobName: string, executionId: string): Promise<Execution | null> {
    const out = await this.clients.doc.send(
      new GetCommand({ TableName: this.table, Key: { jobName, executionId }, ConsistentRead: true }),
    );
    return out.Item ? fromItem(out.Item) : null;
  }

  async listForJob(
    jobName: string,
    options: { newestFirst?: boolean; limit?: number; fromId?: string } = {},
  ) {
    const items: Execution[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.clients.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: options.fromId ? 'jobName = :j AND executionId >= :from' : 'jobName = :j',
          ExpressionAttributeValues: {
            ':j': jobName,
            ...(options.fromId ? { ':from': options.fromId } : {}),
          },
          ScanIndexForward: !(options.newestFirst ?? true),
          ExclusiveStartKey: start,
          ...(options.limit ? { Limit: options.limit - items.length } : {}),
        }),
      );
      for (const item of out.Items ?? []) items.push(fromItem(item));
      start = out.LastEvaluatedKey;
    } while (start && (options.limit === undefined || items.length < options.limit));
    return items;
  }

  /**
   * Scheduled and running executions of all jobs: their keys from the sparse, keys-only `byActive` index
   * (with `scheduledBefore`, only the part of each partition before it: the sort key is the fire time),
   * then the items (BatchGetItem, eventually consistent). One that ended in between is left out.
   */
  async listActive(options: { readonly scheduledBefore?: number } = {}): Promise<Execution[]> {
    const before = options.scheduledBefore;
    const shards = Array.from({ length: ACTIVE_SHARDS }, (_, s) => s);
    const keys = await Promise.all(
      shards.map((s) =>
        collect(
          allItems(this.clients, {
            kind: 'query',
            TableName: this.table,
            IndexName: 'byActive',
            KeyConditionExpression:
              before === undefined ? 'activeShard = :s' : 'activeShard = :s AND scheduledAt < :before',
            ExpressionAttributeValues: { ':s': s, ...(before === undefined ? {} : { ':before': before }) },
          }),
          (item) => ({ jobName: item.jobName as string, executionId: item.executionId as string }),
        ),
      ),
    );
    const items = await batchGet(this.clients, this.table, keys.flat(), false);
    return items
      .map(fromItem)
      .filter((e) => e.status === 'scheduled' || e.status === 'running')
      .sort((a, b) => a.scheduledAt - b.scheduledAt);
  }

  /**
   * Reaction bookkeeping of one execution (read without its output): `countedAt` and `reactedAt` are set
   * together once every reaction is done and the job's counters hold the finish (settleFinishes, shared/events/settle.ts);
   * `countedAt` alone was left by a version that counted in a transaction. Null when the execution is gone.
   */
  async reactionMarks(jobName: string, executionId: string): Promise<ReactionMarks | null> {
    const out = await this.clients.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { jobName, executionId },
        ConsistentRead: true,
        ProjectionExpression: '#s, countedAt, reactedAt',
        ExpressionAttributeNames: { '#s': 'status' },
      }),
    );
    return out.Item ? marksOf(out.Item) : null;
  }

  /**
   * `reactionMarks` of several executions in one consistent read (BatchGetItem), keyed
   * `jobName/executionId`; gone ones are absent.
   */
  async reactionMarksMany(keys: readonly ExecutionRef[]): Promise<Map<string, ReactionMarks>> {
    const unique = new Map(keys.map((k) => [`${k.jobName}/${k.executionId}`, k]));
    const items = await batchGet(
      this.clients,
      this.table,
      [...unique.values()].map((k) => ({ jobName: k.jobName, executionId: k.executionId })),
      true,
      {
        ProjectionExpression: 'jobName, executionId, #s, countedAt, reactedAt',
        ExpressionAttributeNames: { '#s': 'status' },
      },
    );
    return new Map(items.map((item) => [`${item.jobName}/${item.executionId}`, marksOf(item)]));
  }

  /**
   * The reactions' mark of a finish (settleFinishes, shared/events/settle.ts): `reactedAt` with its TTL
   * (retention starts here) and, when the finish was counted by this settle or an earlier one, `countedAt`.
   * False when it was reacted to meanwhile (another delivery of its record), or deleted.
   */
  async markReacted(e: ExecutionRef, counted: boolean, now: number): Promise<boolean> {
    return ifCondition(
      updateItem(this.clients, {
        TableName: this.table,
        Key: { jobName: e.jobName, executionId: e.executionId },
        UpdateExpression: `SET reactedAt = :now, expiresAt = :exp${counted ? ', countedAt = :now' : ''}`,
        ConditionExpression: `attribute_exists(executionId) AND attribute_not_exists(reactedAt)${
          counted ? ' AND attribute_not_exists(countedAt)' : ''
        }`,
        ExpressionAttributeValues: { ':now': now, ':exp': this.expiresAt(now) },
      }),
    );
  }

  /** Every slot and attempt of one group (ids are `<group>.<slot>.<attempt>`), without outputs. */
  async listGroup(jobName: string, group: string): Promise<Execution[]> {
    return collect(
      allItems(this.clients, {
        kind: 'query',
        TableName: this.table,
        KeyConditionExpression: 'jobName = :j AND begins_with(executionId, :g)',
        ProjectionExpression:
          'jobName, executionId, #g, slot, attempt, #t, #s, scheduledAt, jobVersion, queueUrl, startedAt, finishedAt, success',
        ExpressionAttributeNames: { '#g': 'group', '#t': 'trigger', '#s': 'status' },
        ExpressionAttributeValues: { ':j': jobName, ':g': `${group}.` },
        ConsistentRead: true,
      }),
      fromItem,
    );
  }

  /**
   * Keys, statuses and reaction marks of a job's executions, newest first (no outputs in the answer):
   * what retention needs to tell finished-and-reacted executions from planned or unreacted ones.
   */
  async listKeysForJob(jobName: string): Promise<ExecutionKey[]> {
    const items: ExecutionKey[] = [];
    const num = (v: unknown) => (typeof v === 'number' ? v : null);
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.clients.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'jobName = :j',
          ProjectionExpression: 'jobName, executionId, #s, finishedAt, reactedAt',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':j': jobName },
          ScanIndexForward: false,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? []) {
        items.push({
          jobName: item.jobName as string,
          executionId: item.executionId as string,
          status: item.status as ExecutionStatus,
          finishedAt: num(item.finishedAt),
          reactedAt: num(item.reactedAt),
        });
      }
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Deletes the given executions (batches of 25, unprocessed items retried). */
  async deleteMany(keys: ReadonlyArray<Pick<Execution, 'jobName' | 'executionId'>>): Promise<number> {
    for (let i = 0; i < keys.length; i += 25) {
      let requests: Record<string, unknown[]> | undefined = {
        [this.table]: keys
          .slice(i, i + 25)
          .map((e) => ({ DeleteRequest: { Key: { jobName: e.jobName, executionId: e.executionId } } })),
      };
      while (requests && Object.keys(requests).length > 0) {
        const out = await this.clients.doc.send(new BatchWriteCommand({ RequestItems: requests as never }));
        requests = out.UnprocessedItems as Record<string, unknown[]> | undefined;
      }
    }
    return keys.length;
  }

  async deleteForJob(jobName: string): Promise<number> {
    const all = await this.listForJob(jobName);
    for (let i = 0; i < all.length; i += 25) {
      const chunk = all.slice(i, i + 25);
      let requests: Record<string, unknown[]> | undefined = {
        [this.table]: chunk.map((e) => ({
          DeleteRequest: { Key: { jobName: e.jobName, executionId: e.executionId } },
        })),
      };
      while (requests && Object.keys(requests).length > 0) {
        const out = await this.clients.doc.send(new BatchWriteCommand({ RequestItems: requests as never }));
        requests = out.UnprocessedItems as Record<string, unknown[]> | undefined;
      }
    }
    return all.length;
  }
}
