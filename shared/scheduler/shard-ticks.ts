/**
 * Shard ticks over SQS: the coordinator sends one message per shard above 0 to the shard-tick queue, and
 * the queue's event source mapping invokes the tick function with it (one message per invocation). SQS
 * delivers at least once: a second delivery of the same message meets the shard's lease or a window
 * already planned. A message older than one tick period is dropped, since the next round covers its
 * shard, so a backlog (a throttled function) never piles up ticks for the same shard.
 */
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import type { Context } from '../context.ts';
import type { ShardFanOut } from './coordinator.ts';
import { type TickReport, tick } from './tick.ts';

const shardTickSchema = z.object({
  shardTick: z.number().int().min(0).max(63),
  issuedAt: z.number().int().nonnegative(),
});
export type ShardTickMessage = z.infer<typeof shardTickSchema>;

/** Sends the shard ticks, ten to a request; a send that fails fails the round (the coordinator reports it). */
export function sqsFanOut(ctx: Context, queueUrl: string): ShardFanOut {
  return async (shards, now) => {
    const batches: number[][] = [];
    for (let i = 0; i < shards.length; i += 10) batches.push(shards.slice(i, i + 10));
    await Promise.all(
      batches.map(async (batch) => {
        const out = await ctx.clients.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: batch.map((shard) => ({
              Id: String(shard),
              MessageBody: JSON.stringify({ shardTick: shard, issuedAt: now } satisfies ShardTickMessage),
            })),
          }),
        );
        if (out.Failed && out.Failed.length > 0) {
          const ids = out.Failed.map((f) => `${f.Id} (${f.Code})`).join(', ');
          throw new Error(`shard ticks not sent for shard(s) ${ids}`);
        }
      }),
    );
  };
}

/** The shard a message asks to tick, or null when it is malformed or stale (older than one period). */
export function shardToTick(body: string, now: number, periodMs: number): number | null {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return null;
  }
  const parsed = shardTickSchema.safeParse(raw);
  if (!parsed.success) return null;
  if (now - parsed.data.issuedAt > periodMs) return null;
  return parsed.data.shardTick;
}

export interface ShardTickOutcome {
  readonly shard: number | null;
  readonly report: TickReport | null;
}

/** Runs the ticks the messages ask for (each shard once however often it is asked in the batch). */
export async function runShardTicks(
  ctx: Context,
  owner: string,
  bodies: readonly string[],
): Promise<ShardTickOutcome[]> {
  const now = ctx.clock();
  const shards = bodies.map((b) => shardToTick(b, now, ctx.config.tickPeriodMs));
  const unique = [...new Set(shards.filter((s): s is number => s !== null))];
  const reports = new Map(
    await Promise.all(unique.map(async (shard) => [shard, await tick(ctx, owner, shard)] as const)),
  );
  return shards.map((shard) => ({ shard, report: shard === null ? null : (reports.get(shard) ?? null) }));
}
