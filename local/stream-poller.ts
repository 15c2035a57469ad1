/**
 * The local stand-in for the Lambda event source mapping on the Executions table's stream: polls the
 * stream on DynamoDB Local (DescribeTable → stream ARN, DescribeStream → shards, GetShardIterator,
 * GetRecords every ~200 ms) and hands each batch to `reactToStreamRecords`, the function the `events`
 * Lambda runs. Like the mapping it keeps stream order per shard, processes a child shard only after its
 * parent is drained, and on a failed record retries from that record (giving up after a few attempts,
 * as a mapping with `maxRetryAttempts` would).
 */
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type Shard,
  type _Record as StreamRecord,
  TrimmedDataAccessException,
} from '@aws-sdk/client-dynamodb-streams';
import type { Context } from '../shared/context.ts';
import { type ReactionOptions, reactToStreamRecords } from '../shared/events/reactions.ts';

/**
 * Records per GetRecords, as the events function's event source mapping (batchSize 100 in infra/). It
 * also bounds the synchronous work per batch: the poller shares its event loop with the local ticker
 * and agents, and deserializing a thousand records at once stalled their timers for a second.
 */
const BATCH_SIZE = 100;

export interface StreamPollerOptions {
  /** Pause between polling rounds (default 200 ms). */
  readonly intervalMs?: number;
  /** How often the shard list is refreshed (default 1 s). */
  readonly describeEveryMs?: number;
  /**
   * Attempts at one failing record before it is skipped (default 10, as the events function's mapping's
   * `retryAttempts`); between attempts the shard waits, doubling from `intervalMs` up to 10 s, so a
   * store that is down for half a minute does not use them up. A skipped finish is still taken up later
   * (reactions.ts: the next finish of its job reacts to finishes left without a reaction).
   */
  readonly maxAttempts?: number;
  /** Options of the reactions (event bus, retention); defaults from `ctx.config`. */
  readonly reactions?: ReactionOptions;
  /** Default: the Executions table of `ctx.config`. */
  readonly tableName?: string;
  readonly log?: (line: string) => void;
}

export interface StreamPoller {
  stop(): Promise<void>;
  /**
   * Stops handing records on (after the batch in hand) until `resume`: a consumer that lags behind, as
   * a throttled or failing event source mapping does. Records wait in the stream meanwhile.
   */
  pause(): Promise<void>;
  resume(): void;
}

interface ShardState {
  readonly shardId: string;
  readonly parentShardId: string | undefined;
  iterator: string | undefined;
  /** The last sequence number handled: where a new iterator starts (AFTER_SEQUENCE_NUMBER). */
  lastSequence: string | undefined;
  /** The shard is closed and drained. */
  done: boolean;
  failures: number;
  /** After a failed record: not read again before this time (Date.now()). */
  retryAt: number;
}

/** The wait before attempt n+1 at a failing record: doubling from the polling interval, at most 10 s. */
export function retryDelay(intervalMs: number, failures: number): number {
  return Math.min(10_000, intervalMs * 2 ** Math.min(Math.max(failures - 1, 0), 20));
}

