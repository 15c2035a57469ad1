/**
 * Lambda entry point for the Executions table's stream: reacts to finished executions (counters,
 * retries, dependent jobs, `Execution Finished` events, retention, ephemeral jobs). Reports batch item
 * failures, so only the failed record and those after it are delivered again (needs
 * `ReportBatchItemFailures` on the event source mapping).
 */
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { type Context, createContext } from '../../shared/context.ts';
import { type ReactionOptions, reactToStreamRecords } from '../../shared/events/reactions.ts';

/** The handler over a given context and options (the module's `handler` builds its context from the environment). */
export function createEventsHandler(ctx: () => Context, options: ReactionOptions) {
  return async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const result = await reactToStreamRecords(ctx(), event.Records ?? [], options);
    return { batchItemFailures: result.failed.map((itemIdentifier) => ({ itemIdentifier })) };
  };
}

let ctx: Context | undefined;

/** The bus (CRONPLANE_EVENT_BUS) and the retention (CRONPLANE_EXECUTIONS_KEPT) come from the config. */
export const handler = createEventsHandler(() => (ctx ??= createContext()), {
  log: (event) => console.log(JSON.stringify(event)),
});
