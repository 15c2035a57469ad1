/** Lambda entry point ticked by EventBridge every minute: one scheduler pass under the lease. */
import middy from '@middy/core';
import type { Context as LambdaContext } from 'aws-lambda';
import { type Context, createContext } from '../../shared/context.ts';
import { SERVICES } from '../../shared/metrics/metrics.ts';
import { type TickReport, tick } from '../../shared/scheduler/tick.ts';
import { createObservability } from '../observability.ts';

const base = createContext();
const { logger, sink, middlewares } = createObservability(SERVICES.tick, base.config);
// Ticks, duration, jobs planned and launches go out as EMF (shared/metrics/metrics.ts).
const ctx: Context = { ...base, metrics: sink };

export const handler = middy<unknown, TickReport, Error, LambdaContext>()
  .use(middlewares)
  .handler(async (_event, lambda) => {
    const report = await tick(ctx, `tick:${lambda.awsRequestId}`);
    logger.info('tick', { ...report });
    return report;
  });