export function startStreamPoller(ctx: Context, options: StreamPollerOptions = {}): StreamPoller {
  const intervalMs = options.intervalMs ?? 200;
  const describeEveryMs = options.describeEveryMs ?? 1_000;
  const maxAttempts = options.maxAttempts ?? 10;
  const tableName = options.tableName ?? ctx.config.tables.executions;
  const log = options.log ?? (() => {});
  const reactionLog =
    options.reactions?.log ?? ((event: Record<string, unknown>) => log(JSON.stringify(event)));
  const reactionOptions: ReactionOptions = { ...options.reactions, log: reactionLog };
  const streams = ctx.clients.dynamodbStreams;

  let stopping = false;
  let wake: (() => void) | null = null;
  let streamArn: string | undefined;
  let lastDescribe = 0;
  const shards = new Map<string, ShardState>();

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        wake = null;
        resolve();
      };
    });

  async function refreshShards(): Promise<void> {
    if (!streamArn) {
      const table = await ctx.clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
      streamArn = table.Table?.LatestStreamArn;
      if (!streamArn) throw new Error(`table ${tableName} has no stream`);
    }
    const found: Shard[] = [];
    let start: string | undefined;
    do {
      const out = await streams.send(
        new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: start }),
      );
      found.push(...(out.StreamDescription?.Shards ?? []));
      start = out.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    for (const shard of found) {
      if (!shard.ShardId || shards.has(shard.ShardId)) continue;
      shards.set(shard.ShardId, {
        shardId: shard.ShardId,
        parentShardId: shard.ParentShardId,
        iterator: undefined,
        lastSequence: undefined,
        done: false,
        failures: 0,
        retryAt: 0,
      });
    }
    lastDescribe = Date.now();
  }

  /** A child shard waits until its parent (if we still know it) is drained, to keep per-item order. */
  function ready(shard: ShardState): boolean {
    if (shard.done || Date.now() < shard.retryAt) return false;
    const parent = shard.parentShardId ? shards.get(shard.parentShardId) : undefined;
    return parent === undefined || parent.done;
  }

  async function iteratorFor(shard: ShardState): Promise<string | undefined> {
    const out = await streams.send(
      new GetShardIteratorCommand({
        StreamArn: streamArn,
        ShardId: shard.shardId,
        ...(shard.lastSequence
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: shard.lastSequence }
          : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    );
    return out.ShardIterator;
  }

  /** Reads the shard until it has nothing new (or is closed). */
  async function drain(shard: ShardState): Promise<void> {
    for (let round = 0; round < 100 && !stopping; round++) {
      shard.iterator ??= await iteratorFor(shard);
      if (!shard.iterator) {
        shard.done = true;
        return;
      }
      let records: StreamRecord[];
      let next: string | undefined;
      try {
        const out = await streams.send(
          new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: BATCH_SIZE }),
        );
        records = out.Records ?? [];
        next = out.NextShardIterator;
      } catch (error) {
        if (error instanceof ExpiredIteratorException) {
          shard.iterator = undefined;
          continue;
        }
        if (error instanceof TrimmedDataAccessException) {
          log(
            `stream shard ${shard.shardId}: records after ${shard.lastSequence} were trimmed; from the oldest on`,
          );
          shard.lastSequence = undefined;
          shard.iterator = undefined;
          continue;
        }
        throw error;
      }
      if (records.length > 0) {
        const result = await reactToStreamRecords(ctx, records, reactionOptions);
        const failedAt = result.failed[0];
        if (failedAt !== undefined) {
          const index = records.findIndex((r) => r.dynamodb?.SequenceNumber === failedAt);
          if (index > 0)
            shard.lastSequence = records[index - 1]?.dynamodb?.SequenceNumber ?? shard.lastSequence;
          shard.failures++;
          shard.retryAt = Date.now() + retryDelay(intervalMs, shard.failures);
          if (shard.failures >= maxAttempts) {
            log(
              `stream shard ${shard.shardId}: giving up on record ${failedAt} after ${shard.failures} attempts`,
            );
            shard.lastSequence = failedAt;
            shard.failures = 0;
            shard.retryAt = 0;
          }
          // Start again after the last record handled: the failed one comes back next round.
          shard.iterator = undefined;
          return;
        }
        shard.failures = 0;
        shard.lastSequence = records.at(-1)?.dynamodb?.SequenceNumber ?? shard.lastSequence;
      }
      shard.iterator = next;
      if (!next) {
        shard.done = true;
        return;
      }
      if (records.length === 0) return;
    }
  }

  let paused = false;
  let idle: Promise<void> = Promise.resolve();
  let markIdle: () => void = () => {};

  async function loop(): Promise<void> {
    while (!stopping) {
      if (paused) {
        markIdle();
        await sleep(intervalMs);
        continue;
      }
      try {
        if (!streamArn || Date.now() - lastDescribe >= describeEveryMs) await refreshShards();
        for (const shard of shards.values()) {
          if (stopping) break;
          if (ready(shard)) await drain(shard);
        }
      } catch (error) {
        if (!stopping) log(`stream poller: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (!stopping) await sleep(intervalMs);
    }
  }

  const running = loop();
  return {
    async stop() {
      stopping = true;
      wake?.();
      await running;
    },
    async pause() {
      if (!paused) {
        idle = new Promise<void>((resolve) => {
          markIdle = resolve;
        });
        paused = true;
        wake?.();
      }
      await Promise.race([idle, running]);
    },
    resume() {
      paused = false;
      markIdle = () => {};
      wake?.();
    },
  };
}
