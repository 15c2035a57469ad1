/**
 * Jobs table: the definition (as JSON), its optimistic-lock version, the due-index keys and counters, and
 * the audit trail: who created it and who last changed it (`createdBy`, `updatedBy`: the caller's IAM
 * identity) and the last JOB_HISTORY_LIMIT changes (`history`: version, time, caller, action), written in
 * the same conditional update as the definition so that a change is never stored without its entry.
 */
import {
  DeleteCommand,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../aws/clients.ts';
import { cancellation, ifCondition, isConditionFailedReason, onConditionFailed } from '../aws/conditional.ts';
import { allItems, batchGet, collect } from '../aws/pages.ts';
import { transactEach } from '../aws/transactions.ts';
import type { Config } from '../config.ts';
import { ConflictError } from '../errors.ts';
import type {
  JobChange,
  JobChangeAction,
  JobChangeBy,
  JobRecord,
  JobsPort,
  NextRunAdvance,
} from '../ports.ts';
import { currentCaller } from './caller.ts';
import type { JobDefinition } from './definition.ts';

/** Entries kept in a job's `history` (each well under 1 KB: the 400 KB item limit is far away). */
export const JOB_HISTORY_LIMIT = 20;

type Item = Record<string, unknown>;

export function fromItem(item: Item): JobRecord {
  return {
    name: item.name as string,
    def: JSON.parse(item.def as string) as JobDefinition,
    version: Number(item.version ?? 0),
    nextRunAt: typeof item.nextRunAt === 'number' ? item.nextRunAt : null,
    successCount: Number(item.successCount ?? 0),
    errorCount: Number(item.errorCount ?? 0),
    missedCount: Number(item.missedCount ?? 0),
    lastSuccess: typeof item.lastSuccess === 'number' ? item.lastSuccess : null,
    lastError: typeof item.lastError === 'number' ? item.lastError : null,
    status: typeof item.status === 'string' ? item.status : '',
    dependentJobs: Array.isArray(item.dependentJobs) ? (item.dependentJobs as string[]) : [],
    createdAt: Number(item.createdAt ?? 0),
    updatedAt: Number(item.updatedAt ?? 0),
    createdBy: typeof item.createdBy === 'string' ? item.createdBy : '',
    updatedBy: typeof item.updatedBy === 'string' ? item.updatedBy : '',
    history: Array.isArray(item.history) ? (item.history as unknown[]).map(toChange) : [],
    planError: typeof item.planError === 'string' ? item.planError : null,
    planErrorAt: typeof item.planErrorAt === 'number' ? item.planErrorAt : null,
  };
}

function toChange(raw: unknown): JobChange {
  const e = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  return {
    version: Number(e.version ?? 0),
    at: Number(e.at ?? 0),
    by: typeof e.by === 'string' ? e.by : '',
    action: (typeof e.action === 'string' ? e.action : 'updated') as JobChangeAction,
  };
}

export class JobsStore implements JobsPort {
  constructor(
    private readonly clients: AwsClients,
    private readonly config: Config,
  ) {}

  private get table() {
    return this.config.tables.jobs;
  }

  /** Shard of the sparse due index; spreading by name keeps each shard's partition small. */
  dueShard(name: string): number {
    let h = 0;
    for (const c of name) h = (h * 31 + c.charCodeAt(0)) | 0;
    return Math.abs(h) % this.config.dueShards;
  }

  async get(name: string, consistent = true): Promise<JobRecord | null> {
    const out = await this.clients.doc.send(
      new GetCommand({ TableName: this.table, Key: { name }, ConsistentRead: consistent }),
    );
    return out.Item ? fromItem(out.Item) : null;
  }

  /** Several jobs in one read (BatchGetItem), by name; absent ones are missing from the map. */
  async getMany(names: readonly string[]): Promise<Map<string, JobRecord>> {
    const unique = [...new Set(names)];
    const items = await batchGet(
      this.clients,
      this.table,
      unique.map((name) => ({ name })),
    );
    return new Map(items.map((item) => [String(item.name), fromItem(item)]));
  }

  /**
   * Creates or replaces the definition. Counters, status and dependents are kept (Dkron's rule);
   * `expected` (the record read before, or just its version; null for a new job) makes concurrent writers
   * fail instead of overwriting. The change is appended to the history: to the record's history bounded
   * to JOB_HISTORY_LIMIT, or (given only a version) appended in place and bounded by the next write.
   * `change` defaults to the current caller (caller.ts) and created/updated.
   */
  async putDefinition(
    def: JobDefinition,
    nextRunAt: number | null,
    expected: JobRecord | number | null,
    now: number,
    change?: JobChangeBy,
  ) {
    const expectedVersion = typeof expected === 'number' ? expected : (expected?.version ?? null);
    const version = (expectedVersion ?? 0) + 1;
    const by = change?.by ?? currentCaller();
    const entry: JobChange = {
      version,
      at: now,
      by,
      action: change?.action ?? (expected === null ? 'created' : 'updated'),
    };
    const names: Record<string, string> = {
      '#def': 'def',
      '#v': 'version',
      '#u': 'updatedAt',
      '#c': 'createdAt',
      '#ub': 'updatedBy',
      '#h': 'history',
    };
    const values: Record<string, unknown> = {
      ':def': JSON.stringify(def),
      ':v': version,
      ':now': now,
      ':zero': 0,
      ':by': by,
    };
    let set = 'SET #def = :def, #v = :v, #u = :now, #c = if_not_exists(#c, :now), #ub = :by';
    if (typeof expected === 'number') {
      set += ', #h = list_append(if_not_exists(#h, :none), :entry)';
      values[':none'] = [];
      values[':entry'] = [entry];
    } else {
      set += ', #h = :history';
      values[':history'] = [...(expected?.history ?? []), entry].slice(-JOB_HISTORY_LIMIT);
    }
    // Only a new job gets a creator: one written before the audit trail keeps none rather than a wrong one.
    if (expected === null) {
      set += ', #cb = :by';
      names['#cb'] = 'createdBy';
    }
    set +=
      ', successCount = if_not_exists(successCount, :zero), errorCount = if_not_exists(errorCount, :zero)';
    let remove = '';
    if (nextRunAt === null) {
      remove = ' REMOVE nextRunAt, dueShard';
    } else {
      set += ', nextRunAt = :next, dueShard = :shard';
      values[':next'] = nextRunAt;
      values[':shard'] = this.dueShard(def.name);
    }
    let condition = 'attribute_not_exists(#v)';
    if (expectedVersion !== null) {
      condition = '#v = :expected';
      values[':expected'] = expectedVersion;
    }
    const out = await onConditionFailed(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { name: def.name },
          UpdateExpression: set + remove,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      ),
      (cause) => {
        throw new ConflictError(`job ${def.name} was changed concurrently; retry`, { cause });
      },
    );
    return fromItem(out.Attributes as Item);
  }

  /**
   * Moves the job's next fire time forward, but only from the value the planner read: when two planners
   * race (tick and write path, or overlapping ticks), exactly one advances it. Returns false if lost.
   */
  async advanceNextRun(job: JobRecord, next: number | null, missed: number): Promise<boolean> {
    return ifCondition(this.clients.doc.send(new UpdateCommand(this.advanceUpdate({ job, next, missed }))));
  }

  /** `advanceNextRun` for many jobs at once (`transactEach`): false where another writer moved the job. */
  async advanceNextRunMany(advances: readonly NextRunAdvance[]): Promise<boolean[]> {
    return transactEach(this.clients, advances, {
      item: (a) => ({ Update: this.advanceUpdate(a) }),
      written: true,
      refused: (reason) => (isConditionFailedReason(reason) ? false : undefined),
      single: (a) => this.advanceNextRun(a.job, a.next, a.missed),
    });
  }

  private advanceUpdate({ job, next, missed }: NextRunAdvance) {
    const values: Record<string, unknown> = { ':v': job.version, ':old': job.nextRunAt, ':missed': missed };
    let update = 'ADD missedCount :missed';
    if (next === null) update += ' REMOVE nextRunAt, dueShard';
    else {
      // The job moves to its shard under the current shard count as it is planned: after a reshard every
      // job reaches its new shard at its next fire time, while the coordinator keeps ticking the old one.
      update += ' SET nextRunAt = :next, dueShard = :shard';
      values[':next'] = next;
      values[':shard'] = this.dueShard(job.name);
    }
    return {
      TableName: this.table,
      Key: { name: job.name },
      UpdateExpression: update,
      ConditionExpression: 'version = :v AND nextRunAt = :old',
      ExpressionAttributeValues: values,
    };
  }

  /** Jobs whose next fire time is before `beforeMs`, read from the sparse due index only. */
  async *due(shard: number, beforeMs: number): AsyncGenerator<JobRecord> {
    const items = allItems(this.clients, {
      kind: 'query',
      TableName: this.table,
      IndexName: 'byDue',
      KeyConditionExpression: 'dueShard = :s AND nextRunAt < :before',
      ExpressionAttributeValues: { ':s': shard, ':before': beforeMs },
    });
    for await (const item of items) yield fromItem(item);
  }

  /**
   * Whether any job (due or not) is still indexed under `shard`: a shard at or above the shard count is
   * ticked until this answers false.
   */
  async shardHoldsJobs(shard: number): Promise<boolean> {
    return (await this.inShard(shard, 1)).length > 0;
  }

  /** Up to `limit` jobs indexed under `shard`, whatever their next fire time (one query page). */
  private async inShard(shard: number, limit: number): Promise<JobRecord[]> {
    const out = await this.clients.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'byDue',
        KeyConditionExpression: 'dueShard = :s',
        ExpressionAttributeValues: { ':s': shard },
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map(fromItem);
  }

  /**
   * Moves up to `limit` jobs indexed under `shard` that belong elsewhere under the current shard count to
   * their shard, without changing their next fire time (the move is refused if a planner moved that first).
   * Answers how many moved.
   */
  async moveOutOfShard(shard: number, limit: number): Promise<number> {
    let moved = 0;
    for (const job of await this.inShard(shard, limit)) {
      const to = this.dueShard(job.name);
      if (to === shard || job.nextRunAt === null) continue;
      const written = await ifCondition(
        this.clients.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { name: job.name },
            UpdateExpression: 'SET dueShard = :to',
            ConditionExpression: 'dueShard = :from AND nextRunAt = :next',
            ExpressionAttributeValues: { ':to': to, ':from': shard, ':next': job.nextRunAt },
          }),
        ),
      );
      if (written) moved++;
    }
    return moved;
  }

  async list(): Promise<JobRecord[]> {
    return collect(allItems(this.clients, { kind: 'scan', TableName: this.table }), fromItem);
  }

  async delete(name: string): Promise<JobRecord | null> {
    const out = await this.clients.doc.send(
      new DeleteCommand({ TableName: this.table, Key: { name }, ReturnValues: 'ALL_OLD' }),
    );
    return out.Attributes ? fromItem(out.Attributes) : null;
  }

  /** Zero counters, no last success/error, no status: the job as if it had never run (Dkron's clear). */
  async resetResults(name: string): Promise<void> {
    await ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { name },
          UpdateExpression:
            'SET successCount = :zero, errorCount = :zero REMOVE lastSuccess, lastError, #s, statusGroup',
          ConditionExpression: 'attribute_exists(#n)',
          ExpressionAttributeNames: { '#s': 'status', '#n': 'name' },
          ExpressionAttributeValues: { ':zero': 0 },
        }),
      ),
    );
  }

  /**
   * Counts one terminal execution exactly once: the execution's `countedAt` mark (conditional on its
   * absence) and the job's counters are written in one transaction, so a stream record delivered twice
   * cannot count twice. `outcome` decides the counter; `at` is the finish time (`last_success`/`last_error`).
   */
  async countResultOnce(
    execution: { jobName: string; executionId: string },
    outcome: 'success' | 'error',
    at: number,
    now: number,
  ): Promise<'counted' | 'already_counted' | 'no_job'> {
    const success = outcome === 'success';
    const cancelled = await cancellation(
      this.clients.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.config.tables.executions,
                Key: { jobName: execution.jobName, executionId: execution.executionId },
                UpdateExpression: 'SET countedAt = :now',
                ConditionExpression: 'attribute_exists(executionId) AND attribute_not_exists(countedAt)',
                ExpressionAttributeValues: { ':now': now },
              },
            },
            {
              Update: {
                TableName: this.table,
                Key: { name: execution.jobName },
                UpdateExpression: success
                  ? 'ADD successCount :one SET lastSuccess = :at'
                  : 'ADD errorCount :one SET lastError = :at',
                ConditionExpression: 'attribute_exists(#n)',
                ExpressionAttributeNames: { '#n': 'name' },
                ExpressionAttributeValues: { ':one': 1, ':at': at },
              },
            },
          ],
        }),
      ),
    );
    if (!cancelled) return 'counted';
    if (cancelled.conditionFailedAt === 0) return 'already_counted';
    if (cancelled.conditionFailedAt === 1) return 'no_job';
    throw cancelled.error;
  }

  /**
   * Sets the job's `status` from the results of one execution group, unless a newer group already set
   * it (group ids sort by fire time), so a late result of an old group cannot overwrite a newer status.
   */
  async setStatusFromGroup(name: string, status: string, group: string): Promise<boolean> {
    return ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { name },
          UpdateExpression: 'SET #s = :status, statusGroup = :g',
          ConditionExpression:
            'attribute_exists(#n) AND (attribute_not_exists(statusGroup) OR statusGroup <= :g)',
          ExpressionAttributeNames: { '#s': 'status', '#n': 'name' },
          ExpressionAttributeValues: { ':status': status, ':g': group },
        }),
      ),
    );
  }

  /** Stores the names of the jobs whose `parent_job` is this job (Dkron's server-maintained `dependent_jobs`). */
  async setDependentJobs(name: string, children: readonly string[]): Promise<void> {
    await ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { name },
          UpdateExpression: children.length > 0 ? 'SET dependentJobs = :c' : 'REMOVE dependentJobs',
          ConditionExpression: 'attribute_exists(#n)',
          ExpressionAttributeNames: { '#n': 'name' },
          ...(children.length > 0 ? { ExpressionAttributeValues: { ':c': [...children] } } : {}),
        }),
      ),
    );
  }

  /**
   * Deletes the job only if it was created at or before `createdBy` (an ephemeral job after its successful
   * run): a job re-created under the same name since then is left alone. False when nothing was deleted.
   */
  async deleteIfCreatedBy(name: string, createdBy: number): Promise<boolean> {
    return ifCondition(
      this.clients.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { name },
          ConditionExpression: 'attribute_exists(#n) AND createdAt <= :t',
          ExpressionAttributeNames: { '#n': 'name' },
          ExpressionAttributeValues: { ':t': createdBy },
        }),
      ),
    );
  }

  /**
   * Records on the job why the planner could not plan it (the tick isolates such a job and plans the others);
   * `planErrorCount` counts the failed tries. Nothing happens to a job deleted meanwhile.
   */
  async recordPlanError(name: string, reason: string, now: number): Promise<void> {
    await ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { name },
          UpdateExpression: 'SET planError = :r, planErrorAt = :now ADD planErrorCount :one',
          ConditionExpression: 'attribute_exists(#n)',
          ExpressionAttributeNames: { '#n': 'name' },
          ExpressionAttributeValues: { ':r': reason.slice(0, 1000), ':now': now, ':one': 1 },
        }),
      ),
    );
  }

  /** The job plans again: its plan error goes. */
  async clearPlanError(name: string): Promise<void> {
    await ifCondition(
      this.clients.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { name },
          UpdateExpression: 'REMOVE planError, planErrorAt',
          ConditionExpression: 'attribute_exists(planError)',
        }),
      ),
    );
  }
}
