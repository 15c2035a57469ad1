/**
 * Lambda entry point of the scheduler. Invoked by EventBridge every minute it coordinates: ticks due shard 0
 * and fans the other shards out as shard-tick messages (shared/scheduler/coordinator.ts). Invoked by the
 * shard-tick queue's event source mapping it ticks the shard each message names.
 */
import middy from '@middy/core';
import type { Context as LambdaContext, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { type Context, createContext } from '../../shared/context.ts';
import { SERVICES } from '../../shared/metrics/metrics.ts';
import {
  type CoordinatorReport,
  coordinate,
  inProcessFanOut,
  isIdleRound,
} from '../../shared/scheduler/coordinator.ts';
import { runShardTicks, sqsFanOut } from '../../shared/scheduler/shard-ticks.ts';
import { createObservability } from '../observability.ts';

const base = createContext();
const { logger, sink, middlewares } = createObservability(SERVICES.tick, base.config);
// Ticks, duration, jobs planned and launches go out as EMF (shared/metrics/metrics.ts).
const ctx: Context = { ...base, metrics: sink };

function isShardTicks(event: unknown): event is SQSEvent {
  return Array.isArray((event as SQSEvent | null)?.Records);
}

export const handler = middy<unknown, CoordinatorReport | SQSBatchResponse, Error, LambdaContext>()
  .use(middlewares)
  .handler(async (event, lambda) => {
    const owner = `tick:${lambda.awsRequestId}`;
    if (isShardTicks(event)) {
      const outcomes = await runShardTicks(
        ctx,
        owner,
        event.Records.map((r) => r.body),
      );
      for (const o of outcomes) logger.info('shard tick', { shard: o.shard, ...o.report });
      // A failed tick is not redelivered: the next round ticks the shard again.
      return { batchItemFailures: [] };
    }
    const queue = ctx.config.shardTickQueueUrl;
    const report = await coordinate(ctx, owner, queue ? sqsFanOut(ctx, queue) : inProcessFanOut(ctx, owner));
    const line = {
      ...report.shard0,
      layout: report.layout,
      fannedOut: report.fannedOut.length,
      fanOutError: report.fanOutError,
    };
    // An idle round is a debug line (see isIdleRound): the Lambda's own metrics show that it ran.
    if (isIdleRound(report)) logger.debug('tick', line);
    else logger.info('tick', line);
    return report;
  });
