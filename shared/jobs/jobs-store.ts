/**
 * Jobs table: the definition (as JSON), its optimistic-lock version, the due-index keys and counters, and
 * the audit trail: who created it and who last changed it (`createdBy`, `updatedBy`: the caller's IAM
 * identity) and the last JOB_HISTORY_LIMIT changes (`history`: version, time, caller, action), written in
 * the same conditional update as the definition so that a change is never stored without its entry.
 */
import { DeleteCommand, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../aws/clients.ts';
import { ifCondition, onConditionFailed } from '../aws/conditional.ts';
import { allItems, batchGet, collect } from '../aws/pages.ts';
import { readBatchOf } from '../aws/read-batch.ts';
import { retryUnavailable } from '../aws/unavailable.ts';
import { updateItem } from '../aws/update-item.ts';
import { writeEach } from '../aws/write-each.ts';
import type { Config } from '../config.ts';
import { ConflictError } from '../errors.ts';
import type {
  JobChange,
  JobChangeAction,
  JobChangeBy,
  JobRecord,
  JobsPort,
  NextRunAdvance,
  ReadTogether,
  SettledFinish,
} from '../ports.ts';
import { currentCaller } from './caller.ts';
import type { JobDefinition } from './definition.ts';

/**
 * The due read's pages are sent again (twice, 1–2 s apart) while the store is unavailable: a page that
 * fails costs the tick every job after it (100,000 due over 16 shards on the emulators: one timed-out
 * `Query` page ended a shard tick), a pause costs a second or two of the window.
 */
const dueReadAttempt = retryUnavailable(2, 1_000);

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
    settleSeq: Number(item.settleSeq ?? 0),
    settling: Array.isArray(item.settling) ? (item.settling as string[]) : [],
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

/** What a settle writes on the job (settleWrite). */
interface SettleWrite {
  readonly expression: string;
  readonly condition: string;
  readonly names: Record<string, string>;
  readonly values: Record<string, unknown>;
}

/**
 * The job's side of a settle: the counters and last success/error of `counting`, the status (unless null,
 * or a newer group set it), the new `settling` list and `settleSeq` bumped — conditional on `settleSeq`
 * as read (`seq`), so that of two settles that read the same job only one writes.
 */
function settleWrite(
  counting: readonly SettledFinish[],
  status: { readonly status: string; readonly group: string } | null,
  settling: readonly string[],
  seq: number,
): SettleWrite {
  const add: string[] = [];
  const set: string[] = ['settling = :settling', 'settleSeq = :next'];
  const values: Record<string, unknown> = { ':settling': [...settling], ':next': seq + 1 };
  for (const outcome of ['success', 'error'] as const) {
    const of = counting.filter((f) => f.outcome === outcome);
    if (of.length === 0) continue;
    const [counter, last] =
      outcome === 'success' ? ['successCount', 'lastSuccess'] : ['errorCount', 'lastError'];
    add.push(`${counter} :${outcome}`);
    set.push(`${last} = :${outcome}At`);
    values[`:${outcome}`] = of.length;
    values[`:${outcome}At`] = Math.max(...of.map((f) => f.finishedAt));
  }
  let condition = `attribute_exists(#n) AND ${seq === 0 ? 'attribute_not_exists(settleSeq)' : 'settleSeq = :seq'}`;
  if (seq !== 0) values[':seq'] = seq;
  const names: Record<string, string> = { '#n': 'name' };
  if (status) {
    set.push('#s = :status', 'statusGroup = :g');
    condition += ' AND (attribute_not_exists(statusGroup) OR statusGroup <= :g)';
    names['#s'] = 'status';
    values[':status'] = status.status;
    values[':g'] = status.group;
  }
  const expression = [add.length > 0 ? `ADD ${add.join(', ')}` : '', `SET ${set.join(', ')}`]
    .filter(Boolean)
    .join(' ');
  return { expression, condition, names, values };
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

  /** Several jobs in one consistent read (BatchGetItem; GetItem for one), by name; absent ones are missing. */
  async getMany(names: readonly string[], reads?: ReadTogether): Promise<Map<string, JobRecord>> {
    const unique = [...new Set(names)];
    const batch = readBatchOf(reads);
    if (!batch && unique.length === 1) {
      // One job alone: a GetItem, the smaller request.
      const job = await this.get(unique[0]!);
      return new Map(job ? [[unique[0]!, job]] : []);
    }
    const keys = unique.map((name) => ({ name }));
    const items = batch ? await batch.get(this.table, keys) : await batchGet(this.clients, this.table, keys);
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

  /** `advanceNextRun` for many jobs at once (`writeEach`): false where another writer moved the job. */
  async advanceNextRunMany(advances: readonly NextRunAdvance[]): Promise<boolean[]> {
    return writeEach(advances, (a) => this.advanceNextRun(a.job, a.next, a.missed));
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

  /**
   * Jobs whose next fire time is before `beforeMs`, in fire-time order: their names from the sparse due
   * index (keys only), the jobs themselves read 100 at a time (BatchGetItem). Keys only, so that the
   * index is written when a job's next fire time or shard changes and not on every counter or status
   * update (a projection of the whole item doubled the cost of every job write: README, Cost). The index
   * is eventually consistent, and so is this read; the planner's compare-and-set on `nextRunAt` and
   * `version` makes a stale job a refused write, not a double launch.
   */
  async *due(shard: number, beforeMs: number): AsyncGenerator<JobRecord> {
    const keys = allItems(
      this.clients,
      {
        kind: 'query',
        TableName: this.table,
        IndexName: 'byDue',
        KeyConditionExpression: 'dueShard = :s AND nextRunAt < :before',
        ExpressionAttributeValues: { ':s': shard, ':before': beforeMs },
      },
      dueReadAttempt,
    );
    let names: string[] = [];
    for await (const key of keys) {
      names.push(String(key.name));
      if (names.length === 100) {
        yield* await this.inOrder(names);
        names = [];
      }
    }
    if (names.length > 0) yield* await this.inOrder(names);
  }

  /** The jobs of these names that still exist, in the names' order (one eventually consistent batch read). */
  private async inOrder(names: readonly string[]): Promise<JobRecord[]> {
    const items = await batchGet(
      this.clients,
      this.table,
      names.map((name) => ({ name })),
      false,
      undefined,
      dueReadAttempt,
    );
    const byName = new Map(items.map((item) => [String(item.name), fromItem(item)]));
    return names.flatMap((name) => byName.get(name) ?? []);
  }

  /**
   * Whether any job (due or not) is still indexed under `shard`: a shard at or above the shard count is
   * ticked until this answers false.
   */
  async shardHoldsJobs(shard: number): Promise<boolean> {
    return (await this.inShard(shard, 1)).length > 0;
  }

  /** Up to `limit` jobs indexed under `shard`, whatever their next fire time (one query page, keys only). */
  private async inShard(shard: number, limit: number): Promise<Array<{ name: string; nextRunAt: number }>> {
    const out = await this.clients.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'byDue',
        KeyConditionExpression: 'dueShard = :s',
        ExpressionAttributeValues: { ':s': shard },
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map((item) => ({ name: String(item.name), nextRunAt: Number(item.nextRunAt) }));
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
      if (to === shard) continue;
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

  /** Every job; `consistent`: a strongly consistent scan (twice the read units), which sees every write before it. */
  async list(consistent = false): Promise<JobRecord[]> {
    return collect(
      allItems(this.clients, {
        kind: 'scan',
        TableName: this.table,
        ...(consistent ? { ConsistentRead: true } : {}),
      }),
      fromItem,
    );
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
   * The job's side of the reactions' last writes (settleFinishes, shared/events/settle.ts): `counting`
   * added to its counters and last success/error, its status set unless a newer group set it, `settling`
   * stored — conditional on `settleSeq` being `job.settleSeq` (it is bumped). False when another settle of
   * the job, a newer group's status, or the job's deletion came first.
   */
  async settleCounts(
    job: JobRecord,
    counting: readonly SettledFinish[],
    status: { readonly status: string; readonly group: string } | null,
    settling: readonly string[],
  ): Promise<boolean> {
    const write = settleWrite(counting, status, settling, job.settleSeq);
    // A write per job per stream batch: through the cached client, as the Executions table's marks are.
    return ifCondition(
      updateItem(this.clients, {
        TableName: this.table,
        Key: { name: job.name },
        UpdateExpression: write.expression,
        ConditionExpression: write.condition,
        ExpressionAttributeNames: write.names,
        ExpressionAttributeValues: write.values,
      }),
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
