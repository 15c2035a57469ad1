/**
 * The `Execution Finished` event on the configured EventBridge bus: its source, detail type (the
 * notification rules of infra/lib/notifications.ts match on both) and the entry built for one finish.
 */
import type { PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { type Execution, toApi } from '../executions/execution.ts';

export const EVENT_SOURCE = 'cronplane';
export const EVENT_DETAIL_TYPE = 'Execution Finished';
/** EventBridge refuses entries over 256 KB; the execution's output is cut to its tail to stay below. */
const MAX_EVENT_BYTES = 240_000;

/**
 * The `Execution Finished` entry: detail = the execution's API JSON, output cut to fit EventBridge, plus
 * `will_retry`: whether another attempt follows. A rule on `will_retry: [false]` hears of a failure once,
 * when it is final, not at every attempt (infra/lib/notifications.ts).
 */
export function finishedEvent(e: Execution, eventBusName: string, willRetry = false): PutEventsRequestEntry {
  let limit: number | undefined;
  for (;;) {
    const detail = JSON.stringify({ ...toApi(e, limit), will_retry: willRetry });
    if (Buffer.byteLength(detail) <= MAX_EVENT_BYTES || limit === 0) {
      return {
        EventBusName: eventBusName,
        Source: EVENT_SOURCE,
        DetailType: EVENT_DETAIL_TYPE,
        Resources: [],
        Detail: detail,
        Time: new Date(e.finishedAt ?? e.scheduledAt),
      };
    }
    limit = limit === undefined ? 64_000 : Math.floor(limit / 2);
  }
}
