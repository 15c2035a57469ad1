/** Publishing `Execution Finished` (finished-event.ts) on the configured EventBridge bus. */
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { Context } from '../context.ts';
import type { Execution } from '../executions/execution.ts';
import { finishedEvent } from './finished-event.ts';

/**
 * Sends the event; false when the bus does not exist. A missing bus is a configuration error that
 * redelivery cannot fix: it must not hold up the retries and dependent jobs of every later record.
 * Anything else, a refused entry included, is thrown and retried with the record.
 */
export async function publishFinished(
  ctx: Context,
  e: Execution,
  eventBusName: string,
  willRetry: boolean,
): Promise<boolean> {
  try {
    const out = await ctx.clients.eventbridge.send(
      new PutEventsCommand({ Entries: [finishedEvent(e, eventBusName, willRetry)] }),
    );
    if ((out.FailedEntryCount ?? 0) > 0) {
      const entry = out.Entries?.[0];
      throw new Error(
        `EventBridge refused the event: ${entry?.ErrorCode ?? ''} ${entry?.ErrorMessage ?? ''}`.trim(),
      );
    }
    return true;
  } catch (error) {
    if (error instanceof Error && error.name === 'ResourceNotFoundException') return false;
    throw error;
  }
}
