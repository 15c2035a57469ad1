/**
 * Lambda entry point for the Executions table's stream: reacts to finished executions (counters,
 * retries, dependent jobs, `Execution Finished` events, retention, ephemeral jobs). Reports batch item
 * failures, so only the failed record and those after it are delivered again (needs
 * `ReportBatchItemFailures` on the event source mapping).
 */

import middy from '@middy/core';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent, Context as LambdaContext } from 'aws-lambda';
import { loadConfig } from '../../shared/config.ts';
import { type Context, createContext } from '../../shared/context.ts';
import { type ReactionOptions, reactToStreamRecords } from '../../shared/events/reactions.ts';
import { SERVICES } from '../../shared/metrics/metrics.ts';
import { createObservability, logTo } from '../observability.ts';

/** The handler over a given context and options (the module's `handler` builds its context from the environment). */
export function createEventsHandler(ctx: () => Context, options: ReactionOptions) {
  return async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const result = await reactToStreamRecords(ctx(), event.Records ?? [], options);
    return { batchItemFailures: result.failed.map((itemIdentifier) => ({ itemIdentifier })) };
  };
}

/**
 * The bus (CRONPLANE_EVENT_BUS) and the retention (CRONPLANE_EXECUTIONS_KEPT) come from the config. Built
 * at the first event, so that importing the module (tests do, for createEventsHandler) needs no environment.
 * Logs carry the execution id as correlation id; the finishes' metrics go out as EMF (shared/metrics).
 */
function createHandler() {
  const { logger, sink, middlewares } = createObservability(SERVICES.events, loadConfig());
  const ctx: Context = { ...createContext(), metrics: sink };
  return middy<DynamoDBStreamEvent, DynamoDBBatchResponse, Error, LambdaContext>()
    .use(middlewares)
    .handler(createEventsHandler(() => ctx, { log: logTo(logger) }));
}

let built: ReturnType<typeof createHandler> | undefined;

export const handler = (event: DynamoDBStreamEvent, lambda: LambdaContext) => {
  built ??= createHandler();
  return built(event, lambda);
};
